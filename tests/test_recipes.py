"""Every shipped recipe composes and every stage instantiates, without running anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


BROKEN_RECIPES = {
    "flow.yaml": ("# @package _global_\nrecipe_name: flow\nstages: [load\nload:\n  db: x\n",
                  "expected ',' or ']', but got ':' (line 4, column 5)"),
    "dupkey.yaml": ("recipe_name: dupkey\nstages: []\nstages: [load]\n", "duplicate key stages (line 3, column 1)"),
    "tabs.yaml": ("recipe_name: tabs\nload:\n\t_target_: x\n", "(line 3, column 1)"),
    "alist.yaml": ("- load\n- export\n", "must be a mapping of keys"),
}


@pytest.mark.parametrize("filename", sorted(BROKEN_RECIPES))
def test_malformed_user_recipe_is_one_line_naming_the_file(tmp_path, filename):
    """A user recipe that is not valid YAML: one line with the file and where, exit 1, nothing written."""
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    text, problem = BROKEN_RECIPES[filename]
    (recipes / filename).write_text(text)
    name = filename.removesuffix(".yaml")
    env = {**os.environ, "SYNTHRUN_RECIPE_PATH": str(recipes), "SYNTHRUN_OUTPUTS": str(tmp_path / "out"),
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for args in ([f"+recipe={name}"], ["validate", name]):
        proc = subprocess.run([sys.executable, "-m", "synthrun", *args], capture_output=True, text=True,
                              cwd=tmp_path, env=env, timeout=120)
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
        assert proc.returncode == 1 and len(lines) == 1, lines
        assert lines[0].startswith(f"synthrun: error: recipe file {recipes / filename}") and problem in lines[0]
    assert not (tmp_path / "out").exists()


def test_a_stage_reading_the_wrong_record_type_fails_at_compose_time(capsys):
    from synthrun.cli import main

    # enrich rewrites QA answers; without generate it would get the loader's chunks
    assert main(["validate", "qa", "stages=[load,enrich,filter,curate,export]"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "synthrun: error: stage 'enrich' (Enrich) reads QAPair records, but gets Chunk records from stage 'load'"
    # a generic pass-through stage (Filter writes what it read) keeps the type known before it
    assert main(["validate", "qa", "stages=[load,filter,enrich,export]"]) == 1
    assert "stage 'enrich' (Enrich) reads QAPair records, but gets Chunk records from stage 'load'" in capsys.readouterr().err
    # a disabled stage passes its input on: a disabled generator leaves chunks for enrich
    assert main(["validate", "qa", "+generate.enabled=false"]) == 1
    assert main(["validate", "qa", "+generate.enabled=false", "stages=[load,generate,filter,curate,export]"]) == 0
