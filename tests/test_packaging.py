"""An installed wheel (not only an editable checkout) still finds conf/, recipes/ and prompts/."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # No build isolation: the build backend (hatchling, in the dev extra) is already installed, so
    # building the wheel needs no package index.
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "-q", "-w", str(out), str(ROOT)], check=True, capture_output=True)
    (whl,) = out.glob("synthrun-*.whl")
    return whl


def test_wheel_carries_data_folders(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "synthrun/_data/conf/config.yaml" in names
    assert "synthrun/_data/recipes/qa.yaml" in names
    assert "synthrun/_data/prompts/curate.yaml" in names
    assert "hydra_plugins/synthrun_plugins/recipe_source.py" in names
    assert "synthrun/report/templates/run.html.j2" in names  # the HTML report's templates
    shipped = {p.relative_to(ROOT).as_posix() for d in ("conf", "recipes", "prompts")
               for p in (ROOT / d).rglob("*") if p.is_file()}
    assert {f"synthrun/_data/{p}" for p in shipped} <= names


def test_unpacked_wheel_lists_and_validates_recipes(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = ("import synthrun, synthrun.paths as p, sys; "
            "assert synthrun.__file__.startswith(sys.argv[1]), synthrun.__file__; print(p.conf_dir())")
    out = subprocess.run([sys.executable, "-c", code, str(site)], cwd=elsewhere, env=env,
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(site / "synthrun" / "_data" / "conf")
    ls = subprocess.run([sys.executable, "-m", "synthrun", "ls"], cwd=elsewhere, env=env,
                        capture_output=True, text=True, check=True).stdout
    assert "$ synthrun +recipe=qa" in ls
    val = subprocess.run([sys.executable, "-m", "synthrun", "validate", "qa"], cwd=elsewhere, env=env,
                         capture_output=True, text=True)
    assert val.returncode == 0, val.stderr
    assert val.stdout.startswith("ok: qa")
