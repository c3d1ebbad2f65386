"""Max-margin references of `implicit_bias`: which margin each optimizer maximizes (theory note, "Closed-form
references"). Host-side numpy / scipy / cvxpy in float64; nothing here is jitted.

Data: features h_i = x[i], (n, d), labels y_i = y[i] in {0..k-1}. A linear classifier W, (k, d), has logits W h and
margin m(W) = min_i min_{c != y_i} (w_{y_i} - w_c).h_i. Writing each (example, wrong class) pair r = (i, c) as the
matrix A_r = (e_{y_i} - e_c) h_i^T, (k, d), the pair margin is <A_r, W>_F and m(W) = min_r <A_r, W>_F.

The max margin in a norm is gamma = max_{|W| <= 1} m(W), and the margin gap of an iterate is gamma - m(W_t)/|W_t|:

* max-norm |W|_max = max_ab |W_ab| (SignGD, Adam with eps = 0): an LP, `max_norm_margin`; its dual
  gamma = min_{p in simplex} |sum_r p_r A_r|_sum, `max_norm_margin_dual`, cross-checks it.
* Frobenius (GD, normalized GD): the hard-margin multiclass SVM without bias, `frobenius_margin`.
* spectral |W|_2 (spectral descent, Muon): an SDP, `spectral_margin`.

By minimax duality each gamma equals min_{p in simplex} |sum_r p_r A_r|_* in the dual norm (entrywise sum, Frobenius,
nuclear), so gamma > 0 exactly when the data are linearly separable. Each solver raises `NotSeparableError` (a
ValueError whose message says "not linearly separable") when the optimal margin is not certifiably positive.
The solvers see the data rescaled by a power of two to unit size (exact in floating point), so their tolerances are
relative and gamma scales with the data.

The jitted simulator computes its per-step gaps in jax.numpy; `margin`, `normalized_margin`, `margin_gap` and
`correlation` are the numpy references its tests compare with.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import cvxpy as cp
import numpy as np
import scipy.optimize
import scipy.sparse as sp

__all__ = ["NORMS", "MaxMargin", "NotSeparableError", "correlation", "frobenius_margin", "margin", "margin_gap",
           "matrix_norm", "max_norm_margin", "max_norm_margin_dual", "normalized_margin", "pair_matrix", "separable",
           "spectral_margin"]

NORMS = ("max", "fro", "spectral")

# An optimal margin is called positive only above this fraction of max_r |A_r|_* (the largest margin a unit-norm W can
# reach on any single pair, so the ratio is scale-free and at most 1). It sits at HiGHS's default primal feasibility
# tolerance, 1e-7, above Clarabel's 1e-8: a smaller optimum cannot be told apart from solver error.
SEPARABILITY_RTOL = 1e-7

# Clarabel's defaults (1e-8 gap and feasibility) tightened: at the paper's size the QP's margins come out exact to
# ~1e-13 and the SDP's to ~1e-11. If Clarabel stalls short of them ("AlmostSolved"), `_solve` retries at the defaults.
CLARABEL_OPTIONS = {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10}

# Cutting plane of `spectral_margin`: pairs added per round, and how far (times max_r |A_r|_nuc) below t a pair outside
# the working set may sit and still count as satisfied (about Clarabel's own accuracy on these SDPs, ~1e-9 relative).
CUT_BATCH = 100
CUT_TOL = 1e-9


class NotSeparableError(ValueError):
    """The data are not linearly separable: no W has a positive margin m(W)."""


class MaxMargin(NamedTuple):
    """gamma: the max margin max_{|W| <= 1} m(W) in one norm; W: (k, d) a maximizer, scaled to unit norm."""
    gamma: float
    W: np.ndarray


def _check_data(x, y, k):
    """x as (n, d) float64, y as (n,) int64, after checking that labels lie in 0..k-1."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty (n, d) array of features, got shape {x.shape}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must have shape ({x.shape[0]},) to match x, got {y.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x has non-finite entries")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must hold integer labels, got dtype {y.dtype}")
    if k < 2 or y.min() < 0 or y.max() >= k:
        raise ValueError(f"labels must lie in 0..k-1 with k >= 2; got k={k}, labels in [{y.min()}, {y.max()}]")
    return x, y.astype(np.int64)


