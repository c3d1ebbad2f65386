"""Ahead-of-time compilation with an explicit cache, so compile time is measured apart from run time and a test can
assert that a new traced value does not compile again.

`prefetch` lowers a program now and compiles it on a background thread; `compiled` returns it when it is ready
(compiling it then if nobody prefetched it). XLA compiles outside Python's global interpreter lock, so a sweep
whose static shapes need several programs (a scaling ladder: four programs per shape) compiles them side by side
on the host's cores, and later shapes compile while the first one runs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

import jax

__all__ = ["compiled", "prefetch", "stats", "reset_stats"]

_CACHE: dict[Any, Any] = {}
# compiles: compilations; compile_seconds: seconds callers waited for lowering and compilation (the wall time a run
# loses to compiling; with nothing prefetched, the sum of all compile times); compile_work_seconds: the sum of the
# compilations' own durations, whichever thread ran them (more than compile_seconds when they overlapped).
_STATS = {"compiles": 0, "compile_seconds": 0.0, "compile_work_seconds": 0.0}
_LOCK = threading.Lock()
_POOL: ThreadPoolExecutor | None = None


def _signature(args) -> tuple:
    leaves, treedef = jax.tree_util.tree_flatten(args)
    return treedef, tuple((getattr(x, "shape", ()), str(getattr(x, "dtype", type(x))),
                           str(getattr(x, "sharding", ""))) for x in leaves)


def _libc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


_LIBC = _libc()


def _release_freed_memory() -> None:
    """Returns the heap pages that a compilation freed to the operating system (glibc's `malloc_trim`; nothing
    elsewhere). XLA's compiler allocates hundreds of MB of temporaries; freed on a worker thread, they stay in that
    thread's malloc arena and count as resident memory for the rest of the run: +0.23 GB at N = 250,000 and
    +0.3 GB at N = 10^6 with the scaling ladder prefetched (benchmarks/mfld.py part 5), none once trimmed."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _compile(lowered):
    t0 = time.perf_counter()
    out = lowered.compile()
    del lowered
    _release_freed_memory()
    with _LOCK:
        _STATS["compiles"] += 1
        _STATS["compile_work_seconds"] += time.perf_counter() - t0
    return out


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        _POOL = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="xla-compile")
    return _POOL


def prefetch(name: Any, fn: Callable, *args) -> None:
    """Starts compiling `fn` for `args` (arrays or `jax.ShapeDtypeStruct`s with their shardings) in the background,
    unless it is cached. Lowering (tracing) happens here, in the caller's thread."""
    key = (name, _signature(args))
    if key in _CACHE:
        return
    t0 = time.perf_counter()
    lowered = fn.lower(*args)
    _STATS["compile_seconds"] += time.perf_counter() - t0
    _CACHE[key] = _pool().submit(_compile, lowered)


def compiled(name: Any, fn: Callable, *args):
    """`fn` jitted and compiled for `args`' structure, shapes, dtypes and shardings; cached under `name`."""
    key = (name, _signature(args))
    t0 = time.perf_counter()
    if key not in _CACHE:
        _CACHE[key] = _compile(fn.lower(*args))
    elif isinstance(_CACHE[key], Future):
        _CACHE[key] = _CACHE[key].result()
    else:
        return _CACHE[key]
    _STATS["compile_seconds"] += time.perf_counter() - t0
    return _CACHE[key]


def stats() -> dict:
    """Compilations so far, the seconds callers waited for them, and their own total seconds."""
    return dict(_STATS)


def reset_stats() -> None:
    _STATS.update(compiles=0, compile_seconds=0.0, compile_work_seconds=0.0)
