"""Every shipped recipe composes and every stage instantiates, without running anything."""

from __future__ import annotations

import pytest

from synthrun.recipes import compose, list_recipes
from synthrun.records import Record
from synthrun.runner import build_stages
from synthrun.stage import Stage

RECIPES = [r.name for r in list_recipes()]


def test_recipes_are_found():
    assert "qa" in RECIPES and len(RECIPES) >= 1


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_composes_and_instantiates(name):
    cfg = compose(name)
    assert cfg.recipe_name == name, "recipe_name must match the file name"
    stages = build_stages(cfg)
    assert [n for n, _ in stages] == list(cfg.stages)
    for stage_name, stage in stages:
        assert isinstance(stage, Stage), stage_name
        assert issubclass(stage.input_type, Record) and issubclass(stage.output_type, Record), stage_name


@pytest.mark.parametrize("info", list_recipes(), ids=lambda i: i.name)
def test_recipe_header_shows_its_command(info):
    first = info.path.read_text().splitlines()[0]
    assert first.startswith("# synthrun ") and f"+recipe={info.name}" in first
