"""textfields: the text of any record shape (QA, CoT, tool use, Alpaca, chat, ShareGPT)."""

from synthrun.records import CoTExample, QAPair, Record, ToolExample, ToolStep
from synthrun.textfields import field_text, full_text, get_path, prompt_text, reasoning_steps, response_text


def test_dotted_paths_on_models_dicts_and_lists():
    rec = Record.model_validate({"id": "a", "meta": {"tags": ["x", "y"], "title": "T"}, "rating": {"total": 7}})
    assert get_path(rec, "meta.title") == "T"
    assert get_path(rec, "meta.tags.1") == "y"
    assert get_path(rec, "rating.total") == 7
    assert get_path(rec, "meta.missing", "d") == "d"
    assert get_path(rec, "meta.tags.9") is None
    assert get_path(QAPair(question="q", answer="a"), "question") == "q"


def test_chat_messages_select_turns_by_role():
    rec = Record.model_validate({"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is HDF5?"},
        {"role": "assistant", "content": "A file format."},
        {"role": "user", "content": [{"type": "text", "text": "And h5py?"}, {"type": "image_url", "image_url": {}}]},
    ]})
    assert field_text(rec, "messages.user") == "What is HDF5?\nAnd h5py?"
    assert field_text(rec, "messages.assistant") == "A file format."
    assert field_text(rec, "messages.1.content") == "What is HDF5?"
    assert prompt_text(rec) == "What is HDF5?\nAnd h5py?"
    assert response_text(rec) == "A file format."
    assert "Be brief." in field_text(rec, "messages")


def test_sharegpt_conversations():
    row = {"conversations": [{"from": "human", "value": "Hi there"}, {"from": "gpt", "value": "Hello!"}]}
    assert prompt_text(row) == "Hi there"
    assert response_text(row) == "Hello!"
    assert field_text(row, "conversations.gpt") == "Hello!"


def test_alpaca_instruction_gets_its_input():
    row = {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"}
    assert prompt_text(row) == "Translate to French.\nGood morning"
    assert response_text(row) == "Bonjour"
    assert full_text(row) == "Translate to French.\nGood morning\n\nBonjour"


def test_cot_and_tool_examples_include_their_steps():
    cot = CoTExample(question="2+3*4?", reasoning=["3*4 = 12", "2 + 12 = 14"], answer="14")
    assert reasoning_steps(cot) == ["3*4 = 12", "2 + 12 = 14"]
    assert response_text(cot) == "3*4 = 12\n2 + 12 = 14\n14"
    tool = ToolExample(instruction="Weather in Oslo?", final_answer="Sunny",
                       reasoning_path=[ToolStep(step=1, thought="look it up", tool="weather", args={"city": "Oslo"})])
    assert prompt_text(tool) == "Weather in Oslo?"
    steps = reasoning_steps(tool)
    assert len(steps) == 1 and "look it up" in steps[0] and "weather" in steps[0] and "Oslo" in steps[0]
    assert response_text(tool).endswith("Sunny")


def test_explicit_fields_are_joined_and_missing_ones_skipped():
    row = {"question": "Q?", "answer": "A.", "n": 3}
    assert prompt_text(row, ["question", "answer", "nope"]) == "Q?\n\nA."
    assert field_text(row, "n") == "3"
    assert prompt_text({"other": 1}) == ""
