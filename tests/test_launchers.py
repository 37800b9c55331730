"""Hydra launchers for sweeps: joblib runs the jobs of a sweep in parallel worker processes and the
sweep summary still gathers them; the Ray and Slurm (submitit) launcher configs compose."""

from __future__ import annotations

import csv
import json
import os

import pytest
import yaml

from tests.llm.fake_openai_server import FakeOpenAIServer
from tests.shard_recipes import provider_args, write_rate_recipe


def test_joblib_sweep_runs_two_jobs_in_workers_and_summarizes_them(tmp_path, monkeypatch):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    from synthrun.cli import main

    monkeypatch.setenv("SYNTHRUN_RECIPE_PATH", str(write_rate_recipe(tmp_path, 12)))
    monkeypatch.setenv("SYNTHRUN_OUTPUTS", str(tmp_path / "out"))
    with FakeOpenAIServer() as server:  # run_recipe cannot be used: the jobs do not run in this process
        assert main(["-m", "+recipe=shardy", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                     "curate.threshold=3,7", "sweep_name=jl", *provider_args(server.base_url)]) == 0
        assert 12 <= len(server.requests) <= 24  # the two jobs share the cache file
    sweep = tmp_path / "out" / "shardy" / "sweeps" / "jl"
    launcher = yaml.safe_load((sweep / "multirun.yaml").read_text())["hydra"]["launcher"]
    assert launcher["_target_"] == "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    with open(sweep / "sweep_summary.csv") as fh:
        rows = {r["run"]: r for r in csv.DictReader(fh)}
    assert len(rows) == 2 and {r["status"] for r in rows.values()} == {"completed"}
    kept = {name.split(",")[0]: int(r["rows_final"]) for name, r in rows.items()}
    assert kept["curate.threshold=3"] > kept["curate.threshold=7"] > 0  # a stricter threshold keeps fewer
    pids = {json.loads((sweep / name / ".lock").read_text())["pid"] for name in rows}
    assert len(pids) == 2 and os.getpid() not in pids  # each job ran in its own worker process


@pytest.mark.parametrize("launcher, target", [
    ("ray", "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher"),
    ("slurm", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"),
])
def test_cluster_launcher_configs_compose(tmp_path, monkeypatch, launcher, target):
    pytest.importorskip(target.rsplit(".", 2)[0])
    from synthrun.cli import register_resolvers
    from synthrun.recipes import compose

    monkeypatch.setenv("SYNTHRUN_RECIPE_PATH", str(write_rate_recipe(tmp_path, 4)))
    register_resolvers()
    cfg = compose("shardy", [f"hydra/launcher={launcher}"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_ == target
    if launcher == "slurm":  # conf/hydra/launcher/slurm.yaml: our defaults over submitit's
        assert cfg.hydra.launcher.timeout_min == 240 and cfg.hydra.launcher.cpus_per_task == 4
        assert str(cfg.hydra.launcher.submitit_folder).endswith("/.submitit/%j")
