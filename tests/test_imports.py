"""Every module of the project imports on its own, first, in a fresh interpreter: no import cycle survives only
through import order (the cycle checkpoint -> export -> sweep -> checkpoint did)."""

import os
import pkgutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _modules():
    names = ["run", "gallery"]
    for package in ("dynamics", "sims", "configs"):
        names.append(package)
        for info in pkgutil.walk_packages([os.path.join(REPO, package)], prefix=f"{package}."):
            names.append(info.name)
    return names


@pytest.mark.parametrize("module", _modules())
def test_module_imports_alone_in_a_fresh_interpreter(module):
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize("script", sorted(f for f in os.listdir(os.path.join(REPO, "benchmarks")) if f.endswith(".py")))
def test_benchmark_help_exits_0(script):
    proc = subprocess.run([sys.executable, os.path.join("benchmarks", script), "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
