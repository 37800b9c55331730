"""Keeping torch's OpenMP threads from slowing the embedded engine.

torch (Linux wheels) runs its multi-threaded ops on GNU OpenMP. libgomp keeps a team of worker threads
for *every* thread that ever ran such an op, and once the process holds more of those threads than
CPUs, every team waits at its barriers by sleeping instead of spinning. The engine's passes are
thousands of small ops, each ending at a barrier: measured on 2 cores (int8, 8 rows), a decode step
took 0.25 s instead of 0.09 s after the main thread had run one large matrix product, and 0.10 s again
once that thread's team was released.

So the engine runs all its torch work on its own worker thread, and the threads that hand it requests
release whatever team they started (embeddings, for instance) with :func:`release_thread_team`.
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _pause_all() -> Any:
    """libgomp's ``omp_pause_resource_all`` as loaded by torch, or None (other runtime).

    Only called once torch is imported (the answer is cached): see :func:`release_thread_team`.
    """
    torch = sys.modules["torch"]
    names = glob.glob(os.path.join(os.path.dirname(str(torch.__file__)), "lib", "libgomp*.so*"))
    for name in [*names, "libgomp.so.1"]:
        try:
            lib = ctypes.CDLL(name, mode=getattr(os, "RTLD_NOLOAD", 4))  # only a library already loaded
        except OSError:
            continue
        fn = getattr(lib, "omp_pause_resource_all", None)
        if fn is not None:
            fn.argtypes = [ctypes.c_int]
            fn.restype = ctypes.c_int
            return fn
    return None


def release_thread_team() -> bool:
    """Stops the OpenMP worker threads the calling thread started; True when there was a runtime to ask.

    The next multi-threaded op of this thread starts a new team (about a thread start), so this is
    cheap to call whenever a thread is about to wait on the engine.
    """
    if "torch" not in sys.modules:  # torch not imported: no team can exist
        return False
    fn = _pause_all()
    if fn is None:
        return False
    fn(1)  # omp_pause_soft: threads stop, the runtime stays usable
    return True
