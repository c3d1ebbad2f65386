"""Devices, hosts and the persistent compilation cache.

The sweep's member axis is sharded over every device of every process with `NamedSharding(mesh, P('sweep'))`.
Every process builds the same host arrays (configs are cheap), `put` hands each device its own rows, and `gather`
brings the full arrays back to every process, of which only process 0 writes.
"""

from __future__ import annotations

import hashlib
import os
import platform

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec as P

__all__ = ["initialize_distributed", "sweep_devices", "sharding", "put", "gather", "is_writer",
           "enable_compilation_cache", "default_cache_dir"]


def initialize_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> None:
    """`jax.distributed.initialize`, with arguments from flags or, when absent, from JAX_COORDINATOR_ADDRESS,
    JAX_NUM_PROCESSES and JAX_PROCESS_ID (cluster environments such as SLURM are detected by JAX itself).
    On CPU the cross-process collectives run over gloo."""
    env = os.environ
    coordinator_address = coordinator_address or env.get("JAX_COORDINATOR_ADDRESS")
    num_processes = num_processes if num_processes is not None else _int(env.get("JAX_NUM_PROCESSES"))
    process_id = process_id if process_id is not None else _int(env.get("JAX_PROCESS_ID"))
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                               process_id=process_id)


def _int(value):
    return None if value in (None, "") else int(value)


def sweep_devices() -> list:
    """Every device of every process, in a fixed order."""
    return list(jax.devices())


def sharding(devices) -> NamedSharding:
    """The member axis split over a one-axis `sweep` mesh of `devices`."""
    return NamedSharding(jax.sharding.Mesh(np.asarray(devices), ("sweep",)), P("sweep"))


def put(tree, devices):
    """Host arrays with a leading member axis -> global arrays sharded over `devices`, padded (by repeating the
    last member) to a multiple of the device count. Typed PRNG keys travel as their key data."""
    n = len(devices)
    target = sharding(devices)

    def one(x):
        is_key = jnp.issubdtype(x.dtype, jax.dtypes.prng_key)
        host = np.asarray(jax.random.key_data(x) if is_key else x)
        pad = (-host.shape[0]) % n
        if pad:
            host = np.concatenate([host, np.repeat(host[-1:], pad, axis=0)])
        arr = jax.make_array_from_callback(host.shape, target, lambda index: host[index])
        return jax.random.wrap_key_data(arr) if is_key else arr

    return jax.tree_util.tree_map(one, tree)


def gather(tree):
    """Global arrays -> full numpy arrays on every process (typed keys become their key data)."""
    def one(x):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        if jax.process_count() > 1 and not x.is_fully_addressable:
            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(jax.device_get(x))
    return jax.tree_util.tree_map(one, tree)


def is_writer() -> bool:
    """Only process 0 writes files."""
    return jax.process_index() == 0


def default_cache_dir() -> str:
    """A per-user cache, keyed by jax version and CPU features: XLA:CPU executables must not be loaded on a
    machine whose instruction set differs from the one that compiled them."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        pass
    machine = hashlib.sha256(f"{platform.machine()} {flags}".encode()).hexdigest()[:12]
    return os.path.join(base, "training-dynamics-sim", f"jax-{jax.__version__}-{machine}")


def enable_compilation_cache(path: str) -> None:
    """JAX's persistent compilation cache in `path`: a repeat run loads its executables instead of compiling."""
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
