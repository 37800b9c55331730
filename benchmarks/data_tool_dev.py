"""Build tests/data/judge/tool_dev.jsonl: labelled tool-use examples for judge evaluation.

Hand-written correct examples (request, calls, which value the answer states) over the HDF5 tools
are really executed with h5py on the sample files; examples over the other specs the tests ship
(an OpenAI tools list, an MCP tool list, a synthrun spec) use small hand-written worlds (marked
``simulated``). From each correct example the script derives the bad kinds:

* ``wrong_tool``: the answering call uses another offered tool that does not answer the request;
* ``wrong_arg_value``: an argument value that the request neither mentions nor implies;
* ``missing_required``: a required argument left out (the call fails when executed);
* ``extra_call``: an unrelated call added to the path;
* ``answer_ignores_result``: a final answer that ignores or contradicts the results;
* ``vague_request``: a request that names no task.

Final answers are rendered from the results by the same code for good and bad rows, so style
does not give the label away. Run: ``python benchmarks/data_tool_dev.py [out.jsonl]``.
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "judge" / "tool_dev.jsonl"

VAGUE = ["What can you do with the data?", "Tell me something about this file.", "Can you help me with this?",
         "Show me the information.", "Please look at it and tell me what you find.", "What is in there?",
         "I need some details.", "Can you check this for me?"]


IGNORING = ["I ran the tools and the request is answered.", "The call completed successfully.",
            "The data was read and everything looks fine.", "Here is the information you asked for."]


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.2f}".rstrip("0").rstrip(".") if abs(v) < 1e6 else f"{v:.0f}"
    return str(v)


def _list(items: list[Any], n: int = 3) -> str:
    items = [_num(x) for x in items[:n]]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1] if items else "nothing"


def _shape(s: Any) -> str:
    return " x ".join(str(x) for x in s) if isinstance(s, list) else str(s)


def render(tool: str, args: dict[str, Any], result: Any) -> str:  # noqa: C901 - one flat branch per tool
    """One answer sentence stating what ``result`` of ``tool`` says (shared by good and bad rows)."""
    obj = str(args.get("handle") or args.get("dataset") or args.get("group") or args.get("dataset_path")
              or args.get("path") or args.get("file_path") or "it")
    if obj.startswith("hdf5://"):
        obj = obj.split("#", 1)[1] or "/"
    r = result
    if tool == "read_attribute":
        return f"The {args.get('name')} attribute of {obj} is {_num(r) if not isinstance(r, list) else _list(r)}."
    if tool == "list_attributes":
        return f"{obj} has the attributes {_list(r, 5)}."
    if tool == "get_shape":
        return f"{obj} has shape {_shape(r)}."
    if tool == "get_dtype":
        return f"{obj} stores {r} values."
    if tool == "get_size":
        return f"{obj} holds {r} elements."
    if tool == "get_chunks":
        return f"{obj} is stored in chunks of {_shape(r)}." if r else f"{obj} is stored contiguously, without chunks."
    if tool == "get_compression":
        comp = r.get("compression") or "no"
        level = f" at level {r['compression_opts']}" if r.get("compression_opts") is not None else ""
        return f"{obj} uses {comp} compression{level}, shuffle {'on' if r.get('shuffle') else 'off'}."
    if tool in ("read_full_dataset", "read_partial_dataset"):
        return f"The values of {r.get('path', obj)} start with {_list(r.get('data') or [], 3)} (shape {_shape(r.get('shape'))})."
    if tool in ("list_keys", "visit"):
        return f"{obj} contains {len(r)} members, among them {_list(r, 3)}."
    if tool == "get_by_path":
        return f"{r.get('path')} is a {r.get('kind')} with shape {_shape(r.get('shape'))}."
    if tool == "open_file":
        return f"{r.get('filename')} is open in mode {r.get('mode')} with {r.get('members')} top-level members."
    if tool == "get_mode":
        return f"The file is open in mode {r}."
    if tool == "get_filename":
        return f"The handle belongs to {r}."
    if tool == "hdf5_aggregate_stats":
        parts = [f"{k} {_num(v)}" for k, v in r.items() if k not in ("dataset", "reads")]
        return f"For {r.get('dataset')}: {', '.join(parts)}."
    if tool == "hdf5_stream_data":
        means = [b["mean"] for b in r.get("blocks", [])]
        return f"{r.get('dataset')} was read in {r.get('n_blocks')} blocks with means {_list(means, 3)}."
    if tool == "hdf5_batch_read":
        parts = [f"{p} starts with {_list(v.get('data') or [], 2)}" for p, v in (r.get("results") or {}).items()]
        return "; ".join(parts) + "."
    if tool == "hdf5_parallel_scan":
        return f"{r.get('file')} has {r.get('n_datasets')} datasets with {r.get('total_bytes')} bytes in total."
    if tool == "analyze_dataset_structure":
        names = [d["path"] for d in r.get("datasets", [])]
        return f"{r.get('path')} holds {r.get('n_datasets')} datasets ({_list(names, 3)}) at depth {r.get('depth')}."
    if tool == "find_similar_datasets":
        return f"The datasets most similar to {args.get('dataset_path')} are {_list(r, 3)}."
    if tool == "suggest_next_exploration":
        return f"Look next at {_list([s['path'] for s in r], 3)}."
    if tool == "identify_io_bottlenecks":
        f = r.get("findings") or []
        first = f"; {f[0]['dataset']} has {f[0]['issue']}" if f else ""
        return f"There are {r.get('n_findings')} findings{first}."
    if tool == "optimize_access_pattern":
        return (f"For {r.get('access_pattern')} reads of {r.get('dataset')} use chunks of "
                f"{_shape(r.get('recommended_chunks'))} and a {r.get('chunk_cache_bytes')} byte chunk cache.")
    return SIM_RENDER[tool](args, r)


# ---------------------------------------------------------------- worlds of the other specs

def _sim_search(args):
    code = {"JFK": "BA", "CDG": "AF", "SFO": "UA", "MUC": "LH"}.get(args.get("origin"), "XX")
    price = 300 + 7 * sum(map(ord, str(args.get("destination")))) % 500
    return [{"flight_id": f"{code}{100 + len(str(args.get('date')))}", "depart": "08:15", "price": price},
            {"flight_id": f"{code}{200 + price % 50}", "depart": "17:40", "price": price + 85}]


SIM_RESULTS = {
    "search_flights": _sim_search,
    "book_flight": lambda a: {"booking_id": f"PNR{a.get('passengers', 0)}{str(a.get('flight_id'))[-3:]}",
                              "status": "confirmed", "passengers": a.get("passengers")},
    "get_weather": lambda a: {"city": a.get("city"), "temperature": 9 + len(str(a.get("city"))) % 12,
                              "conditions": ["light rain", "sunny", "overcast"][len(str(a.get("city"))) % 3],
                              "units": a.get("units") or "metric"},
    "read_file": lambda a: {"content": {"notes/todo.md": "buy milk; renew passport",
                                        "config/app.yaml": "port: 8080\nworkers: 4",
                                        "README.txt": "Project Orion: build with make"}.get(a.get("path"), "(empty)"),
                            "size": 42},
    "list_directory": lambda a: {"entries": {"src": ["main.py", "util.py"], "notes": ["todo.md", "ideas.md"],
                                             "config": ["app.yaml"]}.get(str(a.get("path")).strip("/"), [])},
    "search_files": lambda a: {"matches": [m for m in ["src/main.py", "src/util.py", "notes/todo.md", "config/app.yaml"]
                                           if m.endswith(str(a.get("pattern")).lstrip("*"))]},
    "login": lambda a: "sess-" + str(a.get("username")),
    "find_user": lambda a: {"ada@example.org": 17, "grace@example.org": 23}.get(a.get("email"), 99),
    "get_user": lambda a: {"user_id": a.get("user_id"), "name": {17: "Ada Lovelace", 23: "Grace Hopper"}.get(
        a.get("user_id"), "Unknown"), "email": {17: "ada@example.org", 23: "grace@example.org"}.get(a.get("user_id"), "")},
}

SIM_RENDER = {
    "search_flights": lambda a, r: f"The cheapest flight is {r[0]['flight_id']} at {r[0]['depart']} for {r[0]['price']} USD.",
    "book_flight": lambda a, r: f"Booking {r['booking_id']} is {r['status']} for {r['passengers']} passengers.",
    "get_weather": lambda a, r: f"It is {r['temperature']} degrees with {r['conditions']} in {r['city']}.",
    "read_file": lambda a, r: f"{a.get('path')} says: {r['content']}.",
    "list_directory": lambda a, r: f"{a.get('path')} contains {_list(r['entries'], 4)}.",
    "search_files": lambda a, r: f"The matching files are {_list(r['matches'], 4)}." if r["matches"] else "No file matches.",
    "login": lambda a, r: f"Logged in with session {r}.",
    "find_user": lambda a, r: f"The user id of {a.get('email')} is {r}.",
    "get_user": lambda a, r: f"User {r['user_id']} is {r['name']} ({r['email']}).",
}


# ---------------------------------------------------------------- the correct examples
# Each case: request, spec, env file, steps, distractors (offered unneeded tools), and how to derive
# the bad kinds: wrong_tool (tool offered instead of the answering one, same arguments), wrong_arg
# (step index, argument, value not in the request), missing (step index, required argument),
# extra (an unrelated call), wrong_answer (a contradicting answer).

H = "hdf5"
CASES: list[dict[str, Any]] = [
    dict(spec=H, file="climate.h5", request="What are the units of the temperature dataset in climate.h5?",
         steps=[("open_file", {"file_path": "climate.h5"}),
                ("get_by_path", {"parent": "$step1", "path": "/measurements/temperature"}),
                ("read_attribute", {"handle": "$step2", "name": "units"})],
         distractors=["get_dtype", "list_keys"], wrong_tool="get_dtype", wrong_arg=(1, "path", "/measurements/pressure"),
         missing=(2, "name"), extra=("get_compression", {"dataset": "$step2"}),
         wrong_answer="The units attribute of /measurements/temperature is kelvin."),
    dict(spec=H, file="climate.h5", request="What is the shape of /measurements/pressure in climate.h5?",
         steps=[("open_file", {"file_path": "climate.h5"}),
                ("get_by_path", {"parent": "$step1", "path": "/measurements/pressure"}),
                ("get_shape", {"dataset": "$step2"})],
         distractors=["get_size", "get_chunks"], wrong_tool="get_chunks", wrong_arg=(1, "path", "/measurements/humidity"),
         missing=(1, "path"), extra=("list_attributes", {"handle": "$step2"}),
         wrong_answer="/measurements/pressure has shape 720 x 8."),
    dict(spec=H, file="climate.h5", request="Which data type does the humidity dataset in climate.h5 use?",
         steps=[("open_file", {"file_path": "climate.h5"}),
                ("get_by_path", {"parent": "$step1", "path": "/measurements/humidity"}),
                ("get_dtype", {"dataset": "$step2"})],
         distractors=["get_shape", "read_attribute"], wrong_tool="get_shape", wrong_arg=(1, "path", "/stations/ids"),
         missing=(0, "file_path"), extra=("get_size", {"dataset": "$step2"}),
         wrong_answer="/measurements/humidity stores int64 values."),
    dict(spec=H, file="climate.h5", request="How many elements does the calibration dataset in climate.h5 hold?",
         steps=[("open_file", {"file_path": "climate.h5"}),
                ("get_by_path", {"parent": "$step1", "path": "/metadata/calibration"}),
                ("get_size", {"dataset": "$step2"})],
         distractors=["get_dtype", "list_attributes"], wrong_tool="get_dtype", wrong_arg=(1, "path", "/measurements/temperature"),
         missing=(2, "dataset"), extra=("read_attribute", {"handle": "$step2", "name": "method"}),
         wrong_answer="/metadata/calibration holds 64 elements."),
    dict(spec=H, file="climate.h5", request="What chunk shape does the humidity dataset of climate.h5 use?",
         steps=[("open_file", {"file_path": "climate.h5"}),
                ("get_by_path", {"parent": "$step1", "path": "/measurements/humidity"}),
                ("get_chunks", {"dataset": "$step2"})],
         distractors=["get_shape", "visit"], wrong_tool="get_shape", wrong_arg=(1, "path", "/measurements/temperature"),
         missing=(1, "parent"), extra=("get_dtype", {"dataset": "$step2"}),
         wrong_answer="/measurements/humidity is stored contiguously, without chunks."),
    dict(spec=H, file="climate.h5", request="Which compression filter is used for the temperature data in climate.h5?",
         steps=[("open_file", {"file_path": "climate.h5"}),
                ("get_by_path", {"parent": "$step1", "path": "/measurements/temperature"}),
                ("get_compression", {"dataset": "$step2"})],
         distractors=["get_chunks", "read_attribute"], wrong_tool="get_chunks", wrong_arg=(1, "path", "/measurements/humidity"),
         missing=(2, "dataset"), extra=("get_shape", {"dataset": "$step2"}),
         wrong_answer="/measurements/temperature uses no compression, shuffle off."),
    dict(spec=H, file="climate.h5", request="List the attributes of the coordinates dataset in climate.h5.",
         steps=[("open_file", {"file_path": "climate.h5"}),
                ("get_by_path", {"parent": "$step1", "path": "/stations/coordinates"}),
                ("list_attributes", {"handle": "$step2"})],
         distractors=["get_shape", "get_size"], wrong_tool="get_shape", wrong_arg=(1, "path", "/stations/names"),
         missing=(2, "handle"), extra=("get_size", {"dataset": "$step2"}),
         wrong_answer="/stations/coordinates has the attributes title and institution."),
    dict(spec=H, file="climate.h5", request="Show rows 0 to 2 of the pressure dataset in climate.h5.",
         steps=[("open_file", {"file_path": "climate.h5"}),
                ("get_by_path", {"parent": "$step1", "path": "/measurements/pressure"}),
                ("read_partial_dataset", {"dataset": "$step2", "start": 0, "stop": 2})],
         distractors=["get_shape", "get_dtype"], wrong_tool="get_shape", wrong_arg=(2, "stop", 6),
         missing=(2, "stop"), extra=("list_attributes", {"handle": "$step2"}),
         wrong_answer="The values of /measurements/pressure start with 0, 0 and 0 (shape 2 x 720)."),
    dict(spec=H, file="climate.h5", request="What top-level groups does climate.h5 have?",
         steps=[("open_file", {"file_path": "climate.h5"}), ("list_keys", {"group": "$step1"})],
         distractors=["list_attributes", "get_mode"], wrong_tool="list_attributes", wrong_arg=(0, "file_path", "experiment.h5"),
         missing=(1, "group"), extra=("get_mode", {"file": "$step1"}),
         wrong_answer="/ contains 2 members, among them /data and /logs."),
    dict(spec=H, file="experiment.h5", request="What top-level groups does experiment.h5 contain?",
         steps=[("open_file", {"file_path": "experiment.h5"}), ("list_keys", {"group": "$step1"})],
         distractors=["list_attributes", "get_filename"], wrong_tool="list_attributes", wrong_arg=(0, "file_path", "climate.h5"),
         missing=(0, "file_path"), extra=("get_filename", {"handle": "$step1"}),
         wrong_answer="/ contains 1 members, among them /images."),
    dict(spec=H, file="experiment.h5", request="Who is the operator recorded in the attributes of experiment.h5?",
         steps=[("open_file", {"file_path": "experiment.h5"}), ("read_attribute", {"handle": "$step1", "name": "operator"})],
         distractors=["list_keys", "get_mode"], wrong_tool="list_attributes", wrong_arg=(1, "name", "experiment"),
         missing=(1, "name"), extra=("list_keys", {"group": "$step1"}),
         wrong_answer="The operator attribute of / is beamline-7."),
    dict(spec=H, file="experiment.h5", request="At what temperature_K was run_002 in experiment.h5 measured?",
         steps=[("open_file", {"file_path": "experiment.h5"}),
                ("get_by_path", {"parent": "$step1", "path": "/run_002"}),
                ("read_attribute", {"handle": "$step2", "name": "temperature_K"})],
         distractors=["list_keys", "get_filename"], wrong_tool="list_attributes", wrong_arg=(1, "path", "/run_001"),
         missing=(2, "name"), extra=("list_keys", {"group": "$step2"}),
         wrong_answer="The temperature_K attribute of /run_002 is 295."),
    dict(spec=H, file="experiment.h5", request="What is the shape of the images in run_001 of experiment.h5?",
         steps=[("open_file", {"file_path": "experiment.h5"}),
                ("get_by_path", {"parent": "$step1", "path": "/run_001/images"}),
                ("get_shape", {"dataset": "$step2"})],
         distractors=["get_compression", "get_dtype"], wrong_tool="get_compression", wrong_arg=(1, "path", "/run_002/images"),
         missing=(1, "path"), extra=("get_dtype", {"dataset": "$step2"}),
         wrong_answer="/run_001/images has shape 6 x 32 x 32."),
    dict(spec=H, file="experiment.h5", request="How are the spectra of run_002 in experiment.h5 compressed?",
         steps=[("open_file", {"file_path": "experiment.h5"}),
                ("get_by_path", {"parent": "$step1", "path": "/run_002/spectra"}),
                ("get_compression", {"dataset": "$step2"})],
         distractors=["get_size", "list_keys"], wrong_tool="get_size", wrong_arg=(1, "path", "/calibration/gain"),
         missing=(2, "dataset"), extra=("get_size", {"dataset": "$step2"}),
         wrong_answer="/run_002/spectra uses lzf compression, shuffle off."),
    dict(spec=H, file="climate.h5", request="Give me the mean, min and max of /measurements/pressure in climate.h5.",
         steps=[("hdf5_aggregate_stats", {"file_path": "climate.h5", "dataset_path": "/measurements/pressure"})],
         distractors=["hdf5_stream_data", "find_similar_datasets"], wrong_tool="find_similar_datasets",
         wrong_arg=(0, "dataset_path", "/measurements/humidity"), missing=(0, "dataset_path"),
         extra=("identify_io_bottlenecks", {"file_path": "climate.h5"}),
         wrong_answer="For /measurements/pressure: mean 1100.5, min 950.25, max 1201.75."),
    dict(spec=H, file="climate.h5", request="Compute the mean and max of the temperature dataset in climate.h5.",
         steps=[("hdf5_aggregate_stats", {"file_path": "climate.h5", "dataset_path": "/measurements/temperature",
                                          "stats": ["mean", "max"]})],
         distractors=["analyze_dataset_structure", "hdf5_batch_read"], wrong_tool="find_similar_datasets",
         wrong_arg=(0, "dataset_path", "/measurements/humidity"), missing=(0, "file_path"),
         extra=("hdf5_parallel_scan", {"file_path": "climate.h5"}),
         wrong_answer="For /measurements/temperature: mean 31.5, max 55.2."),
    dict(spec=H, file="experiment.h5", request="Stream the timestamps of run_002 in experiment.h5 in blocks of 2 rows.",
         steps=[("hdf5_stream_data", {"file_path": "experiment.h5", "dataset_path": "/run_002/timestamps", "block_rows": 2})],
         distractors=["hdf5_aggregate_stats", "get_shape"], wrong_tool="hdf5_aggregate_stats",
         wrong_arg=(0, "block_rows", 5), missing=(0, "dataset_path"),
         extra=("suggest_next_exploration", {"file_path": "experiment.h5"}),
         wrong_answer="/run_002/timestamps was read in 7 blocks with means 10, 20 and 30."),
    dict(spec=H, file="climate.h5", request="Read /stations/ids and /metadata/calibration from climate.h5 in one call.",
         steps=[("hdf5_batch_read", {"file_path": "climate.h5", "dataset_paths": ["/stations/ids", "/metadata/calibration"]})],
         distractors=["hdf5_parallel_scan", "visit"], wrong_tool="hdf5_parallel_scan",
         wrong_arg=(0, "dataset_paths", ["/stations/ids", "/measurements/humidity"]), missing=(0, "dataset_paths"),
         extra=("identify_io_bottlenecks", {"file_path": "climate.h5"}),
         wrong_answer="/stations/ids starts with 1 and 2; /metadata/calibration starts with 5.5 and 6.5."),
    dict(spec=H, file="experiment.h5", request="How many datasets does experiment.h5 have and how many bytes do they take?",
         steps=[("hdf5_parallel_scan", {"file_path": "experiment.h5"})],
         distractors=["identify_io_bottlenecks", "analyze_dataset_structure"], wrong_tool="identify_io_bottlenecks",
         wrong_arg=(0, "file_path", "climate.h5"), missing=(0, "file_path"),
         extra=("suggest_next_exploration", {"file_path": "experiment.h5"}),
         wrong_answer="experiment.h5 has 3 datasets with 1024 bytes in total."),
    dict(spec=H, file="experiment.h5", request="Describe the structure of the run_001 group in experiment.h5.",
         steps=[("analyze_dataset_structure", {"file_path": "experiment.h5", "path": "/run_001"})],
         distractors=["suggest_next_exploration", "hdf5_aggregate_stats"], wrong_tool="identify_io_bottlenecks",
         wrong_arg=(0, "path", "/calibration"), missing=(0, "file_path"),
         extra=("hdf5_aggregate_stats", {"file_path": "experiment.h5", "dataset_path": "/run_001/timestamps"}),
         wrong_answer="/run_001 holds 9 datasets (/run_001/a, /run_001/b and /run_001/c) at depth 4."),
    dict(spec=H, file="climate.h5", request="Which datasets in climate.h5 are most similar to /measurements/temperature?",
         steps=[("find_similar_datasets", {"file_path": "climate.h5", "dataset_path": "/measurements/temperature"})],
         distractors=["hdf5_aggregate_stats", "suggest_next_exploration"], wrong_tool="hdf5_aggregate_stats",
         wrong_arg=(0, "dataset_path", "/stations/ids"), missing=(0, "dataset_path"),
         extra=("hdf5_parallel_scan", {"file_path": "climate.h5"}),
         wrong_answer="The datasets most similar to /measurements/temperature are /stations/names and /stations/ids."),
    dict(spec=H, file="climate.h5", request="Which layout problems make reading climate.h5 slow?",
         steps=[("identify_io_bottlenecks", {"file_path": "climate.h5"})],
         distractors=["optimize_access_pattern", "hdf5_parallel_scan"], wrong_tool="hdf5_parallel_scan",
         wrong_arg=(0, "file_path", "experiment.h5"), missing=(0, "file_path"),
         extra=("analyze_dataset_structure", {"file_path": "climate.h5", "path": "/stations"}),
         wrong_answer="There are 0 findings."),
    dict(spec=H, file="climate.h5", request="How should I chunk /measurements/humidity in climate.h5 for row access?",
         steps=[("optimize_access_pattern", {"file_path": "climate.h5", "dataset_path": "/measurements/humidity",
                                             "access_pattern": "row"})],
         distractors=["identify_io_bottlenecks", "get_chunks"], wrong_tool="find_similar_datasets",
         wrong_arg=(0, "access_pattern", "random"), missing=(0, "access_pattern"),
         extra=("hdf5_parallel_scan", {"file_path": "climate.h5"}),
         wrong_answer="For row reads of /measurements/humidity use chunks of 720 x 1 and a 64 byte chunk cache."),
    dict(spec=H, file="climate.h5", request="What should I look at next from the /stations group of climate.h5?",
         steps=[("suggest_next_exploration", {"file_path": "climate.h5", "current_path": "/stations"})],
         distractors=["visit", "analyze_dataset_structure"], wrong_tool="analyze_dataset_structure",
         wrong_arg=(0, "current_path", "/metadata"), missing=(0, "file_path"),
         extra=("identify_io_bottlenecks", {"file_path": "climate.h5"}),
         wrong_answer="Look next at /archive and /backup."),
    dict(spec=H, file="climate.h5", request="List every dataset and group below the root of climate.h5.",
         steps=[("open_file", {"file_path": "climate.h5"}), ("visit", {"group": "$step1"})],
         distractors=["list_attributes", "get_filename"], wrong_tool="list_attributes",
         wrong_arg=(0, "file_path", "experiment.h5"), missing=(1, "group"), extra=("get_mode", {"file": "$step1"}),
         wrong_answer="/ contains 2 members, among them /a and /b."),
    dict(spec=H, file="experiment.h5", request="What units does the gain dataset under /calibration in experiment.h5 have?",
         steps=[("open_file", {"file_path": "experiment.h5"}),
                ("get_by_path", {"parent": "$step1", "path": "/calibration/gain"}),
                ("read_attribute", {"handle": "$step2", "name": "units"})],
         distractors=["get_dtype", "get_shape"], wrong_tool="get_dtype", wrong_arg=(1, "path", "/run_001/images"),
         missing=(1, "path"), extra=("get_shape", {"dataset": "$step2"}),
         wrong_answer="The units attribute of /calibration/gain is counts."),
    # -------------------------------------------------------------- OpenAI tools list (travel)
    dict(spec="openai", request="Find economy flights from JFK to LHR on 2025-03-14.",
         steps=[("search_flights", {"origin": "JFK", "destination": "LHR", "date": "2025-03-14", "cabin": "economy"})],
         distractors=["get_weather", "book_flight"], wrong_tool="get_weather",
         wrong_tool_args={"city": "LHR"}, wrong_arg=(0, "destination", "CDG"), missing=(0, "date"),
         extra=("get_weather", {"city": "London"}), wrong_answer="The cheapest flight is AF999 at 23:00 for 99 USD."),
    dict(spec="openai", request="What is the weather in Lisbon right now, in metric units?",
         steps=[("get_weather", {"city": "Lisbon", "units": "metric"})],
         distractors=["search_flights", "book_flight"], wrong_tool="search_flights",
         wrong_tool_args={"origin": "LIS", "destination": "LIS", "date": "2025-01-01"},
         wrong_arg=(0, "city", "Madrid"), missing=(0, "city"),
         extra=("search_flights", {"origin": "LIS", "destination": "JFK", "date": "2025-05-01"}),
         wrong_answer="It is 31 degrees with snow in Lisbon."),
    dict(spec="openai", request="Search flights from SFO to MUC on 2025-06-02 and book the first one for 2 passengers.",
         steps=[("search_flights", {"origin": "SFO", "destination": "MUC", "date": "2025-06-02"}),
                ("book_flight", {"flight_id": "$step1[0].flight_id", "passengers": 2})],
         distractors=["get_weather"], wrong_tool="get_weather", wrong_tool_args={"city": "Munich"},
         wrong_arg=(1, "passengers", 5), missing=(1, "passengers"), extra=("get_weather", {"city": "Paris"}),
         wrong_answer="Booking PNR000 is cancelled for 2 passengers."),
    dict(spec="openai", request="How warm is it in Oslo today?",
         steps=[("get_weather", {"city": "Oslo"})],
         distractors=["search_flights", "book_flight"], wrong_tool="book_flight",
         wrong_tool_args={"flight_id": "OSL1", "passengers": 1}, wrong_arg=(0, "city", "Bergen"), missing=(0, "city"),
         extra=("get_weather", {"city": "Rome"}), wrong_answer="It is 25 degrees with sunny in Oslo."),
    # -------------------------------------------------------------- MCP tool list (files)
    dict(spec="mcp", request="Show me the contents of notes/todo.md.",
         steps=[("read_file", {"path": "notes/todo.md"})],
         distractors=["list_directory", "search_files"], wrong_tool="list_directory",
         wrong_arg=(0, "path", "config/app.yaml"), missing=(0, "path"), extra=("list_directory", {"path": "src"}),
         wrong_answer="notes/todo.md says: call the bank."),
    dict(spec="mcp", request="What files are in the src directory?",
         steps=[("list_directory", {"path": "src"})],
         distractors=["read_file", "search_files"], wrong_tool="read_file",
         wrong_arg=(0, "path", "notes"), missing=(0, "path"), extra=("read_file", {"path": "README.txt"}),
         wrong_answer="src contains app.js and index.html."),
    dict(spec="mcp", request="Find all files matching *.py and show me what src/main.py contains.",
         steps=[("search_files", {"pattern": "*.py"}), ("read_file", {"path": "src/main.py"})],
         distractors=["list_directory"], wrong_tool="list_directory", wrong_tool_args={"path": "src/main.py"},
         wrong_arg=(0, "pattern", "*.md"), missing=(0, "pattern"), extra=("list_directory", {"path": "config"}),
         wrong_answer="The matching files are none."),
    dict(spec="mcp", request="Which port does config/app.yaml configure?",
         steps=[("read_file", {"path": "config/app.yaml"})],
         distractors=["search_files", "list_directory"], wrong_tool="search_files", wrong_tool_args={"pattern": "config/app.yaml"},
         wrong_arg=(0, "path", "README.txt"), missing=(0, "path"), extra=("list_directory", {"path": "notes"}),
         wrong_answer="config/app.yaml says: port: 3000."),
    # -------------------------------------------------------------- synthrun spec (user directory)
    dict(spec="synthrun", request="Log in as ada and look up the user id of grace@example.org.",
         steps=[("login", {"username": "ada"}), ("find_user", {"session": "$step1", "email": "grace@example.org"})],
         distractors=["get_user"], wrong_tool="get_user", wrong_tool_args={"session": "$step1", "user_id": 23},
         wrong_arg=(1, "email", "ada@example.org"), missing=(1, "email"), extra=("get_user", {"session": "$step1", "user_id": 17}),
         wrong_answer="The user id of grace@example.org is 5."),
    dict(spec="synthrun", request="As ada, get the profile of user 17.",
         steps=[("login", {"username": "ada"}), ("get_user", {"session": "$step1", "user_id": 17})],
         distractors=["find_user"], wrong_tool="find_user", wrong_tool_args={"session": "$step1", "email": "17"},
         wrong_arg=(1, "user_id", 23), missing=(1, "user_id"),
         extra=("find_user", {"session": "$step1", "email": "grace@example.org"}),
         wrong_answer="User 17 is Alan Turing (alan@example.org)."),
]


# ---------------------------------------------------------------- execution

class World:
    """Runs a path for one spec: h5py for the HDF5 tools, the hand-written worlds for the others."""

    def __init__(self, tmp: Path):
        from synthrun.tools.executors.base import ExecutionEngine
        from synthrun.tools.executors.hdf5 import HDF5Executor
        from synthrun.tools.loading import load_spec, read_spec_file

        self.engine = ExecutionEngine([HDF5Executor(tmp / "h5")])
        self.specs = {
            H: load_spec(ROOT / "recipes/data/hdf5_tools.json"),
            "openai": read_spec_file(ROOT / "tests/data/specs/openai_tools.json")["tools"],
            "mcp": read_spec_file(ROOT / "tests/data/specs/mcp_tools.json")["tools"],
            "synthrun": read_spec_file(ROOT / "tests/data/specs/mini_synthrun.json"),
        }

    def tools(self, case: dict, names: list[str], as_openai: bool) -> Any:
        """The offered tools in the row's format (project records, OpenAI list, MCP list or synthrun spec)."""
        from synthrun.tools.spec import safe_name

        spec = case["spec"]
        if spec == H:
            tools = [self.specs[H].get(n) for n in names]
            return [t.to_openai() for t in tools] if as_openai else [t.model_dump(mode="json") for t in tools]
        if spec == "openai":
            return [t for t in self.specs["openai"] if safe_name(t["function"]["name"]) in names]
        if spec == "mcp":
            return [t for t in self.specs["mcp"] if safe_name(t["name"]) in names]
        data = copy.deepcopy(self.specs["synthrun"])
        data["tools"] = [t for t in data["tools"] if safe_name(t["name"]) in names]
        return data

    def run(self, case: dict, steps: list[tuple[str, dict]]) -> list[dict]:
        out = []
        if case["spec"] == H:
            trace = self.engine.trace({"hdf5": {"file": case["file"]}}, self.specs[H].tools)
            try:
                for name, args in steps:
                    o = trace.run(name, args)
                    row = {"tool": name, "args": args}
                    row.update({"result": o.result} if o.ok else {"error": o.error})
                    out.append(row)
            finally:
                trace.close()
            return out
        from synthrun.tools.executors.base import parse_ref

        results: list[Any] = []
        for name, args in steps:
            resolved, failed = {}, None
            for k, v in args.items():
                ref = parse_ref(v)
                if ref is None:
                    resolved[k] = v
                    continue
                cur = results[ref[0] - 1] if ref[0] <= len(results) else None
                for acc in ref[1]:
                    cur = cur[acc] if cur is not None else None
                resolved[k] = cur
            required = _required(self, case, name)
            missing = [p for p in required if resolved.get(p) is None]
            if missing:
                failed = f"required argument {missing[0]!r} is missing"
            row = {"tool": name, "args": args, "simulated": True}
            if failed:
                row["error"] = failed
                results.append(None)
            else:
                res = SIM_RESULTS[name](resolved)
                row["result"] = res
                results.append(res)
            out.append(row)
        return out