def _unit_scale(x) -> float:
    """A power of two s with max_i |s h_i| in [0.7, 1.4]. Solvers see s x: their absolute tolerances then mean the
    same at any data scale, and multiplying by a power of two is exact, so gamma(x) = gamma(s x) / s exactly."""
    largest = np.linalg.norm(x, axis=1).max()
    return float(2.0 ** -np.round(np.log2(largest))) if largest > 0 else 1.0


def matrix_norm(W, norm: str) -> float:
    """|W| of a (k, d) matrix: "max" max_ab |W_ab|, "fro" Frobenius, "spectral" largest singular value."""
    W = np.asarray(W, dtype=np.float64)
    if norm == "max":
        return float(np.max(np.abs(W)))
    if norm == "fro":
        return float(np.linalg.norm(W))
    if norm == "spectral":
        return float(np.linalg.norm(W, 2))
    raise ValueError(f"norm={norm!r}: allowed: {', '.join(NORMS)}")


def margin(W, x, y) -> float:
    """m(W) = min_i min_{c != y_i} (w_{y_i} - w_c).h_i for W (k, d), x (n, d), y (n,)."""
    z_nk = np.asarray(x, dtype=np.float64) @ np.asarray(W, dtype=np.float64).T
    y = np.asarray(y)
    rows = np.arange(z_nk.shape[0])
    gaps_nk = z_nk[rows, y][:, None] - z_nk
    gaps_nk[rows, y] = np.inf
    return float(gaps_nk.min())


def normalized_margin(W, x, y, norm: str) -> float:
    """m(W) / |W| in `norm` (one of NORMS); scale-free, at most that norm's gamma."""
    return margin(W, x, y) / matrix_norm(W, norm)


def margin_gap(W, x, y, norm: str, gamma: float) -> float:
    """gamma - m(W)/|W|: the margin gap of iterate W against the max margin `gamma` of the same norm."""
    return gamma - normalized_margin(W, x, y, norm)


def correlation(W, W_star) -> float:
    """<W, W*>_F / (|W|_F |W*|_F): the cosine between an iterate and a max-margin direction (paper's Figure 2)."""
    W, W_star = np.asarray(W, dtype=np.float64), np.asarray(W_star, dtype=np.float64)
    return float(np.sum(W * W_star) / (np.linalg.norm(W) * np.linalg.norm(W_star)))


def pair_matrix(x, y, k) -> sp.csr_matrix:
    """D, (R, k d) sparse, R = n (k - 1): row r = (i, c) is vec(A_r), A_r = (e_{y_i} - e_c) h_i^T, with vec row-major
    (W.ravel()). So D @ W.ravel() are the R pair margins, and m(W) is their minimum. Each row has 2d nonzeros."""
    x, y = _check_data(x, y, k)
    n, d = x.shape
    c_nk = np.broadcast_to(np.arange(k), (n, k))
    wrong = c_nk != y[:, None]
    i_r = np.nonzero(wrong)[0]
    c_r = c_nk[wrong]
    R = i_r.size
    cols = np.concatenate([y[i_r, None] * d + np.arange(d), c_r[:, None] * d + np.arange(d)], axis=1)
    vals = np.concatenate([x[i_r], -x[i_r]], axis=1)
    rows = np.repeat(np.arange(R), 2 * d)
    return sp.csr_matrix((vals.ravel(), (rows, cols.ravel())), shape=(R, k * d))


def _pair_dual_norm_max(x, norm: str) -> float:
    """max_r |A_r|_* for A_r = (e_y - e_c) h_i^T: 2|h_i|_1 (dual of max-norm), sqrt(2)|h_i|_2 (Frobenius and
    nuclear: A_r has rank one, so its nuclear and Frobenius norms agree)."""
    if norm == "max":
        return float(2 * np.abs(x).sum(axis=1).max())
    return float(np.sqrt(2) * np.linalg.norm(x, axis=1).max())


