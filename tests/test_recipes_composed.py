"""Every shipped recipe composes to the same config as before recipes were split into stage defaults.

``tests/data/recipes_composed/NAME.yaml`` is the unresolved composed config of each recipe as the
flat recipe files composed it (dumped from main before the change). Stage ``_target_`` paths are
compared by class name, since recipes now use the short ``synthrun.stages.Name`` spelling, and the
provider's new ``kind`` key is left out.
Regenerate a dump after changing a recipe value on purpose:
``python -c "from tests.test_recipes_composed import dump; dump('qa')"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from synthrun.allowlist import resolve_stage_class
from synthrun.recipes import compose, list_recipes

DUMPS = Path(__file__).parent / "data" / "recipes_composed"
RECIPES = sorted(p.stem for p in DUMPS.glob("*.yaml"))


def composed(name: str) -> dict[str, Any]:
    plain = OmegaConf.to_container(compose(name), resolve=False)
    assert isinstance(plain, dict)
    return {str(k): v for k, v in plain.items()}


def dump(name: str) -> None:
    """Write the current composed config of recipe ``name`` as its reference dump."""
    (DUMPS / f"{name}.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(composed(name))))


def _by_class_name(cfg: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in cfg.items():
        if key == "provider":  # provider files now declare their backend (`kind`), nothing else changed
            value = {k: v for k, v in value.items() if k != "kind"}
        if isinstance(value, dict) and "_target_" in value:
            value = {**value, "_target_": str(value["_target_"]).rsplit(".", 1)[-1]}
        out[key] = value
    return out


def test_every_shipped_recipe_has_a_reference_dump():
    assert sorted(r.name for r in list_recipes() if (DUMPS / f"{r.name}.yaml").exists()) == RECIPES
    assert len(RECIPES) >= 16


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_composes_the_same_config_as_before(name):
    before = OmegaConf.to_container(OmegaConf.load(DUMPS / f"{name}.yaml"))
    now = composed(name)
    assert _by_class_name(now) == _by_class_name(before)  # dict equality ignores key order
    for stage in now["stages"]:
        target = now[stage]["_target_"]
        assert resolve_stage_class(target).__name__ == target.rsplit(".", 1)[-1]
