"""implicit_bias's max-margin references (sims/implicit_bias/theory.py) against margin theory (theory note,
"Closed-form references").

For pairs r = (i, c), c != y_i, let A_r = (e_{y_i} - e_c) h_i^T, so the margin is m(W) = min_r <A_r, W>_F. Minimax
duality gives gamma = max_{|W| <= 1} m(W) = min_{p in simplex} |sum_r p_r A_r|_* in the dual norm (entrywise sum for the
max-norm, Frobenius for Frobenius, nuclear for spectral). So every W bounds gamma from below by m(W)/|W| and every p
bounds it from above (weak duality): the tests certify each solver's gamma between the two.

Tolerances come from the solvers: HiGHS's default primal and dual feasibility tolerance is 1e-7; Clarabel's default
gap and feasibility tolerance is 1e-8 (the module asks for 1e-10 first and falls back to the default), and the spectral
cutting plane lets a pair outside its working set sit CUT_TOL x max_r |A_r|_nuc below t.
"""

import numpy as np
import pytest

from sims.implicit_bias import theory

HIGHS_RTOL = 1e-7
CLARABEL_RTOL = 1e-8
NORMS = theory.NORMS


def recipe(seed, k=10, d=25, per_class=50, noise=0.1):
    """The paper's data (theory note, figures 1-2): k centres ~ N(0, I_d), per_class points ~ N(centre, noise^2 I)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d))
    y = np.repeat(np.arange(k), per_class)
    return centres[y] + noise * rng.standard_normal((k * per_class, d)), y


def solve(x, y, k, norm):
    if norm == "max":
        return theory.max_norm_margin(x, y, k)
    if norm == "fro":
        return theory.frobenius_margin(x, y, k)
    return theory.spectral_margin(x, y, k)


def solver_rtol(x, gamma, norm):
    """Relative accuracy of a returned gamma: HiGHS's 1e-7 for the LP; Clarabel's 1e-8 for the QP; for the SDP also
    the cutting plane's slack CUT_TOL x max_r |A_r|_nuc, relative to gamma (sqrt(2) |h_i| bounds |A_r|_nuc)."""
    if norm == "max":
        return HIGHS_RTOL
    if norm == "fro":
        return CLARABEL_RTOL
    return CLARABEL_RTOL + theory.CUT_TOL * np.sqrt(2) * np.linalg.norm(x, axis=1).max() / gamma


@pytest.fixture(scope="module")
def paper():
    """The paper's recipe at its size (k = 10, d = 25, 50 per class, noise 0.1), seed 0, with all three optima."""
    x, y = recipe(0)
    return dict(x=x, y=y, k=10, **{norm: solve(x, y, 10, norm) for norm in NORMS})


def test_max_norm_lp_primal_equals_its_dual(paper):
    """LP strong duality: max_{|W|_max <= 1} m(W) = min_{p in simplex} |sum_r p_r A_r|_sum. Each LP is solved to
    HiGHS's feasibility tolerance 1e-7, so the two optima agree to 1e-7 relative (measured: ~1e-13)."""
    dual = theory.max_norm_margin_dual(paper["x"], paper["y"], paper["k"])
    np.testing.assert_allclose(paper["max"].gamma, dual, rtol=HIGHS_RTOL)


@pytest.mark.parametrize("norm", NORMS)
def test_returned_w_has_unit_norm_and_attains_gamma(paper, norm):
    """gamma is attained: m(W)/|W| of the returned W equals gamma to the solver's accuracy (solver_rtol), and W is
    scaled to unit norm (a division: float64 rounding, 1e-12). The max-norm LP solution also stays in the box."""
    x, y = paper["x"], paper["y"]
    gamma, W = paper[norm]
    assert W.shape == (paper["k"], x.shape[1]) and W.dtype == np.float64
    np.testing.assert_allclose(theory.matrix_norm(W, norm), 1.0, rtol=1e-12)
    np.testing.assert_allclose(theory.normalized_margin(W, x, y, norm), gamma, rtol=solver_rtol(x, gamma, norm))
    np.testing.assert_allclose(theory.margin_gap(W, x, y, norm, gamma), 0.0, atol=solver_rtol(x, gamma, norm) * gamma)