def _require_separable(gamma: float, x, norm: str):
    scale = _pair_dual_norm_max(x, norm)
    if not gamma > SEPARABILITY_RTOL * scale:
        raise NotSeparableError(f"the data are not linearly separable: the optimal {norm}-norm margin is "
                                f"{gamma + 0.0:.3g}, not above {SEPARABILITY_RTOL:g} x {scale:.3g} (solver tolerance)")


def max_norm_margin(x, y, k) -> MaxMargin:
    """Max-norm max margin gamma = max_{|W|_max <= 1} m(W) as an LP (theory note), by HiGHS.

    Variables z = (vec W, t), (k d + 1,): minimize -t subject to t - <A_r, W> <= 0 for every pair r and
    -1 <= W_ab <= 1. The optimal W is usually not unique; compare margins, not directions. Returns W scaled so
    max_ab |W_ab| = 1. Raises NotSeparableError when gamma is not positive.
    """
    x, y = _check_data(x, y, k)
    scale = _unit_scale(x)
    D = pair_matrix(scale * x, y, k)
    R, kd = D.shape
    A_ub = sp.hstack([-D, sp.csr_matrix(np.ones((R, 1)))], format="csr")
    c = np.zeros(kd + 1)
    c[-1] = -1.0
    bounds = [(-1.0, 1.0)] * kd + [(None, None)]
    res = scipy.optimize.linprog(c, A_ub=A_ub, b_ub=np.zeros(R), bounds=bounds, method="highs")
    if res.status != 0:
        raise RuntimeError(f"max-norm margin LP: HiGHS failed: {res.message}")
    gamma = float(res.x[-1]) / scale
    _require_separable(gamma, x, "max")
    W = res.x[:-1].reshape(k, x.shape[1])
    return MaxMargin(gamma, W / np.max(np.abs(W)))


def max_norm_margin_dual(x, y, k) -> float:
    """The LP dual of `max_norm_margin`: gamma = min_{p in simplex} |sum_r p_r A_r|_sum, |M|_sum = sum_ab |M_ab|.

    Linearized with s, (k d,), bounding |D^T p| entrywise: minimize sum(s) over z = (p, s) subject to
    D^T p - s <= 0, -D^T p - s <= 0, sum(p) = 1, p >= 0. Equals the primal's gamma by LP strong duality; it is 0
    (no error raised) when the data are not separable.
    """
    x, y = _check_data(x, y, k)
    scale = _unit_scale(x)
    Dt = pair_matrix(scale * x, y, k).T.tocsr()
    kd, R = Dt.shape
    eye = sp.identity(kd, format="csr")
    A_ub = sp.vstack([sp.hstack([Dt, -eye]), sp.hstack([-Dt, -eye])], format="csr")
    A_eq = sp.csr_matrix(np.concatenate([np.ones(R), np.zeros(kd)])[None, :])
    c = np.concatenate([np.zeros(R), np.ones(kd)])
    res = scipy.optimize.linprog(c, A_ub=A_ub, b_ub=np.zeros(2 * kd), A_eq=A_eq, b_eq=[1.0],
                                 bounds=[(0, None)] * (R + kd), method="highs")
    if res.status != 0:
        raise RuntimeError(f"max-norm margin dual LP: HiGHS failed: {res.message}")
    return float(res.fun) / scale


def _solve(problem: cp.Problem, what: str):
    """Solve with Clarabel at CLARABEL_OPTIONS, then at its defaults if that stalls; NotSeparableError if infeasible."""
    for options in (CLARABEL_OPTIONS, {}):
        with warnings.catch_warnings():  # cvxpy warns of an inaccurate solution, which the retry replaces
            warnings.simplefilter("ignore", UserWarning)
            problem.solve(solver=cp.CLARABEL, **options)
        if problem.status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
            raise NotSeparableError(f"the data are not linearly separable: the {what} is infeasible")
        if problem.status == cp.OPTIMAL:
            return
    raise RuntimeError(f"{what}: Clarabel returned status {problem.status}")


