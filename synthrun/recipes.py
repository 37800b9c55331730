"""The recipe registry: list recipe files and compose one without running it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class RecipeInfo:
    name: str
    path: Path
    command: str
    summary: str


def _describe(path: Path) -> RecipeInfo:
    command, summary = f"synthrun +recipe={path.stem}", ""
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        if text.startswith("synthrun "):
            command = text
        elif text and not text.startswith("@") and not summary:
            summary = text
    return RecipeInfo(path.stem, path, command, summary)


def list_recipes() -> list[RecipeInfo]:
    """Every recipe in the recipe folders (user folders first; a name is listed once)."""
    from hydra_plugins.synthrun_plugins.recipe_source import recipe_dirs

    seen: dict[str, RecipeInfo] = {}
    for folder in recipe_dirs():
        for path in sorted(Path(folder).glob("*.yaml")):
            seen.setdefault(path.stem, _describe(path))
    return sorted(seen.values(), key=lambda r: r.name)


def compose(name: str, overrides: list[str] | None = None, return_hydra_config: bool = False):
    """Compose ``conf/`` with recipe ``name`` and ``overrides`` (no run folder, no stage run)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from synthrun.errors import ComposeError, compose_error_message
    from synthrun.paths import conf_dir
    from synthrun.run_names import register_resolvers

    register_resolvers()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            cfg = hydra_compose(
                config_name="config", overrides=[f"+recipe={name}", *(overrides or [])],
                return_hydra_config=return_hydra_config,
            )
    except (HydraException, OmegaConfBaseException) as exc:
        raise ComposeError(compose_error_message(exc)) from None
    return cfg