def _required(world: World, case: dict, name: str) -> list[str]:
    from synthrun.tools.loading import parse_spec

    data = world.specs[case["spec"]]
    tool = next(t for t in parse_spec(data).tools if t.name == name)
    return tool.required


def _resolved(path: list[dict], i: int) -> dict:
    from synthrun.tools.executors.base import parse_ref

    args = {}
    for k, v in path[i]["args"].items():
        ref = parse_ref(v)
        if ref and ref[0] <= i:
            cur = path[ref[0] - 1].get("result")
            for acc in ref[1]:
                cur = cur[acc] if isinstance(cur, (dict, list)) else None
            v = cur.get("handle") if isinstance(cur, dict) and "handle" in cur else cur
        args[k] = v
    return args


def answer_for(path: list[dict]) -> str:
    """Render the answer from every result no later call consumes (handles and sessions aside)."""
    from synthrun.tools.executors.base import parse_ref

    used = {parse_ref(v)[0] for s in path for v in s["args"].values() if parse_ref(v)}
    parts = []
    for i, s in enumerate(path):
        r = s.get("result")
        if "result" not in s or i + 1 in used or (isinstance(r, dict) and "handle" in r):
            continue
        parts.append(render(s["tool"], _resolved(path, i), r))
    return " ".join(parts)


