"""``executor=ray``: the shards of per-record stages run as Ray tasks (one CPU each).

``executor.address``: ``null`` starts a private local Ray (``executor.num_cpus`` CPUs, default all),
``auto`` joins the cluster of this machine (``ray start --head``), ``ray://HOST:10001`` a remote one
through Ray Client, ``HOST:6379`` a cluster's GCS. An address that cannot be reached stops the run
with one line before any work.

Each task rebuilds the stage's context from the picklable :class:`~synthrun.shards.ShardJob` and
returns the shard's output lines and counters; only the driver writes shard files and markers, so a
killed worker or driver loses at most the shards in flight. The request cache holds across workers
because every worker opens the same SQLite cache file (``paths.cache_dir/llm.sqlite``, WAL mode,
one committed transaction per answer): an answer one worker stored is a cache hit for all. That
needs the run folder and cache on storage every node sees (one machine, or a shared disk that
supports SQLite locking; not NFS). Each worker keeps ``provider.concurrency`` requests in flight.

Budgets hold across workers through one Ray actor per sharded stage that owns the stage's meters (the
run's and the stage's, :class:`synthrun.budget.MeterSet`): a worker's client asks it before every
request it sends (:class:`RemoteGuard`, one round trip) and reports what the call used; the actor runs
one method at a time, so the caps are checked against every worker's calls in flight. When the stage's
shards are done the driver takes the actor's tally back (``budget.json``, the stop message).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from synthrun.budget import BudgetExhaustedSignal, MeterSet, Spend, actual_call, estimate_call
from synthrun.shards import ShardJob, ShardResult, run_shard
from synthrun.stage import StageError

if TYPE_CHECKING:
    from synthrun.context import StageContext

CONNECT_TIMEOUT_S = 5.0


def _remote_shard(job: ShardJob, index: int, lines: list[str]) -> ShardResult:
    return run_shard(job, index, lines)


def _check_reachable(address: str) -> None:
    """A host:port address (``ray://`` or GCS) must accept a TCP connection within a few seconds."""
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise StageError(f"executor.address={address!r}: expected auto, ray://HOST:PORT or HOST:PORT")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise StageError(f"executor.address={address!r}: no Ray cluster reachable there ({exc.strerror or exc}); "
                         f"start one (`ray start --head`) or drop executor.address to run a local Ray") from None


class RemoteGuard:
    """A worker's spending guard: every reserve and settle is one call to the stage's budget actor."""

    def __init__(self, keeper: Any):
        self.keeper = keeper

    def reserve(self, messages: list[dict[str, Any]], params: dict[str, Any], price_in: float = 0.0,
                price_out: float = 0.0) -> Spend:
        import ray

        estimate = estimate_call(messages, params, price_in, price_out)
        refused = ray.get(self.keeper.reserve.remote(estimate))
        if refused:
            raise BudgetExhaustedSignal(refused)
        return estimate

    def settle(self, ticket: Spend, prompt_tokens: int = 0, completion_tokens: int = 0,
               price_in: float = 0.0, price_out: float = 0.0) -> None:
        import ray

        ray.get(self.keeper.settle.remote(ticket, actual_call(prompt_tokens, completion_tokens, price_in, price_out)))


class RayExecutor:
    """Sends shards to Ray workers, at most ``max_in_flight`` at a time (results come back as they finish)."""

    in_process = False

    def __init__(self, address: str | None = None, num_cpus: int | None = None, max_in_flight: int | None = None):
        self.address = address
        self.num_cpus = num_cpus
        self.max_in_flight = max_in_flight
        self._started = False

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> RayExecutor:
        unknown = sorted(set(settings) - {"name", "address", "num_cpus", "max_in_flight"})
        if unknown:
            raise StageError(f"executor.{unknown[0]}: unknown setting of executor=ray "
                             f"(use address, num_cpus, max_in_flight)")
        num_cpus, in_flight = settings.get("num_cpus"), settings.get("max_in_flight")
        for key, value in (("num_cpus", num_cpus), ("max_in_flight", in_flight)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise StageError(f"executor.{key}={value!r}: must be a whole number >= 1")
        address = settings.get("address")
        return cls(None if address in (None, "", "local") else str(address), num_cpus, in_flight)

    def start(self) -> RayExecutor:
        """Connect to (or start) Ray now, so a bad address fails before any work."""
        if self.address and self.address != "auto":
            _check_reachable(self.address)
        import ray

        if ray.is_initialized():
            return self
        try:
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:  # local workers import synthrun (and recipe stages) from where this process does
                path = os.pathsep.join(p for p in sys.path if p)
                ray.init(num_cpus=self.num_cpus, include_dashboard=False, log_to_driver=False,
                         runtime_env={"env_vars": {"PYTHONPATH": path}})
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise StageError(f"executor.address={self.address!r}: cannot connect to Ray ({first})") from None
        self._started = True
        return self

    def close(self) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    def _window(self) -> int:
        if self.max_in_flight:
            return self.max_in_flight
        import ray

        cpus = ray.cluster_resources().get("CPU", 1)  # type: ignore[no-untyped-call]
        return max(2, 2 * int(cpus))

    def run_shards(self, job: ShardJob, shards: Iterator[tuple[int, list[str]]],
                   ctx: StageContext) -> Iterator[ShardResult]:
        import ray

        task = ray.remote(num_cpus=1, max_retries=0)(_remote_shard)
        guard = ctx.budget
        keeper = None
        if guard is not None:  # the stage's meters move into one actor that every worker asks
            keeper = ray.remote(num_cpus=0)(MeterSet).remote(guard.meters)
            job = dataclasses.replace(job, budget=RemoteGuard(keeper))
        job_ref = ray.put(job)
        window = self._window()
        pending: list[Any] = []
        try:
            for index, lines in shards:
                pending.append(task.remote(job_ref, index, lines))
                while len(pending) >= window:
                    yield self._next(pending)
            while pending:
                yield self._next(pending)
        finally:
            for ref in pending:  # an error or Ctrl-C: stop what is still queued
                ray.cancel(ref)
            if keeper is not None:  # the spend of every worker, back to the run's budget
                guard.adopt(ray.get(keeper.snapshot.remote()))
                ray.kill(keeper)

    @staticmethod
    def _next(pending: list[Any]) -> ShardResult:
        import ray

        (ready,), _ = ray.wait(pending, num_returns=1)
        pending.remove(ready)
        try:
            return ray.get(ready)  # type: ignore[no-any-return]
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else exc
            raise cause from None
