"""The NTK margin at init (Ji and Telgarsky 2020; the paper's Assumption 1), by two independent programs in JAX.

With phi_i = grad_w Phi(w_0; x_i), K the NTK Gram and Q = diag(y) K diag(y) (n, n):

    gamma = max_{||u|| <= 1} min_i y_i <phi_i, u> = sqrt(min_{p in simplex} p^T Q p)                       (primal)
          = 1 / sqrt(1^T alpha*),  alpha* = argmax_{alpha >= 0} 1^T alpha - alpha^T Q alpha / 2        (SVM dual)

and the maximizing direction is u* = sum_i p*_i y_i phi_i / gamma (so y_i <phi_i, u*> = (Q p*)_i / gamma >= gamma,
with equality on the support of p*). gamma > 0 exactly when the NTK features separate the data.

Each program is solved exactly by a finite active-set method in JAX (a `while_loop` of masked dense solves):
- the simplex QP by Wolfe's minimum-norm-point algorithm (Wolfe 1976), started from the vertex of least Q_ii;
- the SVM dual by the Lawson-Hanson active-set method, started from alpha = 0.
Both add the most violated KKT index, solve the equality-constrained problem on the support exactly and step back
to feasibility when a weight would turn negative; they stop when the KKT conditions hold to round-off. They share
no iterate, so their agreement checks each.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["Margin", "simplex_qp", "svm_dual", "ntk_margin"]


class Margin(NamedTuple):
    """gamma from the simplex QP, gamma_dual from the SVM dual, p* (n,) the simplex weights, alpha* (n,), and
    whether both programs met their optimality conditions within the iteration cap."""
    gamma: jax.Array
    gamma_dual: jax.Array
    weights: jax.Array
    dual: jax.Array
    converged: jax.Array


def _tolerance(Q):
    """KKT slack below which an index counts as satisfied: round-off of a Q-product."""
    return 1e3 * jnp.finfo(Q.dtype).eps * jnp.max(jnp.abs(jnp.diag(Q)))


def _masked_solve(Q, mask, rhs):
    """Solves Q_SS x_S = rhs_S with x = 0 off S (identity rows off S keep the system square)."""
    M = mask.astype(Q.dtype)
    A = Q * M[:, None] * M[None, :] + jnp.diag(1.0 - M)
    return jnp.linalg.solve(A, rhs * M)


def _affine_minimizer(Q, mask):
    """argmin p^T Q p over {sum p = 1, p = 0 off S}: the bordered KKT system [Q_SS 1; 1' 0][p; -lambda] = [0; 1],
    which is nonsingular whenever the support's points are affinely independent (Q_SS itself may be singular)."""
    n = Q.shape[0]
    M = mask.astype(Q.dtype)
    A = jnp.zeros((n + 1, n + 1), Q.dtype)
    A = A.at[:n, :n].set(Q * M[:, None] * M[None, :] + jnp.diag(1.0 - M))
    A = A.at[:n, n].set(M).at[n, :n].set(M)
    rhs = jnp.zeros(n + 1, Q.dtype).at[n].set(1.0)
    return jnp.linalg.solve(A, rhs)[:n]


def _active_set(Q, x0, mask0, subproblem, violated, max_iterations):
    """The loop both programs share. subproblem(mask) -> the exact minimizer on the support; violated(x, mask) ->
    (any, index) of the most violated KKT condition off the support. Minor steps move from x towards the
    subproblem's solution z, stopping where the first weight reaches zero, and drop it from the support."""
    def minor(state):
        x, mask, _, it = state
        z = subproblem(mask)
        blocking = mask & (z <= 0)
        ratio = jnp.where(blocking, x / jnp.where(blocking, x - z, 1.0), jnp.inf)
        k = jnp.argmin(ratio)
        theta = jnp.minimum(ratio[k], 1.0)
        x = jnp.where(mask, x + theta * (z - x), 0.0)
        full = theta >= 1.0
        # The blocking index leaves the support exactly: x_k computed as x_k + theta (z_k - x_k) is only ~eps, and
        # an index kept at ~eps makes every later theta ~0, so the loop would stall at a non-optimal point.
        x = jnp.where(full, jnp.where(mask, z, 0.0), x.at[k].set(0.0))
        mask = jnp.where(full, mask, mask.at[k].set(False) & (x > 0))
        return x, mask, full, it + 1

    def major(state):
        x, mask, _, it = state
        _, j = violated(x, mask)
        mask = mask.at[j].set(True)
        x, mask, _, it = jax.lax.while_loop(lambda s: (~s[2]) & (s[3] < max_iterations), minor,
                                            (x, mask, jnp.array(False), it))
        return x, mask, jnp.array(False), it

    def not_done(state):
        x, mask, _, it = state
        return violated(x, mask)[0] & (it < max_iterations)

    x, mask, _, _ = jax.lax.while_loop(not_done, major, (x0, mask0, jnp.array(False), jnp.int32(0)))
    return x, ~violated(x, mask)[0]


def simplex_qp(Q, max_iterations: int):
    """(p*, converged): p* = argmin_{p in simplex} p^T Q p (n,), by Wolfe's minimum-norm-point algorithm: optimal
    when (Q p)_j >= p^T Q p for every j, which `converged` says held at the end."""
    tol = _tolerance(Q)
    i0 = jnp.argmin(jnp.diag(Q))
    p0 = jax.nn.one_hot(i0, Q.shape[0], dtype=Q.dtype)

    def violated(p, mask):
        slack = jnp.where(mask, jnp.inf, Q @ p - p @ Q @ p)
        return jnp.min(slack) < -tol, jnp.argmin(slack)

    return _active_set(Q, p0, p0 > 0, lambda mask: _affine_minimizer(Q, mask), violated, max_iterations)


def svm_dual(Q, max_iterations: int):
    """(alpha*, converged): alpha* = argmax_{alpha >= 0} 1^T alpha - alpha^T Q alpha / 2 (n,), by Lawson-Hanson:
    optimal when (Q alpha)_j >= 1 for every j (unbounded when gamma = 0: the loop then stops at max_iterations,
    not converged)."""
    n = Q.shape[0]
    tol = _tolerance(Q)
    ones = jnp.ones(n, Q.dtype)

    def violated(a, mask):
        slack = jnp.where(mask, jnp.inf, Q @ a - 1.0)
        return jnp.min(slack) < -tol, jnp.argmin(slack)

    return _active_set(Q, jnp.zeros(n, Q.dtype), jnp.zeros(n, bool), lambda mask: _masked_solve(Q, mask, ones),
                       violated, max_iterations)


def ntk_margin(K, y, iterations: int) -> Margin:
    """Both programs on the NTK Gram K (n, n) and labels y (n,) in {-1, +1}, each capped at `iterations` solves."""
    Q = K * y[:, None] * y[None, :]
    p, p_done = simplex_qp(Q, iterations)
    alpha, alpha_done = svm_dual(Q, iterations)
    gamma = jnp.sqrt(jnp.maximum(p @ Q @ p, 0.0))
    return Margin(gamma, 1.0 / jnp.sqrt(jnp.sum(alpha)), p, alpha, p_done & alpha_done)
