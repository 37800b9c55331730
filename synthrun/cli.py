"""The ``synthrun`` command.

``synthrun +recipe=NAME [key=value ...]`` composes ``conf/`` with a recipe and runs it
(Hydra; ``-m`` sweeps). A few sub-commands help around it: ``ls``, ``validate``,
``providers``, ``summarize`` and ``tools``. Start-up imports stay light: no litellm,
torch or transformers until a stage needs them.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from synthrun.run_names import register_resolvers
from synthrun.run_names import run_name as _run_name

__all__ = ["main", "register_resolvers", "run_hydra", "_run_name"]

HELP = """\
usage: synthrun +recipe=NAME [key=value ...]        run a recipe (resumes if run before)
       synthrun -m +recipe=NAME key=a,b ...         sweep: one run per combination + a summary table
       synthrun ls                                  list recipes
       synthrun validate NAME [key=value ...]       compose a recipe and build every stage, no LLM call
       synthrun plan +recipe=NAME [key=value ...]   expected calls, tokens and cost per stage [--json]
       synthrun providers                           list providers and how to set them up
       synthrun summarize SWEEP_DIR                 (re)write a sweep's summary table
       synthrun report RUN_DIR|SWEEP_DIR [--open]   (re)write report.html (charts, samples) [and open it]
       synthrun tools parse|graph SPEC ...          inspect a tool spec and its dependency graph

Common overrides:
  provider=NAME (`synthrun providers` lists them)    provider.model=...  provider.api_base=...
  STAGE.PARAM=value (e.g. curate.threshold=8)          STAGE.enabled=false
  +STAGE.llm.model=...  (per-stage model, e.g. a stronger judge; + adds a key)
  run_name=NAME  (run folder name)   paths.output_root=DIR   progress=false

