"""Hand-built tool-use examples over the HDF5 spec (no LLM needed)."""

from __future__ import annotations

from synthrun.records import ToolExample, ToolStep
from synthrun.tools.loading import load_spec

_HDF5 = None


def hdf5_tools():
    global _HDF5
    if _HDF5 is None:
        _HDF5 = load_spec("recipes/data/hdf5_tools.json")
    return _HDF5


def example(steps: list[tuple[str, dict]], instruction: str = "What are the units of the temperature in climate.h5?",
            extra_tools: tuple[str, ...] = ("get_dtype",), answer: str = "The units are degC.", ex_id: str = "ex",
            tools=None) -> ToolExample:
    spec = tools or hdf5_tools()
    names = list(dict.fromkeys([t for t, _ in steps if t in spec.names] + list(extra_tools)))
    return ToolExample(
        id=ex_id, instruction=instruction, tools=[spec.get(n).model_dump(mode="json") for n in names],
        reasoning_path=[ToolStep(step=i, thought="I need to do this.", tool=t, args=a) for i, (t, a) in enumerate(steps, 1)],
        final_answer=answer, metadata={"mode": "multi", "difficulty": "medium", "environment": {"hdf5": {"file": "climate.h5"}}},
    )


GOOD = [("open_file", {"file_path": "climate.h5"}),
        ("get_by_path", {"parent": "$step1", "path": "/measurements/temperature"}),
        ("read_attribute", {"handle": "$step2", "name": "units"})]
