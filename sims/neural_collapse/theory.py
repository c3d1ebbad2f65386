"""The optimum of the supervised contrastive loss over unit features: closed forms and the convex relaxation.

Behnia and Thrampoulidis (2024, arXiv 2402.18884) observe that L depends on H only through G = H^T H, and that

    minimize L(G)  over  G >= 0 (PSD),  diag G = 1                                               (the relaxation)

is a convex program (each term is a log-sum-exp of affine maps of G) with a unique solution G*. It drops the rank
constraint rank G <= d of the unconstrained features model (UFM), so it is tight, and every UFM minimum global,
once d >= rank G*. Here:

* `relaxation_optimum`: G* for any class sizes, in JAX. Burer-Monteiro G = V^T V with V (p, N) in the scale-free
  parametrization h_i = v_i / |v_i| (v_i^2 / |v_i^2| for nonnegative features), minimized by L-BFGS with a zoom
  line search: machine precision in a few hundred iterations where Riemannian GD needs 10^4+ at tau = 0.1. The
  factor's rank p = min(N, max(k + 2, ceil(sqrt(2N)) + 1)) exceeds rank G* <= k, and for a smooth convex objective
  on the elliptope a rank-deficient local minimum of the factorized problem is global (Journee, Bach, Absil and
  Sepulchre 2010); the solver returns its factor's numerical rank so that this can be checked (p = N, the issue's
  "d = N", costs O(N^3) per iteration and only pays at small N);
* closed forms: balanced classes give the simplex ETF with per-anchor loss log(n - 1 + n (k-1) e^(-k/((k-1)tau)));
  nonnegative features give the collapsed orthogonal frame with L* = (1/N) sum_c n_c log(n_c - 1 + (N - n_c)
  e^(-1/tau)) (Kini et al. 2024);
* `step_program`: the 3-variable convex program of STEP imbalance (the paper's symmetry reduction), the cosines
  (alpha, beta, gamma) of majority-majority, minority-minority and majority-minority class means;
* `collapsed_program`: the relaxation restricted to collapsed G = M[y_i, y_j], a k x k SDP, for any class sizes.
  An independent check of `relaxation_optimum` (cvxpy with Clarabel), not used by the simulator.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sims.neural_collapse import model

__all__ = ["Optimum", "labels_of", "etf", "balanced_loss", "nonnegative_loss", "step_program", "step_gram",
           "collapsed_program", "collapsed_loss", "relaxation_optimum", "factor_rank", "class_block_means"]


def labels_of(sizes: Sequence[int]) -> np.ndarray:
    """y (N,) int32, class-major: sizes[0] zeros, then sizes[1] ones, ..."""
    return np.repeat(np.arange(len(sizes), dtype=np.int32), sizes)


def etf(k: int) -> np.ndarray:
    """The simplex ETF's Gram (k, k): 1 on the diagonal, -1/(k - 1) off it."""
    return (k * np.eye(k) - np.ones((k, k))) / (k - 1)


def balanced_loss(k: int, n: int, tau: float) -> float:
    """L* = log(n - 1 + n (k - 1) exp(-k / ((k - 1) tau))): collapse onto the ETF, every anchor alike."""
    return math.log(n - 1 + n * (k - 1) * math.exp(-k / ((k - 1) * tau)))


def nonnegative_loss(sizes: Sequence[int], tau: float) -> float:
    """L* = (1/N) sum_c n_c log(n_c - 1 + (N - n_c) e^(-1/tau)): collapse onto an orthogonal frame."""
    N = sum(sizes)
    return sum(n * math.log(n - 1 + (N - n) * math.exp(-1.0 / tau)) for n in sizes) / N


def collapsed_loss(class_gram: np.ndarray, sizes: Sequence[int], tau: float) -> float:
    """L of collapsed features whose class means have Gram `class_gram` (k, k) (unit diagonal):
    (1/N) sum_c n_c log(n_c - 1 + sum_(c' != c) n_c' exp((M_cc' - 1)/tau))."""
    n = np.asarray(sizes, float)
    off = np.exp((np.asarray(class_gram, float) - 1.0) / tau) * n[None, :]
    np.fill_diagonal(off, 0.0)
    return float(np.sum(n * np.log(n - 1 + off.sum(axis=1))) / n.sum())


