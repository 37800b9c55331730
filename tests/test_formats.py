"""Record -> training-format converters: shape and content per format and record type."""

import json

import pytest

from synthrun.formats import FormatError, convert, render_reasoning, specialize
from synthrun.records import CoTExample, Provenance, QAPair, Rating, Record, ToolExample, ToolStep

QA = QAPair(id="qa1", question=" What does h5py.File open? ", answer="An HDF5 file.",
            provenance=Provenance(chunk_id="c1", source="docs/file.rst", model="local/smollm2-135m"),
            rating=Rating(clarity=3, accuracy=3, usefulness=2, difficulty=1, total=9))
COT = CoTExample(id="cot1", question="How many elements has a (3, 4) dataset?",
                 reasoning=["The shape is (3, 4).", "3 * 4 = 12."], answer="12")
TOOL = ToolExample(id="t1", instruction="Read the shape of /data in f.h5",
                   reasoning_path=[ToolStep(step=1, thought="Open the file", tool="h5_shape",
                                            args={"path": "/data"}, result=[3, 4])],
                   final_answer="The shape is (3, 4).")


def test_chatml_qa_with_system_prompt():
    row = convert(QA, "chatml", system_prompt="You are an HDF5 expert.")
    assert row == {"messages": [
        {"role": "system", "content": "You are an HDF5 expert."},
        {"role": "user", "content": "What does h5py.File open?"},
        {"role": "assistant", "content": "An HDF5 file."},
    ]}


def test_chatml_without_system_prompt_has_two_turns():
    assert [m["role"] for m in convert(QA, "chatml")["messages"]] == ["user", "assistant"]


def test_alpaca_and_alpaca_text():
    assert convert(QA, "alpaca") == {"instruction": "What does h5py.File open?", "input": "",
                                     "output": "An HDF5 file."}
    assert convert(QA, "alpaca", system_prompt="Be brief.")["system"] == "Be brief."
    text = convert(QA, "alpaca_text")["text"]
    assert "### Instruction:\nWhat does h5py.File open?\n\n### Response:\nAn HDF5 file." in text
    assert text.startswith("Below is an instruction")


def test_sharegpt():
    row = convert(COT, "sharegpt", system_prompt="sys", cot_style="none")
    assert row == {"conversations": [{"from": "system", "value": "sys"},
                                     {"from": "human", "value": COT.question},
                                     {"from": "gpt", "value": "12"}]}


@pytest.mark.parametrize("style,expected", [
    ("steps", "Step 1: The shape is (3, 4).\nStep 2: 3 * 4 = 12.\n\nAnswer: 12"),
    ("think_tags", "<think>\nThe shape is (3, 4).\n3 * 4 = 12.\n</think>\n\n12"),
    ("none", "12"),
])
def test_cot_styles_in_assistant_turn(style, expected):
    assert convert(COT, "chatml", cot_style=style)["messages"][-1]["content"] == expected


def test_tool_example_renders_steps_and_answer():
    content = convert(TOOL, "chatml")["messages"][-1]["content"]
    assert content.startswith("Step 1: Open the file: call h5_shape(path='/data') -> [3, 4]")
    assert content.endswith("Answer: The shape is (3, 4).")


def test_jsonl_keeps_fields_and_provenance_only_on_request():
    row = convert(QA, "jsonl")
    assert row["question"].strip() == "What does h5py.File open?" and row["rating"]["total"] == 9
    assert "provenance" not in row
    assert convert(QA, "jsonl", include_provenance=True)["provenance"]["chunk_id"] == "c1"
    generic = Record(id="r1", foo={"bar": 1})
    assert convert(generic, "jsonl") == {"id": "r1", "foo": {"bar": 1}}


def test_include_provenance_adds_metadata():
    meta = convert(QA, "sharegpt", include_provenance=True)["metadata"]
    assert meta["id"] == "qa1"
    assert meta["provenance"] == {"chunk_id": "c1", "source": "docs/file.rst", "model": "local/smollm2-135m"}
    assert meta["rating"]["total"] == 9


def test_specialize_recovers_types_from_plain_records():
    plain = Record.model_validate(COT.model_dump())
    assert isinstance(specialize(plain), CoTExample)
    assert isinstance(specialize(Record.model_validate(QA.model_dump())), QAPair)
    assert isinstance(specialize(TOOL.model_dump()), ToolExample)
    assert type(specialize(Record(id="x"))) is Record