Keys come from the environment only (e.g. export OPENAI_API_KEY=...); overrides that carry a
key are refused. Hydra's own options: synthrun --hydra-help
"""


def _err(msg: str, code: int = 2) -> int:
    print(f"synthrun: error: {msg}", file=sys.stderr)
    return code


def _has_recipe(args: list[str]) -> bool:
    return any(re.match(r"^\+{0,2}recipe=", a) for a in args)


def _task(cfg) -> None:  # called by Hydra inside the run folder context
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from synthrun.errors import USER_ERRORS
    from synthrun.runner import run
    from synthrun.secrets import protect_run_folder

    hc = HydraConfig.get()
    sweep_dir = Path(hc.sweep.dir) if hc.mode == RunMode.MULTIRUN else None
    protect_run_folder(Path(hc.runtime.output_dir), hc.output_subdir, sweep_dir)
    try:
        metrics = run(cfg, Path(hc.runtime.output_dir), overrides=list(hc.overrides.task))
    except USER_ERRORS as exc:
        raise SystemExit(_err(str(exc), getattr(exc, "exit_code", 1))) from None
    _LAST_RUN["dir"] = Path(hc.runtime.output_dir)
    _LAST_RUN["metrics"] = metrics


_LAST_RUN: dict = {}


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C (the run stops, metrics say ``interrupted``), exit 143."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


def _on_sigint(signum, frame) -> None:
    # Not signal.default_int_handler: with that one installed, asyncio.run() swaps in a handler that
    # only cancels its task on the first Ctrl-C, and a cancelled LLM batch could let the run go on.
    raise KeyboardInterrupt()


def _os_error_line(exc: OSError) -> str:
    import errno

    code = errno.errorcode.get(exc.errno or 0, "")
    where = exc.filename or "?"
    return f"cannot write {where}: {exc.strerror or exc}" + (f" ({code})" if code else "")


def run_hydra(args: list[str]) -> int:
    """Run a recipe through Hydra with ``args`` as the command line."""
    import hydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from synthrun.errors import compose_error_message
    from synthrun.paths import conf_dir

    register_resolvers()
    main = hydra.main(config_path=str(conf_dir()), config_name="config", version_base="1.3")(_task)
    saved = sys.argv, os.environ.get("HYDRA_FULL_ERROR")
    user_wants_traceback = saved[1] == "1"
    sys.argv = ["synthrun", *args]
    # Hydra re-raises instead of printing its multi-line report, so a bad recipe name or override
    # becomes one line here (HYDRA_FULL_ERROR=1 from the user still shows the full trace).
    os.environ["HYDRA_FULL_ERROR"] = "1"
    import logging
    import signal

    logging.raiseExceptions = False  # a full or read-only disk under run.log: no traceback per log line
    import threading

    old_term = old_int = None
    if threading.current_thread() is threading.main_thread():
        old_term = signal.signal(signal.SIGTERM, _on_sigterm)
        old_int = signal.signal(signal.SIGINT, _on_sigint)
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    except KeyboardInterrupt as exc:
        return _err("interrupted; give the same command again to resume (finished stages and answered "
                    "LLM calls are kept)", 143 if isinstance(exc, Terminated) else 130)
    except (HydraException, OmegaConfBaseException) as exc:
        if user_wants_traceback:
            raise
        return _err(compose_error_message(exc), 1)
    except OSError as exc:  # e.g. Hydra cannot create the run folder or its log (read-only, full)
        if user_wants_traceback or exc.errno is None:
            raise
        return _err(_os_error_line(exc), 1)
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
        if old_int is not None:
            signal.signal(signal.SIGINT, old_int)
        sys.argv = saved[0]
        if saved[1] is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved[1]
    return 0


def cmd_ls(args: list[str]) -> int:
    from synthrun.recipes import list_recipes

    recipes = list_recipes()
    for info in recipes:
        print(f"{info.name:<16} {info.summary}")
        print(f"{'':<16} $ {info.command}")
    folders = list(dict.fromkeys(str(info.path.parent) for info in recipes))
    print(f"\nrecipe files: {', '.join(folders)} (copy one to a folder in SYNTHRUN_RECIPE_PATH to make your own)")
    return 0


def cmd_validate(args: list[str]) -> int:
    if not args or args[0].startswith("-"):
        return _err("usage: synthrun validate NAME [key=value ...]")
    from synthrun.errors import USER_ERRORS
    from synthrun.recipes import compose
    from synthrun.runner import build_stages

    name, overrides = args[0].removeprefix("+recipe="), args[1:]
    try:
        from synthrun.allowlist import check_override_targets
        from synthrun.secrets import check_overrides

        check_overrides(overrides)
        check_override_targets(overrides)
        cfg = compose(name, overrides)
        stages = build_stages(cfg)
    except USER_ERRORS as exc:
        return _err(str(exc), 1)
    chain = " -> ".join(f"{n}({type(s).__name__}{'' if s.enabled else ', off'})" for n, s in stages)
    print(f"ok: {name}: {len(stages)} stages: {chain}")
    return 0


def cmd_plan(args: list[str]) -> int:
    as_json = "--json" in args
    args = [a for a in args if a != "--json"]
    names = [a for a in args if re.match(r"^\+{0,2}recipe=", a)]
    if not names and args and "=" not in args[0]:
        names, args = [args[0]], args[1:]
    if len(names) != 1:
        return _err("usage: synthrun plan +recipe=NAME [key=value ...] [--json]")
    import json as _json

    from synthrun.errors import USER_ERRORS
    from synthrun.plan import make_plan, render_plan
    from synthrun.recipes import compose

    name = names[0].split("=", 1)[-1]
    overrides = [a for a in args if a != names[0]]
    try:
        from synthrun.allowlist import check_override_targets
        from synthrun.secrets import check_overrides

        check_overrides(overrides)
        check_override_targets(overrides)
        plan = make_plan(compose(name, overrides))
    except USER_ERRORS as exc:
        return _err(str(exc), 1)
    print(_json.dumps(plan.to_json(), indent=2) if as_json else render_plan(plan))
    return 0


def cmd_providers(args: list[str]) -> int:
    from synthrun.llm.providers import provider_table

    for row in provider_table():
        print(f"{row['name']:<10} {row.get('model', ''):<36} via {row.get('route', '?'):<8} {row.get('setup', '')}")
    print("\nUse: synthrun +recipe=NAME provider=NAME [provider.model=...] [provider.api_base=...]")
    return 0


def cmd_summarize(args: list[str]) -> int:
    if not args:
        return _err("usage: synthrun summarize SWEEP_DIR")
    from synthrun.sweep import summarize_sweep

    rows = summarize_sweep(args[0])
    if not rows:
        return _err(f"no */metrics.json under {args[0]}", 1)
    print(Path(args[0]) / "sweep_summary.md")
    return 0


def cmd_report(args: list[str]) -> int:
    from synthrun.report.cli import main as report_main

    return report_main(args)


def cmd_tools(args: list[str]) -> int:
    from synthrun.tools.cli import main as tools_main

    return tools_main(args)


COMMANDS = {
    "ls": cmd_ls, "list": cmd_ls, "validate": cmd_validate, "providers": cmd_providers, "plan": cmd_plan,
    "summarize": cmd_summarize, "tools": cmd_tools, "report": cmd_report,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``synthrun`` console script."""
    args = sys.argv[1:] if argv is None else list(argv)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args and args[0] in COMMANDS:
        return COMMANDS[args[0]](args[1:])
    if not args or args[0] in ("-h", "--help", "help"):
        print(HELP)
        return 0
    if args[0] == "--hydra-help":
        return run_hydra(["--hydra-help"])
    from synthrun.allowlist import TargetError, check_override_targets
    from synthrun.secrets import SecretOverrideError, check_overrides

    try:
        check_overrides(args)  # before Hydra parses, composes or echoes anything
        check_override_targets(args)
    except (SecretOverrideError, TargetError) as exc:
        return _err(str(exc))
    passthrough = any(a in ("--cfg", "-c", "--info", "-i", "--resolve") or a.startswith("--cfg") for a in args)
    if not _has_recipe(args) and not passthrough:
        return _err("no recipe chosen: run `synthrun +recipe=NAME` (see `synthrun ls`)")
    return run_hydra(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
