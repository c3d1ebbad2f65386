"""The suite runs in float64: the theory checks compare with closed forms at sampling-error precision, and x64 must
be switched on before any JAX computation. Float32 behaviour is covered through the CLI, which runs in a subprocess."""

from dynamics import xla_flags  # noqa: F401  (XLA_FLAGS before JAX's CPU backend exists)

import os
import tempfile

import jax
import pytest

from dynamics import devices, runner

jax.config.update("jax_enable_x64", True)
# One persistent compilation cache for the whole session, shared by the xdist workers (they inherit the variable set
# here by the controller): a program that several test files compile, or that a test recompiles after a mutation
# test cleared the in-memory caches, is loaded instead. A mutant is another program (its own cache key).
devices.enable_compilation_cache(os.environ.setdefault("TDS_TEST_COMPILATION_CACHE",
                                                       tempfile.mkdtemp(prefix="tds-test-xla-cache-")))


@pytest.fixture
def fresh_programs():
    """For a test that patches a function a sim calls while it is traced (a mutation test): the compiled programs,
    cached by the sim's functions and shapes, are forgotten before the test (else the unmutated program would run)
    and after it (else a later test would run the mutant)."""
    runner.clear_caches()
    yield
    runner.clear_caches()


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: longer than about 20 s on 2 cores; `pytest -m 'not slow'` skips it")