def test_frobenius_solution_satisfies_kkt(paper):
    """KKT of the SVM min (1/2)|W|_F^2 s.t. <A_r, W> >= 1: W* = sum_r alpha_r A_r with alpha >= 0 supported on the
    active pairs (<A_r, W*> = 1). Here W* = W / gamma_2. Active: margins within 1e-6 of 1, 100x Clarabel's 1e-8 (62
    pairs on this seed; the next margin is 1 + 6e-5). Non-negative least squares finds alpha >= 0; stationarity holds
    to 1e-6 relative (measured 1.5e-8). Then p = alpha / sum(alpha) gives the dual bound
    |sum p_r A_r|_F = 1/|W*|_F = gamma_2: the primal and dual values meet to Clarabel's 1e-8."""
    import scipy.optimize
    x, y, k = paper["x"], paper["y"], paper["k"]
    gamma, W = paper["fro"]
    D = theory.pair_matrix(x, y, k)
    w_star = W.ravel() / gamma
    m_r = D @ w_star
    assert m_r.min() >= 1 - CLARABEL_RTOL  # primal feasibility
    active = m_r <= 1 + 1e-6
    alpha, residual = scipy.optimize.nnls(D[active].T.toarray(), w_star)
    assert residual <= 1e-6 * np.linalg.norm(w_star), residual  # stationarity, dual feasibility by construction
    p_r = np.zeros(D.shape[0])
    p_r[active] = alpha / alpha.sum()
    upper = np.linalg.norm(D.T @ p_r)  # weak duality: any p in the simplex bounds gamma_2 from above
    np.testing.assert_allclose(upper, gamma, rtol=CLARABEL_RTOL)


def test_spectral_margin_is_certified_by_a_nuclear_norm_dual_bound(paper):
    """gamma_spec = min_{p in simplex} |sum_r p_r A_r|_nuc. The returned W gives the lower bound m(W)/|W|_2; a p from
    the dual SDP restricted to W's near-active pairs (margin within 1e-6 relative of the minimum) gives an upper bound,
    computed exactly in numpy for that p. Both meet gamma_spec to Clarabel's accuracy plus the cut slack (solver_rtol,
    1.3e-8 here; the measured gap is 3e-10)."""
    import cvxpy as cp
    x, y, k = paper["x"], paper["y"], paper["k"]
    gamma, W = paper["spectral"]
    D = theory.pair_matrix(x, y, k)
    m_r = D @ W.ravel()
    near = np.flatnonzero(m_r <= m_r.min() * (1 + 1e-6))
    p = cp.Variable(near.size, nonneg=True)
    cp.Problem(cp.Minimize(cp.normNuc(cp.reshape(D[near].T @ p, (k, x.shape[1]), order="C"))),
               [cp.sum(p) == 1]).solve(solver=cp.CLARABEL)
    p_r = np.zeros(D.shape[0])
    p_r[near] = np.clip(p.value, 0, None) / np.clip(p.value, 0, None).sum()
    upper = np.linalg.norm((D.T @ p_r).reshape(k, -1), "nuc")
    lower = theory.normalized_margin(W, x, y, "spectral")
    rtol = solver_rtol(x, gamma, "spectral")
    assert lower <= upper * (1 + 1e-12)  # weak duality, up to float64 rounding
    assert upper - lower <= rtol * gamma, (lower, upper)
    assert lower - rtol * gamma <= gamma <= upper + rtol * gamma


@pytest.mark.parametrize("c", [1e-3, 3.0, 1e3])
def test_scaling_the_data_by_c_scales_every_margin_by_c(c):
    """m(W) is linear in the features: m(W; c h) = c m(W; h), so every max margin scales by c > 0 and the maximizers
    do not change. Each gamma is accurate to its solver's relative tolerance (solver_rtol), so the ratio is c to twice
    that. The Frobenius maximizer is unique (strictly convex SVM); its direction agrees to 1e-6 (the 1-strongly convex
    (1/2)|W|^2 within eps of its optimum puts W within sqrt(2 eps) of W*, ~1e-5 at eps = 1e-10; measured <= 3e-11)."""
    x, y = recipe(1, k=5, d=8, per_class=20, noise=0.3)
    for norm in NORMS:
        base, scaled = solve(x, y, 5, norm), solve(c * x, y, 5, norm)
        rtol = 2 * max(solver_rtol(x, base.gamma, norm), solver_rtol(c * x, scaled.gamma, norm))
        np.testing.assert_allclose(scaled.gamma, c * base.gamma, rtol=rtol, err_msg=norm)
        if norm == "fro":
            np.testing.assert_allclose(scaled.W, base.W, atol=1e-6)


