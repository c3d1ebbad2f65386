"""Checkpoints of a sweep: finished batches (one static group's chunk of members) and the scan carry of the batch
in progress, each written atomically, so a killed run resumes without redoing anything finished.

Layout of a checkpoint directory:
    plan.json                 what the sweep is; a resume must ask for the same sweep
    batch-G-C.npz             outputs of finished batch C of static group G
    batch-G-C.carry.npz       carry and records of that batch after its last finished scan chunk
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from dynamics import files

__all__ = ["Checkpoints"]

_RECORD = "record::"
_LEAF = "leaf::"


class Checkpoints:
    """Reads and writes one sweep's checkpoints in `directory` (None: checkpointing off). Only the writer process
    writes; every process reads, so a multi-host resume needs `directory` on a shared file system."""

    def __init__(self, directory: str | None, writer: bool = True):
        self.directory, self.writer = directory, writer

    def _path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def check_plan(self, plan: dict[str, Any], resume: bool) -> None:
        """Records the sweep's plan; on resume, refuses a directory that holds a different sweep."""
        if self.directory is None:
            return
        path = self._path("plan.json")
        if resume and os.path.exists(path):
            with open(path) as f:
                saved = json.load(f)
            if saved != json.loads(json.dumps(plan, default=str)):
                from dynamics.config import ConfigError
                changed = sorted(k for k in plan if saved.get(k) != json.loads(json.dumps(plan[k], default=str)))
                raise ConfigError(f"--resume={os.path.dirname(self.directory)}: its checkpoints are of another sweep "
                                  f"(differs in {', '.join(changed)}); allowed: the same sim, config, grid, seeds "
                                  "and precision")
        elif self.writer:
            os.makedirs(self.directory, exist_ok=True)
            files.write_json(plan, path)

    def has_batch(self, group: int, chunk: int) -> bool:
        """Whether a finished batch is saved (without reading it)."""
        return self.directory is not None and os.path.exists(self._path(f"batch-{group}-{chunk}.npz"))

    def load_batch(self, group: int, chunk: int) -> tuple[dict, tuple] | None:
        """(outputs, record names) of a finished batch, or None."""
        if self.directory is None or not os.path.exists(self._path(f"batch-{group}-{chunk}.npz")):
            return None
        with np.load(self._path(f"batch-{group}-{chunk}.npz")) as f:
            outputs = {k.removeprefix(_RECORD): f[k] for k in f.files}
            return outputs, tuple(k.removeprefix(_RECORD) for k in f.files if k.startswith(_RECORD))

    def save_batch(self, group: int, chunk: int, outputs: dict, record_names: tuple) -> None:
        if self.directory is None or not self.writer:
            return
        _save(self._path(f"batch-{group}-{chunk}.npz"),
              {(_RECORD + k if k in record_names else k): v for k, v in outputs.items()})
        carry = self._path(f"batch-{group}-{chunk}.carry.npz")
        if os.path.exists(carry):
            os.remove(carry)

    def load_carry(self, group: int, chunk: int) -> tuple[list, dict, int] | None:
        """(carry leaves, records so far, records done) of the batch in progress, or None."""
        path = None if self.directory is None else self._path(f"batch-{group}-{chunk}.carry.npz")
        if path is None or not os.path.exists(path):
            return None
        with np.load(path) as f:
            leaves = [f[f"{_LEAF}{i}"] for i in range(int(f["leaves"]))]
            records = {k.removeprefix(_RECORD): f[k] for k in f.files if k.startswith(_RECORD)}
            return leaves, records, int(f["done"])

    def save_carry(self, group: int, chunk: int, leaves: list, records: dict, done: int) -> None:
        if self.directory is None or not self.writer:
            return
        arrays = {f"{_LEAF}{i}": x for i, x in enumerate(leaves)}
        arrays.update({_RECORD + k: v for k, v in records.items()})
        _save(self._path(f"batch-{group}-{chunk}.carry.npz"), {**arrays, "leaves": len(leaves), "done": done})


def _save(path: str, arrays: dict[str, Any]) -> None:
    with files.atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