def _lse_terms(cp, n_self: int, others: list[tuple[float, object]], tau: float):
    """log(n_self - 1 + sum_j count_j exp((cos_j - 1)/tau)) as a cvxpy expression, written as
    log(n_self - 1) + log(1 + ...) through log_sum_exp, which stays accurate at small tau."""
    parts = [math.log(n_self - 1)] + [math.log(count) + (cos - 1.0) / tau for count, cos in others if count > 0]
    return cp.log_sum_exp(cp.hstack(parts))


class StepOptimum(NamedTuple):
    """The cosines, the loss, and the smallest curvature of the loss in (alpha, beta) along the optimum's
    constraint (NaN when the PSD constraint is not active): a loss within tol of L* pins the cosines only to about
    sqrt(2 tol / curvature), which is what a comparison of cosines may ask."""
    alpha: float
    beta: float
    gamma: float
    loss: float
    curvature: float


def _solve(cp, problem):
    # Tolerances beyond Clarabel's reach end "optimal_inaccurate" at about 1e-12 in the objective: accepted (and
    # polished where the structure allows), without cvxpy's warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12, max_iter=500)
    if problem.status not in ("optimal", "optimal_inaccurate"):
        raise RuntimeError(f"the reduced program did not solve: {problem.status}")


def _step_loss(majority, minority, n_major, n_minor, tau, alpha, beta, gamma) -> float:
    """The reduced objective in float64, each log as log(n - 1) + log1p(.) (accurate at small tau)."""
    N = majority * n_major + minority * n_minor
    major = math.log(n_major - 1) + math.log1p(((majority - 1) * n_major * math.exp((alpha - 1) / tau)
                                                + minority * n_minor * math.exp((gamma - 1) / tau)) / (n_major - 1))
    minor = math.log(n_minor - 1) + math.log1p(((minority - 1) * n_minor * math.exp((beta - 1) / tau)
                                                + majority * n_major * math.exp((gamma - 1) / tau)) / (n_minor - 1))
    return (majority * n_major * major + minority * n_minor * minor) / N


@functools.lru_cache(maxsize=256)
def step_program(majority: int, minority: int, n_major: int, n_minor: int, tau: float) -> StepOptimum:
    """The paper's reduced program of STEP imbalance (k_M majority classes of n_M samples, k_m minority classes of
    n_m), over the three cosines of the class means:

        L(alpha, beta, gamma) = (1/N)[ k_M n_M log((n_M - 1) + (k_M - 1) n_M e^((alpha-1)/tau)
                                                    + k_m n_m e^((gamma-1)/tau))
                                     + k_m n_m log((n_m - 1) + (k_m - 1) n_m e^((beta-1)/tau)
                                                    + k_M n_M e^((gamma-1)/tau)) ]
        s.t. alpha, beta <= 1,  [[1 + (k_M - 1) alpha, sqrt(k_M k_m) gamma], [., 1 + (k_m - 1) beta]] PSD.
    """
    import cvxpy as cp
    a, b, g = cp.Variable(), cp.Variable(), cp.Variable()
    N = majority * n_major + minority * n_minor
    objective = (majority * n_major * _lse_terms(cp, n_major, [((majority - 1) * n_major, a),
                                                               (minority * n_minor, g)], tau)
                 + minority * n_minor * _lse_terms(cp, n_minor, [((minority - 1) * n_minor, b),
                                                                 (majority * n_major, g)], tau)) / N
    s = math.sqrt(majority * minority)
    block = cp.Variable((2, 2), symmetric=True)
    constraints = [a <= 1, b <= 1, block >> 0, block[0, 0] == 1 + (majority - 1) * a,
                   block[1, 1] == 1 + (minority - 1) * b, block[0, 1] == s * g]
    problem = cp.Problem(cp.Minimize(objective), constraints)
    _solve(cp, problem)
    alpha, beta, gamma = float(a.value), float(b.value), float(g.value)
    p, q = 1 + (majority - 1) * alpha, 1 + (minority - 1) * beta
    if abs(p * q - s * s * gamma * gamma) < 1e-6 * max(p * q, 1e-300) and gamma < 0 and alpha < 1 and beta < 1:
        # The optimum has rank k - 1 (the paper): the PSD constraint is active, gamma = -sqrt(p q) / s, and the
        # program is a smooth one in (alpha, beta). Newton on it takes the interior point's ~1e-8 cosines to
        # round-off.
        x, curvature = _newton_on_active_constraint(majority, minority, n_major, n_minor, tau, (alpha, beta))
        alpha, beta = x
        gamma = -math.sqrt((1 + (majority - 1) * alpha) * (1 + (minority - 1) * beta)) / s
    else:
        curvature = math.nan
    return StepOptimum(alpha, beta, gamma, _step_loss(majority, minority, n_major, n_minor, tau, alpha, beta, gamma),
                       curvature)


