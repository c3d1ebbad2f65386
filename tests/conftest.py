"""The suite runs in float64: the theory checks compare with closed forms at sampling-error precision, and x64 must
be switched on before any JAX computation. Float32 behaviour is covered through the CLI, which runs in a subprocess."""

from dynamics import xla_flags  # noqa: F401  (XLA_FLAGS before JAX's CPU backend exists)

import jax

jax.config.update("jax_enable_x64", True)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: longer than about 20 s on 2 cores; `pytest -m 'not slow'` skips it")
