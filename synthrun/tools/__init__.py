"""Tool-use data: API specs, the tool dependency graph, call checking and execution.

Modules (import them directly; nothing heavy is imported here):

* :mod:`synthrun.tools.spec` — the normalised tool model and :func:`~synthrun.tools.spec.load_spec`.
* :mod:`synthrun.tools.parsers` — readers for the project JSON, OpenAI, MCP and OpenAPI 3 formats.
* :mod:`synthrun.tools.graph` — the In-N-Out dependency graph (networkx) and chain planning.
* :mod:`synthrun.tools.checker` — the format/AST check of one call or a whole reasoning path.
* :mod:`synthrun.tools.executors` — real (h5py) and simulated executors, ``$stepN`` references.
* :mod:`synthrun.tools.hdf5_fixtures` — the sample HDF5 files the HDF5 tools run on.
* :mod:`synthrun.tools.generation` — query-first / chain-first example writing with the LLM.
* :mod:`synthrun.tools.export_formats` — TRL, OpenAI, ShareGPT and reasoning-path rows.
* :mod:`synthrun.tools.replay`, :mod:`synthrun.tools.genstage` — shared parts of the ``tool_*`` stages.
* :mod:`synthrun.tools.cli` — ``synthrun tools parse|graph``.
"""
