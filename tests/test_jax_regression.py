"""A bad jax must fail the suite instead of corrupting sweeps.

jax 0.10.2 silently miscompiles a vmapped mat-vec followed by a reduction on CPU (jax-ml/jax#39103): over 32,769 rows
the last row's sum of squares came out 1065369600 instead of 1073741824. That is the pattern of every vmapped sweep.
"""

import jax
import jax.numpy as jnp
import numpy as np


def test_vmapped_matvec_reduction_matches_numpy_on_every_row():
    rows = np.zeros((32769, 3), np.float32)
    rows[:, 0] = np.arange(32769, dtype=np.float32)
    got = jax.jit(jax.vmap(lambda r: jnp.sum((jnp.eye(3, dtype=jnp.float32) @ r) ** 2)))(jnp.asarray(rows))
    want = np.sum(rows.astype(np.float64) ** 2, axis=1)
    # One float32 rounding of i^2 (< 2^30) is a relative error below 2^-24 = 6e-8; the miscompile is 8e-3.
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=2e-7)
    assert float(got[-1]) == 1073741824.0