def test_margins_are_ordered_as_the_norms(paper):
    """For every W: |W|_max <= |W|_2 <= |W|_F <= sqrt(k d) |W|_max, and |W|_F <= sqrt(min(k, d)) |W|_2 (the rank is at
    most min(k, d)).
    A larger norm means a smaller normalized margin m(W)/|W| for every W with m(W) > 0, so the maxima are ordered the
    other way: gamma_fro <= gamma_spec <= gamma_max <= sqrt(k d) gamma_fro, and gamma_spec <= sqrt(min(k, d)) gamma_fro.
    Also no optimum beats another in that other's own norm: m(W_b)/|W_b|_a <= gamma_a. Slack: the solver tolerances."""
    x, y, k = paper["x"], paper["y"], paper["k"]
    d = x.shape[1]
    g = {norm: paper[norm].gamma for norm in NORMS}
    slack = 1 + 1e-7
    assert g["fro"] <= g["spectral"] * slack
    assert g["spectral"] <= g["max"] * slack
    assert g["max"] <= np.sqrt(k * d) * g["fro"] * slack
    assert g["spectral"] <= np.sqrt(min(k, d)) * g["fro"] * slack
    for a in NORMS:
        for b in NORMS:
            assert theory.normalized_margin(paper[b].W, x, y, a) <= g[a] * slack, (a, b)


def test_paper_recipe_margins_have_the_reference_magnitudes(paper):
    """Theory note, reference values for one seed of the recipe: gamma_max ~ 15.4, gamma_2 ~ 1.34. The seed and the
    order of the draws are not specified, so only the order of magnitude is asserted. (This seed gives 15.42 and
    1.338, and gamma_spec = 3.494.)"""
    assert 5 < paper["max"].gamma < 40
    assert 0.5 < paper["fro"].gamma < 4
    assert paper["fro"].gamma < paper["spectral"].gamma < paper["max"].gamma


# The hand-checkable case: k = d = 2, h_1 = (1, 0) with y = 0, h_2 = (-1, 0) with y = 1. The two pairs have margins
# (w_0 - w_1).h_1 = W_00 - W_10 and (w_1 - w_0).h_2 = W_00 - W_10: the same number u = <(e_0 - e_1) e_0^T, W>.
# max-norm: |W_ab| <= 1, so u <= 2, attained by W_00 = 1, W_10 = -1 (the second column is free): gamma_max = 2.
# Frobenius: u <= |e_0 - e_1| |W|_F = sqrt(2) (Cauchy-Schwarz), attained only by W = [[1, 0], [-1, 0]] / sqrt(2).
# spectral: u = (e_0 - e_1)^T W e_0 <= sqrt(2) |W|_2, attained by the same W; gamma_spec = sqrt(2). Its first column
# must be (1, -1)/sqrt(2) (a unit column), the second only orthogonal to it with length <= 1.
TINY_X = np.array([[1.0, 0.0], [-1.0, 0.0]])
TINY_Y = np.array([0, 1])


def test_tiny_case_margins_match_the_hand_derivation():
    gamma, W = theory.max_norm_margin(TINY_X, TINY_Y, 2)
    np.testing.assert_allclose(gamma, 2.0, atol=1e-8)
    np.testing.assert_allclose(W[:, 0], [1.0, -1.0], atol=1e-8)
    assert np.abs(W).max() <= 1 + 1e-12
    np.testing.assert_allclose(theory.max_norm_margin_dual(TINY_X, TINY_Y, 2), 2.0, atol=1e-8)

    gamma, W = theory.frobenius_margin(TINY_X, TINY_Y, 2)
    np.testing.assert_allclose(gamma, np.sqrt(2), atol=1e-8)
    np.testing.assert_allclose(W, np.array([[1.0, 0.0], [-1.0, 0.0]]) / np.sqrt(2), atol=1e-8)

    gamma, W = theory.spectral_margin(TINY_X, TINY_Y, 2)
    np.testing.assert_allclose(gamma, np.sqrt(2), atol=1e-8)
    np.testing.assert_allclose(W[:, 0], np.array([1.0, -1.0]) / np.sqrt(2), atol=1e-8)
    np.testing.assert_allclose(W[0, 1] + W[1, 1], 2 * W[0, 1], atol=1e-8)  # second column orthogonal to the first