def _active_gradient(majority, minority, n_major, n_minor, tau, x) -> np.ndarray:
    """d/d(alpha, beta) of the reduced loss with gamma = -sqrt(p q)/s, p = 1 + (k_M-1) alpha, q = 1 + (k_m-1) beta
    (so d gamma/d alpha = gamma (k_M-1)/(2p), d gamma/d beta = gamma (k_m-1)/(2q))."""
    alpha, beta = x
    p, q = 1 + (majority - 1) * alpha, 1 + (minority - 1) * beta
    gamma = -math.sqrt(p * q / (majority * minority))
    e_a, e_b, e_g = (math.exp((v - 1) / tau) for v in (alpha, beta, gamma))
    d_major = n_major - 1 + (majority - 1) * n_major * e_a + minority * n_minor * e_g
    d_minor = n_minor - 1 + (minority - 1) * n_minor * e_b + majority * n_major * e_g
    w_major, w_minor = majority * n_major / d_major, minority * n_minor / d_minor
    dL_dgamma = (w_major * minority * n_minor + w_minor * majority * n_major) * e_g / tau
    N = majority * n_major + minority * n_minor
    grad_a = w_major * (majority - 1) * n_major * e_a / tau + dL_dgamma * gamma * (majority - 1) / (2 * p)
    grad_b = w_minor * (minority - 1) * n_minor * e_b / tau + dL_dgamma * gamma * (minority - 1) / (2 * q)
    return np.array([grad_a, grad_b]) / N


def _newton_on_active_constraint(majority, minority, n_major, n_minor, tau, x0, h: float = 1e-6):
    """Newton's method on (alpha, beta) with the analytic gradient and a central-difference Hessian of it; returns
    the point and the Hessian's smallest eigenvalue (the curvature that converts a loss tolerance into a cosine
    tolerance). Falls back to the start when a step leaves the domain or the gradient does not shrink."""
    grad = lambda x: _active_gradient(majority, minority, n_major, n_minor, tau, x)
    # A class alone in its group has no cosine: alpha (or beta) is then absent from the loss, fixed where it is.
    free = np.array([majority > 1, minority > 1])
    x = np.asarray(x0, float)
    hessian = np.eye(2)
    for _ in range(30):
        g = grad(x) * free
        hessian = np.stack([(grad(x + h * e) - grad(x - h * e)) / (2 * h) for e in np.eye(2)], axis=1)
        hessian = np.where(np.outer(free, free), (hessian + hessian.T) / 2, np.eye(2))
        step = np.linalg.solve(hessian, g)
        new = x - step
        p, q = 1 + (majority - 1) * new[0], 1 + (minority - 1) * new[1]
        if p <= 0 or q <= 0 or max(new) > 1 or np.linalg.norm(grad(new) * free) > np.linalg.norm(g):
            break
        x = new
    return tuple(map(float, x)), float(np.linalg.eigvalsh(hessian[np.ix_(free, free)])[0]) if free.any() \
        else math.nan


