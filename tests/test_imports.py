"""Every module of the project imports on its own, first, in a fresh interpreter: no import cycle survives only
through import order (the cycle checkpoint -> export -> sweep -> checkpoint did). Each import runs in a child forked
from a zygote that holds the third-party libraries only (tests/zygote.py): none of the project's modules is
imported before the one under test."""

import os
import pkgutil

import pytest

from tests.zygote import Zygote

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Third-party only: a project module here would be inherited by every child, hiding its own import order.
THIRD_PARTY = ["jax", "jax.numpy", "numpy", "scipy.stats", "scipy.optimize", "xarray", "optax", "flax.linen", "chex",
               "absl.app", "absl.flags", "matplotlib.pyplot", "cvxpy", "h5netcdf"]


@pytest.fixture(scope="module")
def zygote():
    z = Zygote(THIRD_PARTY, REPO, forbid=["sims", "dynamics", "configs", "run", "gallery", "benchmarks"])
    yield z
    z.close()


def _modules():
    names = ["run", "gallery"]
    for package in ("dynamics", "sims", "configs"):
        names.append(package)
        for info in pkgutil.walk_packages([os.path.join(REPO, package)], prefix=f"{package}."):
            names.append(info.name)
    return names


@pytest.mark.parametrize("module", _modules())
def test_module_imports_alone_in_a_fresh_interpreter(zygote, module):
    proc = zygote.import_module(module)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize("script", sorted(f for f in os.listdir(os.path.join(REPO, "benchmarks")) if f.endswith(".py")))
def test_benchmark_help_exits_0(zygote, script):
    proc = zygote.run([os.path.join("benchmarks", script), "--help"])
    assert proc.returncode == 0, proc.stderr[-2000:]
