"""train: a killed training resumes from its last checkpoint; bad parameters and data fail in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synthrun.api import run_recipe

REPO = Path(__file__).resolve().parents[2]


def _command(out: Path, data: Path, base: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "synthrun", "+recipe=finetune", f"load.path={data}", "stages=[load,split,train]",
            f"train.base_model={base}", "train.batch_size=2", "train.threads=1", "train.r=4", "train.alpha=8",
            "progress=false", f"paths.output_root={out}", *extra]


def test_killed_training_resumes_from_last_checkpoint(tmp_path, small_qa, tiny_llama):
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = _command(tmp_path / "out", small_qa, tiny_llama, "train.max_steps=30", "train.save_steps=2")
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    states: list[Path] = []
    while proc.poll() is None and not states:
        states = list((tmp_path / "out").glob("finetune/*/03_train/checkpoints/checkpoint-*/trainer_state.json"))
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    assert states, f"training ended before any checkpoint: {proc.stderr.read().decode()[-500:]}"
    train_dir = states[0].parents[2]
    assert not (train_dir / "_SUCCESS").exists()
    steps = [int(p.parent.name.split("-")[1]) for p in train_dir.glob("checkpoints/checkpoint-*/trainer_state.json")]

    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-800:]
    details = json.loads((train_dir / "summary.json").read_text())["details"]
    assert details["resumed_from_step"] >= max(steps) > 0
    assert details["steps"] == 30
    assert "resuming training from" in (train_dir.parent / "run.log").read_text()


def _fails(tmp_path, capsys, overrides: list[str]) -> str:
    from synthrun.cli import main

    code = main(["+recipe=finetune", *overrides, "progress=false", f"paths.output_root={tmp_path / 'out'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and err
    return err[-1]


def test_bad_inputs_give_one_line_errors(tmp_path, capsys, small_qa, tiny_llama):
    line = _fails(tmp_path, capsys, [f"load.path={small_qa}", "train.r=0"])
    assert line.startswith("synthrun: error:") and "r" in line and "greater than 0" in line
    line = _fails(tmp_path, capsys, [f"load.path={small_qa}", f"train.base_model={tmp_path / 'missing-model'}"])
    assert line.startswith("synthrun: error:") and "missing-model: no such file or folder" in line
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    line = _fails(tmp_path, capsys, [f"load.path={empty}", f"train.base_model={tiny_llama}"])
    assert line.startswith("synthrun: error:") and "no training examples" in line
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"messages": [\n')
    line = _fails(tmp_path, capsys, [f"load.path={broken}", f"train.base_model={tiny_llama}"])
    assert "broken.jsonl:1: not valid JSON" in line
    no_answer = tmp_path / "no_answer.jsonl"
    no_answer.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"},
                                                  {"role": "assistant", "content": " "}]}) + "\n")
    line = _fails(tmp_path, capsys, [f"load.path={no_answer}", f"train.base_model={tiny_llama}"])
    assert "no_answer.jsonl:1: no assistant turn with text" in line


def test_failed_export_keeps_the_earlier_good_one(tmp_path, small_qa, tiny_llama):
    out = tmp_path / "out"
    common = [f"load.path={small_qa}", f"train.base_model={tiny_llama}", "train.max_steps=2", "train.threads=1",
              "train.batch_size=2", "train.r=4", "train.alpha=8", "evaluate.max_questions=1",
              "evaluate.max_new_tokens=4", "export.types=[q8_0]", "export.ollama=never", "progress=false",
              "run_name=keep"]
    run_dir = run_recipe("finetune", common, output_root=out)
    good = (run_dir / "06_export" / "model.q8_0.gguf").read_bytes()
    (run_dir / "05_merge" / "model" / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    (run_dir / "06_export" / "_SUCCESS").unlink()
    with pytest.raises(RuntimeError):
        run_recipe("finetune", common, output_root=out)
    assert (run_dir / "06_export" / "model.q8_0.gguf").read_bytes() == good
