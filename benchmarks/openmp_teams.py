"""What an idle OpenMP team in another thread costs the embedded engine (see synthrun/llm/openmp.py).

Runs 8 requests (a ~330-token prompt each, 24 free-text tokens) through one engine three times:
with no other thread holding an OpenMP team, while another thread that ran one large matrix
product is alive (its team stays behind), and after that thread released its team. Prints prefill tokens/s and
decode seconds per step of each, the ratios to the first, and the machine load.

    python benchmarks/openmp_teams.py [--quantize int8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class TeamHolder:
    """A thread that runs one multi-threaded op (its OpenMP team stays behind), then waits."""

    def __init__(self, torch):
        from synthrun.llm.openmp import release_thread_team

        self._release = release_thread_team
        self._todo: queue.Queue[str] = queue.Queue()
        self._done: queue.Queue[bool] = queue.Queue()
        self._thread = threading.Thread(target=self._run, args=(torch,), daemon=True)
        self._thread.start()
        self._done.get()

    def _run(self, torch) -> None:
        a = torch.randn(2048, 2048)
        (a @ a).sum()
        self._done.put(True)
        while self._todo.get() != "stop":
            self._done.put(self._release())

    def release(self) -> None:
        self._todo.put("release")
        self._done.get()

    def stop(self) -> None:
        self._todo.put("stop")
        self._thread.join()


def measure(engine, tag: str, rounds: int) -> tuple[float, float]:
    prefill = decode = 0.0
    tokens = steps = 0
    for r in range(rounds):
        before = dict(engine.stats)
        system = {"role": "system", "content": "You are a careful reviewer of technical answers. " * 12}
        engine.generate_many([
            dict(messages=[system, {"role": "user", "content": f"{tag} {r} {j} " + "chunked storage " * 150}],
                 max_tokens=24, temperature=0.7, seed=j)
            for j in range(8)
        ])
        prefill += engine.stats["prefill_seconds"] - before["prefill_seconds"]
        tokens += engine.stats["prefill_tokens"] - before["prefill_tokens"]
        decode += engine.stats["decode_seconds"] - before["decode_seconds"]
        steps += engine.stats["decode_steps"] - before["decode_steps"]
    return tokens / prefill, decode / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quantize", default=None, help="none (default) or int8")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    import torch

    from synthrun.llm.local_engine import LocalEngine

    print(f"load before: {os.getloadavg()} on {os.cpu_count()} cores; torch threads {torch.get_num_threads()}; "
          f"quantize {args.quantize or 'none'}")
    engine = LocalEngine.get(quantize=args.quantize)
    engine.generate_many([dict(messages=[{"role": "user", "content": "warm up"}], max_tokens=4, seed=0)])
    rows = [("no other team", measure(engine, "clean", args.rounds))]
    other = TeamHolder(torch)  # a thread that ran one large matrix product and stays alive
    rows.append(("another thread holds one", measure(engine, "team", args.rounds)))
    other.release()
    rows.append(("that team released", measure(engine, "released", args.rounds)))
    other.stop()
    base_prefill, base_decode = rows[0][1]
    for name, (prefill, decode) in rows:
        print(f"  {name:<26} prefill {prefill:6.0f} tok/s ({prefill / base_prefill:.2f}x)   "
              f"decode {decode:.3f} s/step ({decode / base_decode:.2f}x)")
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
