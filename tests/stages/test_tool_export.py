"""tool_export: the four formats, files under the stage folder, and a real chat-template render."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from synthrun.io import read_jsonl
from synthrun.stages.tool_execute import ExecuteTools
from synthrun.stages.tool_export import ExportTools
from tests.tools.examples import GOOD, example
from tests.tools.fake_llm import make_ctx

TEMPLATE = Path(__file__).resolve().parents[1] / "data" / "chat_templates" / "chatml_tools.jinja"


@pytest.fixture
def exported(tmp_path):
    good = example(GOOD, ex_id="good")
    bad = example([GOOD[0], ("read_full_dataset", {"dataset": "$step1"})], ex_id="bad")
    failed = example([GOOD[0], ("get_by_path", {"parent": "$step1", "path": "/nope"})], ex_id="failed")
    records = ExecuteTools().run([good, bad, failed], make_ctx(tmp_path, {}, "execute"))
    ctx = make_ctx(tmp_path, {}, "export")
    out = ExportTools(system_prompt="You explore HDF5 files.").run(records, ctx)
    return out, ctx


def test_only_format_valid_executed_examples_are_exported(exported):
    out, ctx = exported
    assert [e.id for e in out] == ["good"]
    assert ctx.failures == {"format_check_failed": 1, "not_executed_ok": 1}
    for fmt in ("trl", "openai", "sharegpt", "reasoning"):
        assert len(read_jsonl(ctx.stage_dir / "dataset" / f"train.{fmt}.jsonl")) == 1


def test_trl_format(exported):
    _, ctx = exported
    [row] = read_jsonl(ctx.stage_dir / "dataset" / "train.trl.jsonl")
    roles = [m["role"] for m in row["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "tool", "assistant", "tool", "assistant"]
    call = row["messages"][4]["tool_calls"][0]["function"]
    assert call == {"name": "get_by_path", "arguments": {"parent": "hdf5://climate.h5#/",
                                                         "path": "/measurements/temperature"}}
    assert row["messages"][7]["content"] == "degC"
    assert {t["function"]["name"] for t in row["tools"]} == {"open_file", "get_by_path", "read_attribute", "get_dtype"}
    assert all(t["type"] == "function" and t["function"]["parameters"]["type"] == "object" for t in row["tools"])


def test_openai_sharegpt_and_reasoning_formats(exported):
    _, ctx = exported
    [oa] = read_jsonl(ctx.stage_dir / "dataset" / "train.openai.jsonl")
    call = oa["messages"][2]["tool_calls"][0]
    assert isinstance(call["function"]["arguments"], str)
    assert json.loads(call["function"]["arguments"]) == {"file_path": "climate.h5"}
    assert oa["messages"][3] == {"role": "tool", "tool_call_id": call["id"], "content": oa["messages"][3]["content"]}
    assert json.loads(oa["messages"][3]["content"])["handle"] == "hdf5://climate.h5#/"
    [sg] = read_jsonl(ctx.stage_dir / "dataset" / "train.sharegpt.jsonl")
    assert [t["from"] for t in sg["conversations"]] == ["human"] + ["function_call", "observation"] * 3 + ["gpt"]
    assert json.loads(sg["conversations"][1]["value"]) == {"name": "open_file", "arguments": {"file_path": "climate.h5"}}
    assert {t["name"] for t in json.loads(sg["tools"])} >= {"open_file", "read_attribute"}
    [rp] = read_jsonl(ctx.stage_dir / "dataset" / "train.reasoning.jsonl")
    assert set(rp) >= {"instruction", "solution", "metadata"}
    assert rp["metadata"] == {**rp["metadata"], "difficulty": "medium", "mode": "multi"}
    assert [s["tool"] for s in rp["solution"]["reasoning_path"]] == ["open_file", "get_by_path", "read_attribute"]
    assert rp["solution"]["reasoning_path"][1]["args"] == {"parent": "$step1", "path": "/measurements/temperature"}
    assert set(rp["solution"]["reasoning_path"][0]) >= {"step", "thought", "tool", "args"}
    assert {d["name"] for d in rp["solution"]["api_documentation"]} == {"open_file", "get_by_path", "read_attribute",
                                                                          "get_dtype"}


def _tokenizer(template: str):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "<|im_start|>": 1, "<|im_end|>": 2}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]", bos_token="<|im_start|>",
                                  eos_token="<|im_end|>")
    tok.chat_template = template
    return tok


def test_trl_rows_render_through_a_tool_chat_template(exported):
    _, ctx = exported
    [row] = read_jsonl(ctx.stage_dir / "dataset" / "train.trl.jsonl")
    tok = _tokenizer(TEMPLATE.read_text())
    text = tok.apply_chat_template(row["messages"], tools=row["tools"], tokenize=False)
    assert text.startswith("<|im_start|>system\nYou explore HDF5 files.")
    tools_block = re.search(r"<tools>\n(.*)\n</tools>", text, re.S).group(1)
    assert [json.loads(line)["function"]["name"] for line in tools_block.splitlines()] == [
        t["function"]["name"] for t in row["tools"]]
    calls = [json.loads(c) for c in re.findall(r"<tool_call>\n(.*?)\n</tool_call>", text, re.S)]
    assert calls == [{"name": "open_file", "arguments": {"file_path": "climate.h5"}},
                     {"name": "get_by_path", "arguments": {"parent": "hdf5://climate.h5#/",
                                                           "path": "/measurements/temperature"}},
                     {"name": "read_attribute", "arguments": {"handle": "hdf5://climate.h5#/measurements/temperature",
                                                              "name": "units"}}]
    assert text.count("<tool_response>") == 3 and "degC" in text
    assert text.rstrip().endswith("The units are degC.<|im_end|>")
    # OpenAI rows carry arguments as JSON strings, which such templates refuse
    [oa] = read_jsonl(ctx.stage_dir / "dataset" / "train.openai.jsonl")
    with pytest.raises(Exception, match="must be an object"):
        tok.apply_chat_template(oa["messages"], tools=oa["tools"], tokenize=False)


def test_the_embedded_models_template_has_no_tool_support():
    import gguf

    from synthrun.llm.local_engine import default_gguf_path

    reader = gguf.GGUFReader(str(default_gguf_path()))
    field = reader.fields["tokenizer.chat_template"]
    template = bytes(field.parts[field.data[0]]).decode()
    assert "im_start" in template and "tools" not in template and "tool_calls" not in template
    # rendered with it, the tools column would simply vanish: hence the tool template above
    tok = _tokenizer(template)
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tools=[{"type": "function", "function": {
        "name": "open_file", "description": "", "parameters": {"type": "object", "properties": {}}}}], tokenize=False)
    assert "open_file" not in text


def test_validation_split(tmp_path):
    records = ExecuteTools().run([example(GOOD, ex_id=f"e{i}") for i in range(12)], make_ctx(tmp_path, {}, "x"))
    ctx = make_ctx(tmp_path, {}, "export")
    ExportTools(formats=["trl"], val_fraction=0.3).run(records, ctx)
    train = read_jsonl(ctx.stage_dir / "dataset" / "train.trl.jsonl")
    val = read_jsonl(ctx.stage_dir / "dataset" / "validation.trl.jsonl")
    assert len(train) + len(val) == 12 and val and train


def test_every_format_marks_simulated_results(tmp_path):
    from synthrun.tools.loading import load_spec
    from tests.tools.test_recipes_tools import UNTYPED

    ex = example([("count_numbers", {"category": "primes"})], ex_id="sim", extra_tools=("square_root",),
                 tools=load_spec(UNTYPED))
    records = ExecuteTools().run([ex], make_ctx(tmp_path, {}, "execute"))
    assert records[0].reasoning_path[0].simulated
    ctx = make_ctx(tmp_path, {}, "export")
    ExportTools().run(records, ctx)
    for fmt in ("trl", "openai", "sharegpt", "reasoning"):
        [row] = read_jsonl(ctx.stage_dir / "dataset" / f"train.{fmt}.jsonl")
        assert row["metadata"]["simulated"] is True and row["metadata"]["simulated_steps"] == [1], fmt
    ctx = make_ctx(tmp_path, {}, "plain")
    ExportTools(formats=["openai"], metadata=False).run(records, ctx)
    [row] = read_jsonl(ctx.stage_dir / "dataset" / "train.openai.jsonl")
    assert set(row) == {"messages", "tools"}


def test_real_results_are_marked_not_simulated(exported):
    _, ctx = exported
    for fmt in ("trl", "openai", "sharegpt", "reasoning"):
        [row] = read_jsonl(ctx.stage_dir / "dataset" / f"train.{fmt}.jsonl")
        assert row["metadata"]["simulated"] is False and row["metadata"]["simulated_steps"] == [], fmt
