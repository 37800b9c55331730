"""Run folder names keep the overrides that change the data and drop the provider's transport fields."""

from __future__ import annotations

from synthrun.llm.provider_config import TRANSPORT_FIELDS
from synthrun.run_names import run_name


def test_transport_fields_stay_out_of_the_folder_name():
    for key in sorted(TRANSPORT_FIELDS):
        assert run_name(None, [f"provider.{key}=7", "curate.threshold=6"]) == "curate.threshold=6", key
        assert run_name(None, [f"+curate.llm.{key}=7"]) == "default", key


def test_answer_settings_name_the_folder():
    assert run_name(None, ["provider.temperature=0.2", "provider=vllm"]) == "provider.temperature=0.2,provider=vllm"
    assert run_name(None, ["+curate.llm={model: openai/gpt-4o, concurrency: 4}"]) == "+curate.llm=_model_openai_gpt-4o_"
    assert run_name(None, ["curate.timeout=5"]) == "curate.timeout=5"  # a stage parameter, not a call setting