def step_gram(majority: int, minority: int, alpha: float, beta: float, gamma: float) -> np.ndarray:
    """The class means' Gram (k, k) of STEP: alpha among the k_M majority classes (first), beta among the minority,
    gamma across, 1 on the diagonal."""
    k = majority + minority
    M = np.full((k, k), gamma)
    M[:majority, :majority] = alpha
    M[majority:, majority:] = beta
    np.fill_diagonal(M, 1.0)
    return M


@functools.lru_cache(maxsize=64)
def collapsed_program(sizes: tuple[int, ...], tau: float) -> tuple[np.ndarray, float]:
    """min over M (k, k) PSD with unit diagonal of `collapsed_loss(M)`: the relaxation among collapsed Gram
    matrices, (M*, L*)."""
    import cvxpy as cp
    k, N = len(sizes), sum(sizes)
    M = cp.Variable((k, k), symmetric=True)
    terms = [n * _lse_terms(cp, n, [(sizes[j], M[c, j]) for j in range(k) if j != c], tau)
             for c, n in enumerate(sizes)]
    problem = cp.Problem(cp.Minimize(sum(terms) / N), [M >> 0, cp.diag(M) == 1])
    _solve(cp, problem)
    return np.asarray(M.value), float(problem.value)


class Optimum(NamedTuple):
    """gram: G* (N, N); loss: L(G*); residual: the norm of the solver's final gradient (its stationarity); rank: the
    numerical rank of G* (singular values above 1e-6 of the largest), < factor_rank for a certified optimum."""
    gram: jax.Array
    loss: jax.Array
    residual: jax.Array
    rank: jax.Array


def factor_rank(sizes_or_n: int, classes: int) -> int:
    """p, the rows of the Burer-Monteiro factor for N samples in k classes."""
    N = sizes_or_n
    return min(N, max(classes + 2, math.ceil(math.sqrt(2 * N)) + 1))


def _features(V, nonnegative: bool):
    V = V * V if nonnegative else V
    return V / jnp.linalg.norm(V, axis=0)


@functools.partial(jax.jit, static_argnames=("nonnegative", "iterations", "rank"))
def _lbfgs(labels, temperature, key, nonnegative: bool, iterations: int, rank: int) -> Optimum:
    N = labels.shape[0]
    objective = lambda V: model.loss(_features(V, nonnegative), labels, temperature)
    solver = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(objective)

    def body(carry, _):
        V, state = carry
        value, grad = value_and_grad(V, state=state)
        updates, state = solver.update(grad, state, V, value=value, grad=grad, value_fn=objective)
        return (optax.apply_updates(V, updates), state), None

    V0 = jax.random.normal(key, (rank, N), jnp.result_type(float))
    (V, _), _ = jax.lax.scan(body, (V0, solver.init(V0)), None, length=iterations)
    H = _features(V, nonnegative)
    value, grad = jax.value_and_grad(objective)(V)
    sv = jnp.linalg.svd(H, compute_uv=False)
    return Optimum(H.T @ H, value, jnp.linalg.norm(grad), jnp.sum(sv > 1e-6 * sv[0]).astype(jnp.int32))


def relaxation_optimum(labels, temperature, nonnegative: bool = False, iterations: int = 600,
                       seed: int = 0, rank: int | None = None) -> Optimum:
    """G* of the convex relaxation for labels (N,) at temperature tau, in the current float precision. Unique, so the
    solver's random start (seed) does not matter beyond round-off. rank: the factor's rows p (default
    `factor_rank`)."""
    labels = np.asarray(labels)
    rank = rank or factor_rank(len(labels), int(labels.max()) + 1)
    return _lbfgs(jnp.asarray(labels), jnp.asarray(temperature, jnp.result_type(float)), jax.random.key(seed),
                  nonnegative, iterations, rank)


def class_block_means(gram: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """M (k, k): the mean of G over each class block, the diagonal blocks without their diagonal (for a collapsed
    G, the class means' Gram)."""
    onehot = np.eye(classes)[labels]
    off = gram - np.diag(np.diag(gram))
    pairs = onehot.T @ (1.0 - np.eye(len(labels))) @ onehot
    return (onehot.T @ off @ onehot) / pairs
