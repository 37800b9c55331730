"""Tool-use data: API specs, the tool dependency graph, call checking and execution.

A pure library: nothing here imports the stage contract or a stage (errors come from
:mod:`synthrun.errors`); the ``tool_*`` stages in :mod:`synthrun.stages` use it.

Modules (import them directly; nothing heavy is imported here):

* :mod:`synthrun.tools.spec` — the normalised tool model (ToolSpec, ToolSet, TypeSystem).
* :mod:`synthrun.tools.parsers`, :mod:`synthrun.tools.bfcl` — readers for the project JSON, OpenAI, MCP,
  OpenAPI 3 and BFCL formats.
* :mod:`synthrun.tools.loading` — find, read, detect and parse a spec (``load_spec``, ``tools_from_dicts``).
* :mod:`synthrun.tools.graph` — the In-N-Out dependency graph (networkx) and chain planning.
* :mod:`synthrun.tools.checker` — the format/AST check of one call or a whole reasoning path.
* :mod:`synthrun.tools.executors` — real (h5py) and simulated executors, ``$stepN`` references.
* :mod:`synthrun.tools.hdf5_fixtures` — the sample HDF5 files the HDF5 tools run on.
* :mod:`synthrun.tools.generation` — plans, per-call answer schemas and text checks for example writing.
* :mod:`synthrun.tools.replay` — check and re-run the calls of a recorded example.
* :mod:`synthrun.tools.labelled` — labelled tool rows for judge evaluation.
* :mod:`synthrun.tools.cli` — ``synthrun tools parse|graph``.
"""
