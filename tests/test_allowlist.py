"""The ``_target_`` allow-list: only Stage classes are instantiated, under `validate` and a real run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from synthrun.allowlist import TargetError, check_targets, resolve_stage_class
from synthrun.stage import Stage
from synthrun.stages.curate import Curate
from tests.llm.fake_openai_server import FakeOpenAIServer

ROOT = Path(__file__).resolve().parents[1]


class OkStage(Stage):
    """A user stage reachable through ``allow_targets``."""


def _synthrun(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    full_env.pop("SYNTHRUN_OUTPUTS", None)
    return subprocess.run([sys.executable, "-m", "synthrun", *args], capture_output=True, text=True,
                          cwd=cwd, env=full_env, timeout=300)


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    assert proc.returncode != 0 and len(lines) == 1, lines
    assert lines[0].startswith("synthrun: error:") and "Traceback" not in proc.stderr
    return lines[0]


# Each case: overrides that would create `victim` if their _target_ were instantiated.
CASES = {
    "nested_in_stage_params": ["+curate.llm={{_target_: os.makedirs, name: {victim}}}"],
    "nested_without_plus": ["curate.llm={{_target_: os.makedirs, name: {victim}}}"],
    "nested_in_a_list": ["+export.extra=[{{_target_: os.makedirs, name: {victim}}}]"],
    "hydra_callback": ["+hydra.callbacks.evil={{_target_: os.makedirs, name: {victim}}}"],
    "synthrun_non_stage_callable": ["+evil={{_target_: synthrun.io.atomic_write_text, path: {victim}, text: x}}",
                                    "stages=[load,evil]"],
    "attribute_path_through_a_module": ["+evil={{_target_: synthrun.stages.publish.os.makedirs, name: {victim}}}",
                                        "stages=[load,evil]"],
    "allowed_prefix_but_not_a_stage": ["allow_targets=[os.]", "+evil={{_target_: os.makedirs, name: {victim}}}",
                                       "stages=[load,evil]"],
}


@pytest.mark.parametrize("mode", ["validate", "run"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_target_outside_the_allow_list_is_refused_and_never_called(tmp_path, chunk_db, case, mode):
    victim = tmp_path / "victim"
    out = tmp_path / "out"
    overrides = [o.format(victim=victim) for o in CASES[case]]
    with FakeOpenAIServer() as server:
        common = [f"load.db={chunk_db}", "provider=vllm", f"provider.api_base={server.base_url}",
                  "provider.model=hosted_vllm/fake", "provider.max_retries=0", f"paths.output_root={out}"]
        if mode == "validate":
            proc = _synthrun(["validate", "qa", *common, *overrides], tmp_path)
        else:
            proc = _synthrun(["+recipe=qa", *common, "progress=false", *overrides], tmp_path)
        assert server.requests == []
    line = _one_error_line(proc)
    assert "_target_" in line and "not allowed" in line
    assert not victim.exists()
    assert not list(out.rglob("data.jsonl")), "no stage may run"


def test_nested_target_in_a_recipe_file_is_refused(tmp_path):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    victim = tmp_path / "victim"
    text = (ROOT / "recipes" / "qa.yaml").read_text()
    text = text.replace("recipe_name: qa", "recipe_name: mine")
    text = text.replace("\ngenerate:\n", f"\ngenerate:\n  llm:\n    _target_: os.makedirs\n    name: {victim}\n", 1)
    (recipes / "mine.yaml").write_text(text)
    for args in (["validate", "mine"], ["+recipe=mine", f"paths.output_root={tmp_path / 'out'}"]):
        proc = _synthrun(args, tmp_path, {"SYNTHRUN_RECIPE_PATH": str(recipes)})
        line = _one_error_line(proc)
        assert "generate.llm._target_" in line and "nested _target_ is not allowed" in line
        assert not victim.exists()


def test_stage_classes_resolve_module_by_module():
    assert resolve_stage_class("synthrun.stages.curate.Curate") is Curate
    assert resolve_stage_class("tests.test_allowlist.OkStage", ["tests.test_allowlist"]) is OkStage
    refused = ["synthrun.stages.curate.Stage", "synthrun.stages.export.Path", "synthrun.stages.export.write_jsonl",
               "synthrun.stages.curate.Curate.model_validate", "synthrun.io.os.makedirs", "os.system",
               "synthrun.stages.no_such_module.X", "synthrun.stages", "synthrun.stages.curate.__class__"]
    for target in refused:
        with pytest.raises(TargetError):
            resolve_stage_class(target)
    with pytest.raises(TargetError):  # a prefix in allow_targets does not make a function a stage
        resolve_stage_class("tests.test_allowlist._synthrun", ["tests."])


def test_whole_config_walk_finds_targets_at_any_depth():
    ok = {"stages": ["a"], "a": {"_target_": "synthrun.stages.curate.Curate", "threshold": 3}}
    check_targets(ok)
    deep = {"a": {"_target_": "synthrun.stages.curate.Curate", "llm": {"x": [{"y": {"_target_": "os.system"}}]}}}
    with pytest.raises(TargetError, match=r"a\.llm\.x\[0\]\.y\._target_"):
        check_targets(deep)
    with pytest.raises(TargetError, match="not allowed"):
        check_targets({"unused": {"_target_": "synthrun.io.atomic_write_text"}})


def test_short_stage_names_resolve_to_the_same_classes():
    from synthrun.stages.judge import Judge

    assert resolve_stage_class("synthrun.stages.Curate") is Curate
    assert resolve_stage_class("synthrun.stages.Judge") is Judge
    # only Stage subclasses defined in a module of synthrun.stages; nothing else reachable by short name
    for bad in ("synthrun.stages.Stage", "synthrun.stages.NoSuchStage", "synthrun.stages.Path",
                "synthrun.stages.importlib"):
        with pytest.raises(TargetError):
            resolve_stage_class(bad)