def test_margin_helpers_on_the_tiny_case():
    """m(W) = W_00 - W_10 here; normalized margins divide by the three norms of W; correlation is a cosine."""
    W = np.array([[2.0, 1.0], [-1.0, 0.0]])  # u = 3; |W|_max = 2, |W|_F = sqrt(6)
    assert theory.margin(W, TINY_X, TINY_Y) == 3.0
    np.testing.assert_allclose(theory.normalized_margin(W, TINY_X, TINY_Y, "max"), 1.5, rtol=1e-15)
    np.testing.assert_allclose(theory.normalized_margin(W, TINY_X, TINY_Y, "fro"), 3 / np.sqrt(6), rtol=1e-15)
    np.testing.assert_allclose(theory.normalized_margin(W, TINY_X, TINY_Y, "spectral"),
                               3 / np.linalg.svd(W, compute_uv=False)[0], rtol=1e-15)
    np.testing.assert_allclose(theory.margin_gap(W, TINY_X, TINY_Y, "max", 2.0), 0.5, rtol=1e-15)
    np.testing.assert_allclose(theory.correlation(W, 5 * W), 1.0, rtol=1e-15)
    np.testing.assert_allclose(theory.correlation(W, -W), -1.0, rtol=1e-15)
    np.testing.assert_allclose(theory.correlation(W, np.array([[1.0, 0.0], [0.0, 0.0]])), 2 / np.sqrt(6), rtol=1e-15)


def test_max_norm_is_entrywise_not_the_max_row_sum():
    """The theory note's CVXPY pitfall: norm(W, "inf") of a matrix is its max row sum (3 here), not max |W_ab| (1)."""
    assert theory.matrix_norm(np.ones((2, 3)), "max") == 1.0
    with pytest.raises(ValueError, match="allowed"):
        theory.matrix_norm(np.ones((2, 3)), "inf")


def test_margin_agrees_with_the_pair_matrix(paper):
    """Two computations of the pair margins: dense logits x W^T and the sparse D @ vec(W) (R = n (k - 1) rows of
    2d nonzeros). Same sums in different order: float64 rounding, 1e-12 relative."""
    x, y, k = paper["x"], paper["y"], paper["k"]
    D = theory.pair_matrix(x, y, k)
    assert D.shape == (x.shape[0] * (k - 1), k * x.shape[1]) and D.nnz == D.shape[0] * 2 * x.shape[1]
    W = np.random.default_rng(0).standard_normal((k, x.shape[1]))
    np.testing.assert_allclose(theory.margin(W, x, y), (D @ W.ravel()).min(), rtol=1e-12)


@pytest.mark.parametrize("x, y", [
    (np.array([[1.0, 2.0], [1.0, 2.0], [0.0, 1.0]]), np.array([0, 1, 0])),  # one point with two labels
    (np.array([[1.0], [2.0]]), np.array([0, 1])),  # no bias: (w_0 - w_1) h must be > 0 at h = 1 and < 0 at h = 2
], ids=["duplicate_point", "collinear_through_origin"])
def test_non_separable_data_raise_value_error_naming_separability(x, y):
    """Not separable: every W has m(W) <= 0, so each optimal margin is 0 (W = 0) or the SVM is infeasible."""
    for norm in NORMS:
        with pytest.raises(ValueError, match="separable"):
            solve(x, y, 2, norm)
    assert not theory.separable(x, y, 2)
    np.testing.assert_allclose(theory.max_norm_margin_dual(x, y, 2), 0.0, atol=1e-9)
    assert theory.separable(TINY_X, TINY_Y, 2)


def test_bad_inputs_raise_value_error():
    with pytest.raises(ValueError, match="labels"):
        theory.max_norm_margin(TINY_X, np.array([0, 2]), 2)
    with pytest.raises(ValueError, match="shape"):
        theory.frobenius_margin(TINY_X, np.array([0, 1, 1]), 2)
