"""Which override keys and values count as secrets (refused before Hydra writes anything), and real
``python -m synthrun`` processes showing that no key or password reaches the outputs folder."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from synthrun.secrets import (
    SecretOverrideError,
    check_overrides,
    contains_secret,
    is_secret_key,
    redact,
    redact_text,
)
from tests.conftest import write_chunk_db
from tests.llm.fake_openai_server import FakeOpenAIServer


@pytest.mark.parametrize("key", ["provider.api_key", "apiKey", "hf_token", "publish.token", "x.extra.token",
                                 "password", "aws_secret_access_key", "private_key", "authorization"])
def test_secret_key_names(key):
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["generate.max_tokens", "max_tokens", "tokens_out", "provider.api_key_env",
                                 "token_env", "sort_key", "key", "curate.threshold",
                                 "provider.api_key_required", "secret_key_file"])
def test_ordinary_key_names(key):
    assert not is_secret_key(key)


def test_token_budgets_are_accepted_and_keys_refused():
    check_overrides(["generate.max_tokens=96", "curate.max_tokens=64", "provider.api_key_env=OPENAI_API_KEY"])
    with pytest.raises(SecretOverrideError) as err:
        check_overrides(["provider.api_key=abc"])
    assert "abc" not in str(err.value)
    with pytest.raises(SecretOverrideError):
        check_overrides(["provider.model=sk-abcdefghijklmnop"])


def test_redact_keeps_counts_and_hides_keys():
    cfg = {"provider": {"api_key": "zzz", "max_tokens": 384, "api_key_env": "OPENAI_API_KEY"},
           "publish": {"token": "hf_abcdefghijklmnopqrstu"}}
    out = redact(cfg)
    assert out["provider"] == {"api_key": "<redacted>", "max_tokens": 384, "api_key_env": "OPENAI_API_KEY"}
    assert out["publish"]["token"] == "<redacted>"


# --- whole-command checks: a real `python -m synthrun` process, outputs in a tmp folder -------------

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-" + "leaktest0123456789" * 3
PASSWORD = "hunter2hunter2pw"


def _synthrun(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    full_env.pop("SYNTHRUN_OUTPUTS", None)
    return subprocess.run([sys.executable, "-m", "synthrun", *args], capture_output=True, text=True,
                          cwd=cwd, env=full_env, timeout=300)


def _leaks(root: Path, needle: str) -> list[str]:
    """Like ``grep -r needle root`` plus a search of every file and folder name."""
    if not root.exists():
        return []
    found = [str(p) for p in root.rglob("*") if needle in p.name]
    found += [str(p) for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]
    return found


def _qa(out: Path, server, chunk_db: Path) -> list[str]:
    return ["+recipe=qa", f"paths.output_root={out}", f"load.db={chunk_db}", "generate.n_pairs=1",
            "provider=vllm", f"provider.api_base={server.base_url}", "provider.model=hosted_vllm/fake",
            "provider.max_retries=0", "progress=false"]


SECRET_OVERRIDES = [
    ("+curate.llm={{model: hosted_vllm/fake, api_key: {key}}}", KEY),
    ("curate.llm={{model: hosted_vllm/fake, api_key: {key}}}", KEY),  # no '+': Hydra would echo it
    ("+provider.extra_headers={{Authorization: Bearer {key}}}", KEY),
    ("+curate.llm={{extra_headers: {{Authorization: Bearer {key}}}}}", KEY),
    ("+provider.extra={{metadata: [a, {{note: {key}}}]}}", KEY),
    ("curate.threshold=0,{key}", KEY),
    ("curate.threshold=choice(0,{key})", KEY),
    ("+curate.llm={{token: {pw}}}", PASSWORD),
    ("provider.api_base=http://user:{pw}@127.0.0.1:9/v1", PASSWORD),
    ("+curate.llm={{api_base: 'http://user:{pw}@127.0.0.1:9/v1'}}", PASSWORD),
    ("curate.llm={{model: {key}", KEY),  # not parseable: the raw text is scanned
]


@pytest.mark.parametrize("sweep", [False, True], ids=["run", "sweep"])
@pytest.mark.parametrize("template,needle", SECRET_OVERRIDES)
def test_secret_in_any_override_is_refused_before_any_output(tmp_path, chunk_db, template, needle, sweep):
    out = tmp_path / "out"
    override = template.format(key=KEY, pw=PASSWORD)
    with FakeOpenAIServer() as server:
        proc = _synthrun([*(["-m"] if sweep else []), *_qa(out, server, chunk_db), override], tmp_path)
        assert server.requests == []
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("synthrun: error: refusing override"), lines
    assert needle not in proc.stdout + proc.stderr
    assert not out.exists()
    assert _leaks(tmp_path, needle) == []


def test_env_key_and_env_credentials_url_never_reach_disk(tmp_path, chunk_db):
    """A key in the environment (single run and sweep) and a password in an env-supplied URL."""
    out = tmp_path / "out"
    with FakeOpenAIServer() as server:
        common = [f"paths.output_root={out}", f"load.db={chunk_db}", "generate.n_pairs=1", "progress=false",
                  "provider.max_retries=0", "export.include_provenance=true"]
        openai = ["+recipe=qa", "provider=openai", "provider.model=openai/fake", *common]
        env = {"OPENAI_API_KEY": KEY, "OPENAI_API_BASE": server.base_url}
        single = _synthrun([*openai, "curate.threshold=0"], tmp_path, env)
        sweep = _synthrun(["-m", *openai, "curate.threshold=0,9"], tmp_path, env)
        auth = {h.get("Authorization") or h.get("authorization") for h in server.headers}
        url = server.base_url.replace("http://", f"http://synth:{PASSWORD}@")
        vllm = _synthrun(["+recipe=qa", "provider=vllm", "provider.model=hosted_vllm/fake", *common], tmp_path,
                         {"VLLM_API_BASE": url})
    assert single.returncode == 0, single.stderr
    assert sweep.returncode == 0, sweep.stderr
    assert vllm.returncode == 0, vllm.stderr
    assert f"Bearer {KEY}" in auth, "the key from the environment must reach the server"
    saved = [p.read_text() for p in out.glob("qa/*/config.yaml")]
    assert len(saved) == 2 and sum("synth:<redacted>@127.0.0.1" in text for text in saved) == 1
    (sweep_dir,) = (out / "qa" / "sweeps").iterdir()  # no sweep_name: one new folder for the sweep
    assert len(list(sweep_dir.glob("*/metrics.json"))) == 2 and (sweep_dir / "sweep_summary.csv").is_file()
    assert _leaks(tmp_path, KEY) == [] and _leaks(tmp_path, PASSWORD) == []


def test_call_settings_stay_out_of_folder_names_and_run_ids(tmp_path):
    out = tmp_path / "out"
    write_chunk_db(tmp_path / "data" / "demo.lancedb")  # the qa recipe's default load.db under paths.data_dir
    with FakeOpenAIServer() as server:
        proc = _synthrun(["+recipe=qa", f"paths.output_root={out}", f"paths.data_dir={tmp_path / 'data'}",
                          "provider=vllm", "provider.model=hosted_vllm/fake", f"provider.api_base={server.base_url}",
                          "progress=false", "curate.threshold=0",
                          f"+curate.llm={{api_base: '{server.base_url}', concurrency: 2, temperature: 0.5}}",
                          f"+generate.llm.api_base={server.base_url}", "+generate.llm.timeout=30"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = (out / "qa").iterdir()
    expected = "+curate.llm=_temperature_0.5_,curate.threshold=0,provider.model=hosted_vllm_fake,provider=vllm"
    assert run_dir.name == expected
    rows = [json.loads(ln) for ln in (run_dir / "05_curate" / "data.jsonl").read_text().splitlines()]
    assert rows and {r["provenance"]["run_id"] for r in rows} == {f"qa/{expected}"}


def test_default_sweep_names_are_unique_and_readable():
    from synthrun.recipes import compose
    from synthrun.run_names import sweep_id

    a, b = sweep_id(), sweep_id()
    assert a != b
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", a)
    # what conf/config.yaml gives two sweeps composed back to back (same second) when no sweep_name is set
    first, second = compose("qa").sweep_name, compose("qa").sweep_name
    assert first != second and re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", first)


def test_credentials_in_urls_and_keys_in_text_are_redacted():
    assert redact_text("at http://bob:pa55word@host:8080/v1 ok") == "at http://bob:<redacted>@host:8080/v1 ok"
    assert KEY not in redact_text(f"header Bearer {KEY} and {KEY}")
    assert redact({"api_base": "https://u:p4ss@h/v1", "n": 3}) == {"api_base": "https://u:<redacted>@h/v1", "n": 3}
    assert not contains_secret("/data/task-management-docs.lancedb")
    assert not contains_secret("http://127.0.0.1:8000/v1") and contains_secret("http://u:p@127.0.0.1:8000/v1")


def test_ordinary_overrides_pass_the_check():
    check_overrides(["curate.threshold=0,9", "+curate.llm={model: openai/gpt-4o, temperature: 0.2}",
                     "provider.api_base=http://127.0.0.1:8000/v1", "generate.question_types=[factual,analytical]",
                     "+curate.llm={api_key: ${oc.env:JUDGE_KEY}}", "load.db=/tmp/sk-test/db.lancedb", "-m"])
