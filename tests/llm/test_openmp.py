"""OpenMP teams: a thread that ran a multi-threaded torch op can give its worker threads back."""

from __future__ import annotations

import os
import threading
import time

import pytest

from synthrun.llm.openmp import release_thread_team


def _os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _os_threads_settled(below: int, timeout: float = 5.0) -> int:
    """The OS thread count once it is below ``below`` (released workers exit on their own schedule)."""
    deadline = time.monotonic() + timeout
    count = _os_threads()
    while count >= below and time.monotonic() < deadline:
        time.sleep(0.01)
        count = _os_threads()
    return count


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
def test_a_thread_team_is_released_and_comes_back_on_the_next_op():
    torch = pytest.importorskip("torch")
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one CPU: torch starts no team")
    out: dict[str, int] = {}
    threads = torch.get_num_threads()  # set_num_threads below is also process-wide: restored after

    def work() -> None:  # a fresh thread: its team is its own
        torch.set_num_threads(2)
        a = torch.randn(1024, 1024)
        out["before"] = _os_threads()
        (a @ a).sum()
        out["with_team"] = _os_threads()
        out["released"] = int(release_thread_team())
        out["after"] = _os_threads_settled(below=out["with_team"])
        (a @ a).sum()
        out["again"] = _os_threads()
        release_thread_team()

    t = threading.Thread(target=work)
    t.start()
    t.join()
    torch.set_num_threads(threads)
    assert out["released"] == 1
    assert out["with_team"] > out["before"]  # the op started OpenMP worker threads
    assert out["after"] < out["with_team"]  # ... which are gone after the release
    assert out["again"] > out["after"]  # and the next op starts them again
