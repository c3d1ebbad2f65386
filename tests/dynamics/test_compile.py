"""The compile cache (dynamics/compile.py): one compilation per name and argument signature (shapes, dtypes,
shardings), new values reuse it, and the executable computes what the jitted function does."""

import jax
import jax.numpy as jnp
import numpy as np

from dynamics import compile as compile_lib


def _count(name, fn, *args):
    before = compile_lib.stats()["compiles"]
    out = compile_lib.compiled(name, fn, *args)(*args)
    return compile_lib.stats()["compiles"] - before, out


def test_new_values_reuse_and_new_shapes_or_dtypes_compile():
    fn = jax.jit(lambda x: jnp.cumsum(x) * 2)
    name = ("test_compile", object())  # a name no other test uses
    assert _count(name, fn, jnp.ones(4, jnp.float32))[0] == 1
    assert _count(name, fn, jnp.arange(4, dtype=jnp.float32))[0] == 0
    assert _count(name, fn, jnp.ones(5, jnp.float32))[0] == 1
    assert _count(name, fn, jnp.ones(5, jnp.int32))[0] == 1


def test_executable_computes_the_jitted_function():
    x = jnp.linspace(0.0, 1.0, 7)
    fn = jax.jit(lambda x: jnp.sin(x) @ x)
    _, out = _count(("test_compile_value", object()), fn, x)
    np.testing.assert_allclose(out, np.sin(np.asarray(x)) @ np.asarray(x), rtol=1e-12)
