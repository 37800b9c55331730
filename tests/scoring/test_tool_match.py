"""The best_tool check: another offered tool fitting the request clearly better fails the example.

Runs the packaged all-MiniLM-L6-v2 (no download) on hand-built HDF5 examples."""

from __future__ import annotations

import math

import pytest

from synthrun.scoring.tool_gates import ToolGateConfig, best_tool, check_all
from synthrun.scoring.tool_match import best_match, lexical_scores, request_text, task_text, tool_text, words
from synthrun.tools.replay import example_tools
from synthrun.tools.spec import ToolSpec
from tests.tools.examples import GOOD, example, hdf5_tools

CFG = ToolGateConfig()
OFFERED = ("get_dtype", "get_shape", "list_attributes")
UNITS = "What are the units of the temperature in climate.h5?"
DTYPE = "Which data type do the values of the temperature in climate.h5 have?"


def chain(last: tuple[str, dict], instruction: str):
    return example([*GOOD[:2], last], instruction=instruction, extra_tools=OFFERED + ("read_attribute",))


READ_UNITS = ("read_attribute", {"handle": "$step2", "name": "units"})
GET_DTYPE = ("get_dtype", {"dataset": "$step2"})


def test_the_right_tool_passes():
    ex = chain(READ_UNITS, UNITS)
    assert best_tool(ex, example_tools(ex), CFG) is True
    ex = chain(GET_DTYPE, DTYPE)
    assert best_tool(ex, example_tools(ex), CFG) is True


def test_a_wrong_tool_fails_and_names_the_better_one():
    ex = chain(GET_DTYPE, UNITS)  # asks for units, reads the dtype
    ok, reason = best_tool(ex, example_tools(ex), CFG)
    assert not ok
    assert reason.startswith("tool_not_best_match: step 3 calls get_dtype, but read_attribute fits the request better")
    ex = chain(READ_UNITS, DTYPE)  # asks for the dtype, reads an attribute
    ok, reason = best_tool(ex, example_tools(ex), CFG)
    assert not ok and "calls read_attribute, but get_dtype fits" in reason
    assert check_all(ex, example_tools(ex), CFG)["best_tool"] == reason


def test_margin_is_the_rival_score_minus_the_chosen_one():
    right, wrong = chain(READ_UNITS, UNITS), chain(GET_DTYPE, UNITS)
    m_right = best_match(right, example_tools(right), CFG.match_model, CFG.match_lexical_weight)
    m_wrong = best_match(wrong, example_tools(wrong), CFG.match_model, CFG.match_lexical_weight)
    assert m_right.margin < 0 < m_wrong.margin and m_wrong.better == "read_attribute"
    loose = CFG.model_copy(update={"match_margin": m_wrong.margin + 0.01})
    assert best_tool(wrong, example_tools(wrong), loose) is True, "a margin below the bar passes"


def test_tools_the_example_calls_or_that_only_return_a_handle_never_compete():
    # one-shot statistics call; open_file (returns a handle) and get_by_path are offered, not called
    ex = example([("hdf5_aggregate_stats", {"file_path": "climate.h5", "dataset_path": "/measurements/temperature",
                                            "stats": ["mean"]})],
                 instruction="Open climate.h5 and give me the mean of /measurements/temperature.",
                 extra_tools=("open_file", "get_by_path", "hdf5_stream_data"))
    m = best_match(ex, example_tools(ex), CFG.match_model, CFG.match_lexical_weight)
    assert m.better != "open_file" and best_tool(ex, example_tools(ex), CFG) is True
    assert best_match(example([GOOD[0]], extra_tools=()), [], None, 0.03).margin == -math.inf, "no rival: nothing to say"


def test_lexical_only_without_an_embedding_model():
    lexical = CFG.model_copy(update={"match_model": None, "match_lexical_weight": 1.0, "match_margin": 0.0})
    ex = chain(GET_DTYPE, "List the attribute names of the temperature dataset in climate.h5.")
    ok, reason = best_tool(ex, example_tools(ex), lexical)
    assert not ok and "but list_attributes fits" in reason


def test_lexical_scores_weigh_words_by_rarity_among_the_offered_tools():
    a = ToolSpec(name="get_shape", description="Dimensions of a dataset.")
    b = ToolSpec(name="get_dtype", description="Element type of a dataset.")
    # request words: shape (in a only: log(3/1)), dataset (in both: log(3/2)); stop words never count
    assert lexical_scores("What is the shape of this dataset?", [a, b]) == pytest.approx(
        [math.log(3) + math.log(1.5), math.log(1.5)])
    assert words("list_keys of the groups") == {"list", "key", "group"}
    assert tool_text(a).startswith("get shape: Dimensions of a dataset.")
    assert request_text("Open climate.h5 now") == "Open file climate.h5 now"


SHAPE = "What is the shape of /measurements/pressure in climate.h5?"
PRESSURE = [("open_file", {"file_path": "climate.h5"}), ("get_by_path", {"parent": "$step1", "path": "/measurements/pressure"})]


def all_tools(steps: list[tuple[str, dict]], instruction: str):
    return example(steps, instruction=instruction, extra_tools=tuple(hdf5_tools().names))


def test_task_text_drops_the_objects_the_calls_are_given():
    ex = example([*PRESSURE, ("get_shape", {"dataset": "$step2"})], instruction=SHAPE)
    assert task_text(ex) == "What is the shape of  in ?"
    ex = example(GOOD, instruction="What are the units of the temperature dataset in climate.h5?")
    assert task_text(ex) == "What are the units of the  dataset in ?", "units (an attribute name) is a task word"


def test_with_all_25_tools_a_broad_sibling_no_longer_beats_the_specific_tool():
    # whole request only: hdf5_parallel_scan ("report shape, dtype, size and layout" of every dataset
    # of a file) fits the file and path names and wins by ~0.1; on the task words get_shape wins
    right = all_tools([*PRESSURE, ("get_shape", {"dataset": "$step2"})], SHAPE)
    assert len(example_tools(right)) == 25
    before = best_match(right, example_tools(right), CFG.match_model, CFG.match_lexical_weight, task_words=False)
    assert before.margin > CFG.match_margin and before.better == "hdf5_parallel_scan"
    assert best_tool(right, example_tools(right), CFG) is True
    wrong = all_tools([*PRESSURE, ("get_chunks", {"dataset": "$step2"})], SHAPE)  # asks for the shape, reads chunks
    ok, reason = best_tool(wrong, example_tools(wrong), CFG)
    assert not ok and "calls get_chunks" in reason
    off = CFG.model_copy(update={"match_task_words": False})
    assert best_tool(right, example_tools(right), off) is not True, "the old rule failed the right tool"
