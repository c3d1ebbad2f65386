"""Data of `ntk_stability`, drawn inside the run from `data_seed` (so a sweep over data draws is one program).

The deep-net tasks put every input on the unit sphere, so ||x|| <= 1 as the theory needs (§2 of the paper: the
smoothness and Lipschitz constants of Phi in w are stated for ||x|| <= 1):
- mixture: y = +-1 equiprobable, x = v / ||v|| with v = y mu + z, z ~ N(0, I_d), mu = separation e_1;
- teacher: x = z / ||z||, y = sign(Phi(w_teacher; x)) for a random net in the same parameterization with the run's
  activation and a fixed architecture (TEACHER_WIDTH, TEACHER_DEPTH), so that sweeps over m and L keep the task;
- xor: x uniform on the hypercube {-1, +1}^d, y = x_1 x_2 (the 2-sparse parity). Not normalized: the theory note's
  mechanism (E[y x x^T] = e_1 e_2^T + e_2 e_1^T, a constant growth factor per step at eta = m) needs coordinates of
  size one. The first layer's init is `xor_init` (sim.init): fan_in, w_j ~ N(0, I_d / d), or unit, w_j ~ N(0, I_d).

Which XOR statement is implemented (the paper's text was not reachable; its abstract: "a one-hidden-layer neural
network of constant width m with quadratic activation and standard Gaussian initialization ... mini-batch SGD with
linear sample complexity and with a large step-size eta = m reaches the perfect test accuracy after only ceil(log(d))
iterations"). Three readings of "standard Gaussian initialization" with f = (1/m) sum_j a_j (w_j . x)^2:
- w_j ~ N(0, I_d) on the hypercube (`xor_init=unit`): w_j . x ~ N(0, d), outputs O(d / sqrt(m)) at init, so
  |l'| saturates (0 on the points already right, 1 on the others) and the run is a perceptron-like correction of a
  large random quadratic form: 100% on 10^4 fresh points on 1-3 of 8 seeds at d >= 32 (README);
- w_j ~ N(0, I_d) on x / sqrt(d) (unit-norm inputs, the paper's |x| <= 1 of §2): outputs O(1/sqrt(m)), but a step
  moves w_j by (eta / m) 2 a_j C_hat w_j with C_hat = E|l'| y x x^T / d, a growth factor 1 + O(1/d) per step: no
  learning within 40 steps at d >= 64 at eta = m (measured). The net is 2-homogeneous in w and in x, so this is
  the function of the reading below, but not its run: w' = w / sqrt(d) maps GD in w at step eta to GD in w' at
  step eta / d. Inputs x s with weights / s give the same run only with eta / s^2 (eta d for x / sqrt(d));
- w_j ~ N(0, I_d / d) on the hypercube (`xor_init=fan_in`, the default): w_j . x ~ N(0, 1), the standard (fan-in)
  Gaussian init of a layer, outputs O(1/sqrt(m)) and |l'| ~ 1/2, so one step multiplies each neuron's right signal
  direction by 1 + 2 |a_j| |l'| ~ 2 and leaves the noise directions at 1 + O(sqrt(d / b)): the signal overtakes
  noise of relative size sqrt(d) in about log_2 sqrt(d) + O(1) steps. This reading reproduces the claim: 100% on
  every seed within ceil(log d) steps or one more (README).
The theorem's constants in n = c d, b = c' d are not known here; the preset takes c = 128, c' = 64 (at c = 64,
c' = 16 the batches' noise sqrt(d / b) delays 100% by about one step).
Labels of mixture and teacher are flipped with probability `label_noise`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from sims.ntk_stability import model

__all__ = ["Data", "draw", "make_data", "TEACHER_WIDTH", "TEACHER_DEPTH"]

TEACHER_WIDTH, TEACHER_DEPTH = 64, 2


class Data(NamedTuple):
    """X (n, d), y (n,) the training set S; X_fresh (R, d), y_fresh (R,) the fresh samples z'_i that replace z_i
    (i < R) in the stability replicas; X_test (n_test, d), y_test (n_test,) the test set."""
    X: jax.Array
    y: jax.Array
    X_fresh: jax.Array
    y_fresh: jax.Array
    X_test: jax.Array
    y_test: jax.Array


def draw(config, task_key, key, n: int, dtype):
    """n samples (X (n, d), y (n,)); `task_key` fixes the task (the teacher net) across draws."""
    return _draw(config, _teacher(config, task_key, dtype), jax.random.split(key, 3), n, dtype)


def _teacher(config, task_key, dtype):
    if config.task != "teacher":
        return None
    return model.init_params(task_key, config.dim, TEACHER_WIDTH, TEACHER_DEPTH, dtype)


def _draw(config, teacher, keys, n: int, dtype):
    """`draw` from the keys (k_x, k_y, k_flip) = split(key, 3) and the teacher net (None but for task teacher)."""
    d = config.dim
    k_x, k_y, k_flip = keys
    if config.task == "xor":
        X = jnp.where(model.bernoulli(k_x, 0.5, (n, d)), 1.0, -1.0).astype(dtype)
        return X, X[:, 0] * X[:, 1]
    if config.task == "teacher":
        # The flat draw gives the same z, but XLA then fuses it into the normalization below and rounds the norm
        # differently (by an ulp): the teacher keeps the 2-D draw, so that its results stay bit for bit.
        z = jax.random.normal(k_x, (n, d), dtype)
    else:
        z = model.normal(k_x, (n, d), dtype)
    if config.task == "mixture":
        # Both coin flips in one vmapped draw (one hash in the program, not two): the same numbers.
        p = jnp.stack([jnp.asarray(0.5, dtype), jnp.asarray(config.label_noise, dtype)])
        sign, flip = jax.vmap(lambda k, p: jax.random.bernoulli(k, p, (n,)))(jnp.stack([k_y, k_flip]), p)
        y = jnp.where(sign, 1.0, -1.0).astype(dtype)
        v = z.at[:, 0].add(config.separation * y)
        X = v / jnp.linalg.norm(v, axis=1, keepdims=True)
        return X, jnp.where(flip, -y, y)
    X = z / jnp.linalg.norm(z, axis=1, keepdims=True)
    y = jnp.sign(model.forward(teacher, X, config.activation))
    y = jnp.where(y == 0, 1.0, y)
    flip = jax.random.bernoulli(k_flip, config.label_noise, (n,))
    return X, jnp.where(flip, -y, y)


def make_data(config, key, dtype) -> Data:
    """S, the fresh samples and the test set, independent draws of one task (the teacher drawn once, the three
    draws' keys split in one vmapped call: the keys of `draw`)."""
    keys = jax.random.split(key, 4)
    teacher = _teacher(config, keys[0], dtype)
    k_train, k_fresh, k_test = jax.vmap(lambda k: jax.random.split(k, 3))(keys[1:])
    X, y = _draw(config, teacher, k_train, config.train_samples(), dtype)
    X_fresh, y_fresh = _draw(config, teacher, k_fresh, max(config.replicas, 1), dtype)
    X_test, y_test = _draw(config, teacher, k_test, config.test_samples, dtype)
    return Data(X, y, X_fresh[:config.replicas], y_fresh[:config.replicas], X_test, y_test)