def build() -> list[dict]:
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="tool-dev-") as tmp:
        world = World(Path(tmp))
        for n, case in enumerate(CASES):
            base_steps = [(t, dict(a)) for t, a in case["steps"]]
            names = list(dict.fromkeys([t for t, _ in base_steps] + case["distractors"] + [case["wrong_tool"]]
                                       + [case["extra"][0]]))
            as_openai = case["spec"] == H and n % 3 == 0
            tools = world.tools(case, names, as_openai)
            cid = f"{case['spec']}-{n:02d}"

            def row(kind: str, label: int, steps, answer: str | None = None, request: str | None = None,
                    _case=case, _tools=tools, _cid=cid) -> dict:
                path = world.run(_case, steps)
                if answer is None:
                    answer = answer_for(path)
                return {"id": f"{_cid}-{kind}", "instruction": request or _case["request"], "tools": _tools,
                        "reasoning_path": path, "final_answer": answer, "label": label, "kind": kind,
                        "spec": _case["spec"]}

            good = row("correct", 1, base_steps)
            rows.append(good)
            last = len(base_steps) - 1
            # wrong tool: the answering call goes to another offered tool (same arguments where they fit)
            wt = case["wrong_tool"]
            wt_args = case.get("wrong_tool_args")
            if wt_args is None:
                keep = _param_names(world, case, wt)
                src = base_steps[last][1]
                wt_args = {k: v for k, v in src.items() if k in keep}
                handle_src = next((v for v in src.values() if isinstance(v, str) and v.startswith("$step")), None)
                for p in keep:
                    if p not in wt_args and handle_src and p in ("handle", "dataset", "group", "file"):
                        wt_args[p] = handle_src
                    if p not in wt_args and p in ("file_path",):
                        wt_args[p] = case["file"]
                    if p not in wt_args and p in ("dataset_path", "path") and "dataset_path" in src:
                        wt_args[p] = src["dataset_path"]
            steps = base_steps[:last] + [(wt, wt_args)]
            rows.append(row("wrong_tool", 0, steps))
            # wrong argument value
            i, arg, value = case["wrong_arg"]
            steps = copy.deepcopy(base_steps)
            steps[i][1][arg] = value
            rows.append(row("wrong_arg_value", 0, steps))
            # missing required argument: the call fails; the answer is the one the generator would have written
            i, arg = case["missing"]
            steps = copy.deepcopy(base_steps)
            del steps[i][1][arg]
            rows.append(row("missing_required", 0, steps, answer=good["final_answer"]))
            # extra unrelated call at the end (the answer still states the requested value)
            steps = base_steps + [case["extra"]]
            rows.append(row("extra_call", 0, steps, answer=good["final_answer"]))
            # answer that contradicts (even cases) or ignores (odd cases) the result
            bad = case["wrong_answer"] if n % 2 == 0 else IGNORING[n // 2 % len(IGNORING)]
            rows.append(row("answer_ignores_result", 0, base_steps, answer=bad))
            # vague request naming no task
            rows.append(row("vague_request", 0, base_steps, request=VAGUE[n % len(VAGUE)]))
    return rows


def _param_names(world: World, case: dict, name: str) -> list[str]:
    from synthrun.tools.loading import parse_spec

    data = world.specs[case["spec"]]
    tools = data.tools if hasattr(data, "tools") else parse_spec(data).tools
    return [p.name for p in next(t for t in tools if t.name == name).parameters if p.required]


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    out = Path(argv[0]) if argv else OUT
    rows = build()
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
    kinds: dict[str, int] = {}
    for r in rows:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    print(f"wrote {len(rows)} rows to {out}: {json.dumps(kinds)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
