"""The command line: light start-up, sub-commands, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from synthrun.cli import _run_name, main

HEAVY = ("litellm", "torch", "transformers")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True, env={**os.environ, "SYNTHRUN_TEST": "1"},
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_help_and_ls_import_nothing_heavy():
    for argv in (["--help"], ["ls"]):
        mods = _modules_after(f"from synthrun.cli import main\nmain({argv!r})")
        assert not [m for m in HEAVY if m in mods], argv


def test_help_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for word in ("+recipe=NAME", "validate", "providers", "-m"):
        assert word in out


def test_ls_lists_recipes_with_commands(capsys):
    assert main(["ls"]) == 0
    out = capsys.readouterr().out
    assert "qa" in out and "$ synthrun +recipe=qa" in out
    from synthrun.paths import recipes_dir

    assert f"recipe files: {recipes_dir()}" in out


def test_validate_ok_and_bad_param(capsys):
    assert main(["validate", "qa"]) == 0
    assert "ok: qa" in capsys.readouterr().out
    assert main(["validate", "qa", "curate.threshold=banana"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("synthrun: error:") and "curate" in err and "threshold" in err
    assert len(err.splitlines()) == 1


def test_validate_unknown_recipe(capsys):
    assert main(["validate", "no_such_recipe"]) == 1
    err = capsys.readouterr().err
    assert "no_such_recipe" in err


def test_target_outside_synthrun_is_refused(capsys):
    assert main(["validate", "qa", "curate._target_=os.system"]) == 1
    assert "not allowed" in capsys.readouterr().err


def test_no_recipe_is_an_error(capsys):
    assert main(["curate.threshold=3"]) == 2
    assert "no recipe chosen" in capsys.readouterr().err


def test_secret_override_refused_before_anything_is_written(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SYNTHRUN_OUTPUTS", str(tmp_path))
    fake = "sk-test-" + "a1b2c3d4" * 5
    assert main(["+recipe=qa", f"provider.api_key={fake}"]) == 2
    err = capsys.readouterr().err
    assert "refusing override" in err and fake not in err
    assert list(tmp_path.iterdir()) == []


def test_run_name_is_safe_for_folders():
    assert _run_name(None, "") == "default"
    assert _run_name("mine", "a=1") == "mine"
    assert "/" not in _run_name(None, "provider.model=openai/gpt-4o")
    assert len(_run_name(None, "x=" + "y" * 500)) <= 120


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("synthrun: error:")
    return lines[0]


def test_run_with_unknown_recipe_or_provider_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SYNTHRUN_OUTPUTS", str(tmp_path))
    assert main(["+recipe=no_such_recipe"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "recipe/no_such_recipe" in line and "hdf5_tools" in line and "qa" in line
    assert main(["+recipe=qa", "provider=nope"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "provider/nope" in line and "ollama" in line
    assert main(["+recipe=qa", "curate.no_such_param=3"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "curate.no_such_param" in line and "+curate.no_such_param=3" in line
    assert list(tmp_path.iterdir()) == []
    assert "HYDRA_FULL_ERROR" not in os.environ


def test_missing_or_broken_prompt_file_fails_before_anything_runs(tmp_path, capsys):
    assert main(["validate", "qa", f"generate.prompt_file={tmp_path}/nope.yaml"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "stage 'generate'" in line and "nope.yaml" in line
    broken = tmp_path / "broken.yaml"
    broken.write_text("system: only a system prompt\n")
    assert main(["validate", "qa", f"generate.prompt_file={broken}"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "broken.yaml" in line and "'user' template" in line
    good = tmp_path / "mine.yaml"
    good.write_text("user: 'Write a question about {{ text }}'\n")
    assert main(["validate", "qa", f"generate.prompt_file={good}"]) == 0
