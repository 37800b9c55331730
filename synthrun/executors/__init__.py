"""Where the shards of per-record stages run: ``executor=local`` (this process) or ``executor=ray``.

Executors are apart from stages (as in datatrove): a stage only sees ``run(records, ctx)`` on one
shard; the executor decides where that call happens. ``create(cfg)`` checks the ``executor`` block
without importing anything heavy; :meth:`start` connects (Ray) before any work is done.
"""

from __future__ import annotations

from typing import Any

from synthrun.executors.local import LocalExecutor
from synthrun.stage import StageError

EXECUTORS = ("local", "ray")


def _settings(cfg: Any) -> dict[str, Any]:
    from omegaconf import DictConfig, OmegaConf

    node = cfg.get("executor") if cfg is not None else None
    if node is None:
        return {"name": "local"}
    if isinstance(node, str):
        return {"name": node}
    if isinstance(node, DictConfig):
        return dict(OmegaConf.to_container(node, resolve=True))  # type: ignore[arg-type]
    raise StageError(f"executor={node!r}: expected one of {', '.join(EXECUTORS)}")


def create(cfg: Any) -> Any:
    """The executor the run config asks for (not started yet)."""
    settings = _settings(cfg)
    name = str(settings.get("name") or "local")
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        from synthrun.executors.ray import RayExecutor

        return RayExecutor.from_settings(settings)
    raise StageError(f"executor={name!r}: unknown executor; use one of {', '.join(EXECUTORS)} "
                     f"(e.g. executor=ray executor.address=auto)")


__all__ = ["EXECUTORS", "LocalExecutor", "create"]
