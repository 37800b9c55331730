"""Hydra plugins that make recipe folders the config group ``recipe``.

``recipes/qa.yaml`` is selected with ``+recipe=qa``. More recipe folders can be
added with the environment variable ``SYNTHRUN_RECIPE_PATH`` (folders separated
by ``os.pathsep``); they are searched before the shipped recipes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml
from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.object_type import ObjectType
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource
from hydra.plugins.search_path_plugin import SearchPathPlugin
from omegaconf import OmegaConf

GROUP = "recipe"
_PACKAGE_RE = re.compile(r"^#\s*@package\s+(\S+)\s*$")


def recipe_header(text: str) -> dict[str, str | None]:
    """Read ``# @package X`` anywhere in the leading comment block (default ``_global_``)."""
    package = "_global_"
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if not line.startswith("#"):
            break
        match = _PACKAGE_RE.match(line)
        if match:
            package = match.group(1)
    return {"package": package}


def yaml_problem(exc: BaseException) -> str:
    """One line for a YAML error: the problem and where (line and column, 1-based)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        what = "; ".join(str(p) for p in (exc.context, exc.problem) if p)
        if mark is not None:
            return f"{what} (line {mark.line + 1}, column {mark.column + 1})"
        return what
    return " ".join(str(exc).split())


class RecipeConfigSource(ConfigSource):
    """A folder of recipe files seen by Hydra as the group ``recipe``."""

    def __init__(self, provider: str, path: str) -> None:
        if "://" not in path:
            path = f"{self.scheme()}://{path}"
        super().__init__(provider=provider, path=path)

    @staticmethod
    def scheme() -> str:
        return "synthrun-recipes"

    def _local(self, config_path: str) -> Path | None:
        parts = config_path.strip("/").split("/", 1)
        if parts[0] != GROUP:
            return None
        return Path(self.path) / (parts[1] if len(parts) > 1 else "")

    def load_config(self, config_path: str) -> ConfigResult:
        local = self._local(self._normalize_file_name(config_path))
        if local is None or not local.is_file():
            raise ConfigLoadError(f"Config not found : {config_path}")
        try:
            text = local.read_text(encoding="utf-8")
            config = OmegaConf.create(OmegaConf.load(local))
        except (yaml.YAMLError, UnicodeDecodeError, ValueError) as exc:
            raise ConfigLoadError(f"recipe file {local} is not valid YAML: {yaml_problem(exc)}") from None
        if not OmegaConf.is_dict(config):
            raise ConfigLoadError(f"recipe file {local} must be a mapping of keys (recipe_name, stages, ...), "
                                  f"not a {type(OmegaConf.to_object(config)).__name__}")
        return ConfigResult(
            config=config,
            path=f"{self.scheme()}://{self.path}",
            provider=self.provider,
            header=recipe_header(text),
        )

    def available(self) -> bool:
        return Path(self.path).is_dir()

    def is_group(self, config_path: str) -> bool:
        if config_path.strip("/") == "":
            return True
        local = self._local(config_path)
        return local is not None and local.is_dir()

    def is_config(self, config_path: str) -> bool:
        if config_path.strip("/") == "":
            return False
        local = self._local(self._normalize_file_name(config_path))
        return local is not None and local.is_file()

    def list(self, config_path: str, results_filter: ObjectType | None) -> list[str]:
        files: list[str] = []
        if config_path.strip("/") == "":
            if results_filter in (None, ObjectType.GROUP):
                files.append(GROUP)
            return files
        local = self._local(config_path)
        if local is None or not local.is_dir():
            return files
        for entry in local.iterdir():
            if entry.is_dir() or entry.suffix != ".yaml":
                continue  # data folders next to recipes are not configs
            self._list_add_result(
                files=files,
                file_path=f"{config_path}/{entry.name}",
                file_name=entry.name,
                results_filter=results_filter,
            )
        return sorted(set(files))


def recipe_dirs() -> list[Path]:
    """User recipe folders (``SYNTHRUN_RECIPE_PATH``) first, then the shipped ``recipes/``."""
    from synthrun.paths import recipes_dir

    user = [Path(p) for p in os.environ.get("SYNTHRUN_RECIPE_PATH", "").split(os.pathsep) if p]
    return [*user, recipes_dir()]


class SynthrunSearchPathPlugin(SearchPathPlugin):
    """Adds the recipe folders to Hydra's search path."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        for folder in recipe_dirs():
            search_path.append(provider="synthrun", path=f"synthrun-recipes://{folder.resolve()}")
