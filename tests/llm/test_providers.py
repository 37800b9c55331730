"""The provider listing read from conf/provider/*.yaml."""

from __future__ import annotations

from synthrun.llm.providers import provider_table
from synthrun.paths import conf_dir


def test_one_row_per_provider_file_with_hints():
    rows = {r["name"]: r for r in provider_table()}
    assert set(rows) == {p.stem for p in (conf_dir() / "provider").glob("*.yaml")}
    assert rows["local"]["route"] == "in-process" and rows["local"]["model"] == "local/smollm2-135m"
    assert rows["openai"]["route"] == "http" and rows["openai"]["api_key_env"] == "OPENAI_API_KEY"
    assert rows["anthropic"]["route"] == "litellm"
    assert "OPENAI_API_BASE" in rows["openai"]["api_base"]
    assert "ollama serve" in rows["ollama"]["setup"]
    assert all(r["setup"] and r["description"] for r in rows.values())