def test_generic_instruction_output_record_and_errors():
    rec = Record(id="g", instruction="Say hi", output="hi")
    assert convert(rec, "alpaca")["output"] == "hi"
    with pytest.raises(FormatError, match="no question/answer fields"):
        convert(Record(id="x", foo=1), "chatml")
    with pytest.raises(FormatError, match="unknown export format"):
        convert(QA, "parquet")
    with pytest.raises(FormatError, match="cot_style"):
        render_reasoning(["a"], "b", "bullets")


# ---------------------------------------------------------------------------- one module per format


def _cot():
    return CoTExample(id="c1", question="Why chunk a dataset?", reasoning=["Reads touch whole chunks.", "Small reads win."],
                      answer="Chunking matches the access pattern.")


def _tool_example():
    from tests.tools.examples import GOOD, example

    ex = example(GOOD, ex_id="t1")
    steps = [s.model_copy(update={"ok": True, "result": {"value": i}, "executor": "hdf5"})
             for i, s in enumerate(ex.reasoning_path)]
    return ex.model_copy(update={"reasoning_path": steps})


@pytest.mark.parametrize("name", sorted(__import__("synthrun.formats", fromlist=["registry"]).registry()))
def test_every_format_reads_back_what_it_writes(name):
    from synthrun.formats import WriteOptions, get, read_back

    module = get(name)
    if "qa" in module.KINDS:
        record = _cot()
        row = module.write(record, WriteOptions(system_prompt="Be brief.", cot_style="think_tags"))
        fmt, got = read_back(row)
        assert (got.question, got.answer, got.reasoning) == (record.question, record.answer, record.reasoning)
    if "tool" in module.KINDS:
        ex = _tool_example()
        row = module.write(ex, WriteOptions(tool_turns=True))
        fmt, got = read_back(row)
        assert (got.question, got.answer) == (ex.instruction, ex.final_answer)
        assert len(got.reasoning) == len(ex.reasoning_path)
    assert fmt == name, "the module that wrote a row is the one that reads it back"


def test_a_new_format_is_one_module(tmp_path, monkeypatch):
    import synthrun.formats as formats
    from synthrun.context import StageContext
    from synthrun.stages.compare import to_example
    from synthrun.stages.export import Export

    (tmp_path / "qa_lines.py").write_text(
        '"""Q/A lines: {"qa": "Q: ...\\nA: ..."}."""\n'
        "from synthrun.formats._common import ReadBack, prompt_and_response\n"
        'NAME = "qa_lines"\nKINDS = frozenset({"qa"})\nPARSE_ORDER = 60\n\n'
        "def write(record, opts):\n"
        "    q, a = prompt_and_response(record, opts.cot_style)\n"
        '    return {"qa": f"Q: {q}\\nA: {a}"}\n\n'
        "def parse(row):\n"
        '    text = row.get("qa")\n'
        '    if not isinstance(text, str) or not text.startswith("Q: "):\n'
        "        return None\n"
        '    q, _, a = text[3:].partition("\\nA: ")\n'
        "    return ReadBack(q, a)\n", encoding="utf-8")
    monkeypatch.setattr(formats, "__path__", [*formats.__path__, str(tmp_path)])
    formats.registry.cache_clear()
    try:
        assert "qa_lines" in formats.names("qa")
        ctx = StageContext(name="export", run_id="r", run_dir=tmp_path, stage_dir=tmp_path / "export",
                           show_progress=False)
        Export(format="qa_lines", cot_style="none").run([_cot()], ctx)
        row = json.loads((tmp_path / "export" / "dataset" / "train.qa_lines.jsonl").read_text())
        assert row == {"qa": "Q: Why chunk a dataset?\nA: Chunking matches the access pattern."}
        assert to_example(row)["format"] == "qa_lines" and to_example(row)["question"] == "Why chunk a dataset?"
    finally:
        monkeypatch.undo()
        formats.registry.cache_clear()
        import sys

        sys.modules.pop("synthrun.formats.qa_lines", None)
    with pytest.raises(ValueError, match="unknown export format 'qa_lines'"):
        Export(format="qa_lines")
