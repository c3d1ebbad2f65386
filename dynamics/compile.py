"""Ahead-of-time compilation with an explicit cache, so compile time is measured apart from run time and a test can
assert that a new traced value does not compile again."""

from __future__ import annotations

import time
from typing import Any, Callable

import jax

__all__ = ["compiled", "stats", "reset_stats"]

_CACHE: dict[Any, Any] = {}
_STATS = {"compiles": 0, "compile_seconds": 0.0}


def _signature(args) -> tuple:
    leaves, treedef = jax.tree_util.tree_flatten(args)
    return treedef, tuple((getattr(x, "shape", ()), str(getattr(x, "dtype", type(x))),
                           str(getattr(x, "sharding", ""))) for x in leaves)


def compiled(name: Any, fn: Callable, *args):
    """`fn` jitted and compiled for `args`' structure, shapes, dtypes and shardings; cached under `name`."""
    key = (name, _signature(args))
    if key not in _CACHE:
        t0 = time.perf_counter()
        _CACHE[key] = fn.lower(*args).compile()
        _STATS["compiles"] += 1
        _STATS["compile_seconds"] += time.perf_counter() - t0
    return _CACHE[key]


def stats() -> dict:
    """Compilations so far and their total seconds."""
    return dict(_STATS)


def reset_stats() -> None:
    _STATS.update(compiles=0, compile_seconds=0.0)