def frobenius_margin(x, y, k) -> MaxMargin:
    """Frobenius max margin gamma_2 = max_{|W|_F <= 1} m(W): the hard-margin multiclass SVM without bias,
    min (1/2)|W|_F^2 subject to <A_r, W> >= 1 for every pair r, and gamma_2 = 1/|W*|_F (theory note). A QP solved by
    Clarabel (margins exact to ~1e-13 at the paper's size). W* is unique (strictly convex objective); returns
    W*/|W*|_F. Raises NotSeparableError if the QP is infeasible or gamma_2 is not positive.
    """
    x, y = _check_data(x, y, k)
    scale = _unit_scale(x)
    D = pair_matrix(scale * x, y, k)
    w = cp.Variable(D.shape[1])
    _solve(cp.Problem(cp.Minimize(0.5 * cp.sum_squares(w)), [D @ w >= 1]), "Frobenius-margin SVM")
    W = w.value.reshape(k, x.shape[1])
    W = W / np.linalg.norm(W)
    gamma = 1.0 / (np.linalg.norm(w.value) * scale)
    _require_separable(gamma, x, "fro")
    return MaxMargin(float(gamma), W)


def spectral_margin(x, y, k, W0=None) -> MaxMargin:
    """Spectral max margin gamma_spec = max_{|W|_2 <= 1} m(W): maximize t subject to <A_r, W> >= t for every pair r
    and sigma_max(W) <= 1, an SDP (sigma_max(W) <= 1 iff [[I, W], [W^T, I]] is PSD, (k + d) square), by Clarabel.

    Solved over a working set of pairs (a cutting plane): start from the CUT_BATCH smallest margins of W0 (default
    the Frobenius solution), solve, add the CUT_BATCH most violated pairs outside the set, repeat until none is below
    t by more than CUT_TOL x max_r |A_r|_nuc. The last relaxation's optimum t bounds gamma_spec from above, and its
    W is feasible for every pair, so t is gamma_spec. At the paper's size this takes 2-4 rounds of 100-200 pairs
    (~0.3 s each); the full SDP with all n (k - 1) = 4500 pairs takes 1.5-2 s and stalls short of Clarabel's
    tolerances ("AlmostSolved").
    The optimal W need not be unique; returns one scaled to unit spectral norm. Raises NotSeparableError when
    gamma_spec is not positive.
    """
    x, y = _check_data(x, y, k)
    scale = _unit_scale(x)
    D = pair_matrix(scale * x, y, k)
    if W0 is None:
        W0 = frobenius_margin(x, y, k).W
    tol = CUT_TOL * _pair_dual_norm_max(scale * x, "spectral")
    m_r = D @ np.asarray(W0, dtype=np.float64).ravel()
    working = np.zeros(D.shape[0], dtype=bool)
    working[np.argsort(m_r)[:CUT_BATCH]] = True
    W, t = cp.Variable((k, x.shape[1])), cp.Variable()
    while True:  # ends: every round adds a pair, and there are finitely many
        _solve(cp.Problem(cp.Maximize(t), [D[working] @ cp.vec(W, order="C") >= t, cp.sigma_max(W) <= 1]),
               "spectral-margin SDP")
        m_r = D @ W.value.ravel()
        violated = np.flatnonzero(~working & (m_r < t.value - tol))
        if violated.size == 0:
            break
        working[violated[np.argsort(m_r[violated])[:CUT_BATCH]]] = True
    gamma = float(t.value) / scale
    _require_separable(gamma, x, "spectral")
    return MaxMargin(gamma, W.value / np.linalg.norm(W.value, 2))


def separable(x, y, k) -> bool:
    """Whether some W has m(W) > 0, decided by the max-norm LP (all norms agree on this: gamma > 0 in one norm iff in
    every norm)."""
    try:
        max_norm_margin(x, y, k)
    except NotSeparableError:
        return False
    return True
