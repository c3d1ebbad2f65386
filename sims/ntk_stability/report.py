"""`ntk_stability` simulation beside theory, every row with a test that can fail (or the reason why none can):

deep nets (per grid point)
- the NTK margin from the simplex QP = from the SVM dual, and u* attains it: two exact programs, equal to round-off
  (1e-6 relative in float64, 1e-3 in float32: the acceptance);
- the empirical NTK Gram at init = the infinite-width NTK (`kernel`, by quadrature): its mean diagonal and its mean
  diagonal minus off-diagonal (the input-dependent part), each as a ratio per data draw, across draws;
- the replace-one identity: the generalization gap F - F_hat at T against mean_i l(A(S^i); z_i) - l(A(S); z_i),
  paired over data draws (`stats.across` of the per-draw differences);
- the training bound F_hat(w_T), (1/T) sum_t F_hat(w_t) <= F_hat(w*) + |w* - w_0|^2/(eta T): a deterministic
  inequality for every run, checked on every draw; the draw with the least slack is printed, "holds, loose xK";
over a sweep
- samples: the slope of model stability in n, per draw (the ladder's points share each draw's first samples), across
  draws, = -1; width: the gap at T does not grow with m, paired with the narrowest width over the shared draws;
xor (per grid point, at eta = m)
- the fraction of seeds at 100% test accuracy within the run, and at 99% and 100% by step ceil(log d): >= 1 (the
  theorem: perfect accuracy after ceil(log d) steps); a seed that never gets there counts as never (steps inf);
- width x step grid (`xor_small_step`): the large step beats the small one at every width, paired over seeds.
"""

from __future__ import annotations

import functools
import json
import math

import numpy as np
import xarray as xr

from dynamics import stats
from dynamics.report import Row, bound, equal, exceeds, per_point, shown
from dynamics.stats import Estimate
from sims.ntk_stability import kernel

__all__ = ["GRAM_MEANINGFUL", "GRAM_SAMPLES", "IDENTITY_MEANINGFUL", "compare", "figure", "margin_tolerance", "paired",
           "scaling_grid", "steps_to_accuracy"]

# The replace-one identity is exact, but its two sides are noisy per draw (the gap conditional on S is not its
# estimate conditional on S; only their expectations agree), so 32 draws resolve a deviation of about a third of the
# gap, not 10% (README). The row must see an estimate off by half the gap: e.g. one that drops the replaced point's
# own loss change, or is taken at the wrong sample.
IDENTITY_MEANINGFUL = 0.5


def scaling_grid(config) -> dict:
    """The ladder of `--scaling`: n for the deep-net tasks (stability ~ 1/n), d for xor (steps ~ log d)."""
    if config.task == "xor":
        return {"dim": [16, 32, 64, 128, 256]}
    return {"samples": [50, 100, 200, 400]}


def margin_tolerance(gamma: float, dtype) -> float:
    return (1e-6 if np.dtype(dtype) == np.float64 else 1e-3) * max(abs(gamma), 1e-12)


def _seeds(da: xr.DataArray) -> np.ndarray:
    """One value per seed (other axes, none in a point's scalar records, are averaged)."""
    other = [d for d in da.dims if d != "seed"]
    return np.atleast_1d((da.mean(other) if other else da).values).astype(float)


def paired(a: xr.DataArray, b: xr.DataArray) -> Estimate:
    """The mean of a over seeds with the standard error of the paired difference a - b across seeds: the test of
    a = b when both were measured on the same draws."""
    a, b = _seeds(a), _seeds(b)
    return stats.across(a - b)._replace(mean=float(a.mean()))


def steps_to_accuracy(test_error: xr.DataArray, accuracy: float = 1.0) -> xr.DataArray:
    """The first recorded step whose test accuracy is >= `accuracy` (inf if none), per member."""
    reached = (1.0 - test_error) >= accuracy - 1e-12
    first = reached.argmax("step")
    return xr.where(reached.any("step"), test_error.step[first].drop_vars("step"), np.inf)


def _worst_pair(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(a, b) at the member where they differ most."""
    a, b = np.ravel(a), np.broadcast_to(np.ravel(b), np.ravel(a).shape)
    i = int(np.argmax(np.abs(a - b)))
    return float(a[i]), float(b[i])


@functools.lru_cache(maxsize=256)
def _infinite_width(X_bytes: bytes, shape: tuple, activation: str, depth: int) -> np.ndarray:
    # Cached: the points of a traced sweep (lr, label noise) share each seed's inputs.
    return kernel.ntk(np.frombuffer(X_bytes).reshape(shape), activation, depth)


# The Gram rows read the first GRAM_SAMPLES samples of each draw: their noise is the init's, shared by every entry,
# so more pairs would not shrink it, and the quadrature costs a second per 20,000 pairs.
GRAM_SAMPLES = 64
# At m = 64 and L = 2 the Gram of one init fluctuates by about 13% (O(1/sqrt(m))), so 32 draws detect a 10-12%
# error. The rows must detect 20%: less than any wrong scale in the parameterization does (a dropped 1/sqrt(d)
# raises the diagonal by 44% at d = 10, L = 2; a dropped 1/sqrt(m) multiplies terms by m).
GRAM_MEANINGFUL = 0.2


def _gram_summaries(p: xr.Dataset, cfg: dict):
    """Per seed: (mean K_ii, mean K_ii - mean K_ij (i != j)) of the empirical Gram at init and of the infinite-width
    NTK on the same inputs (the first GRAM_SAMPLES), arrays (seeds, 2) each."""
    X_all, K_all = (da.transpose("seed", ...).values if "seed" in da.dims else da.values[None]
                    for da in (p.inputs, p.ntk_gram))
    emp, inf = [], []
    for X, K in zip(X_all, K_all):
        n = min(int(np.sum(np.all(np.isfinite(X), axis=1))), GRAM_SAMPLES)  # a samples sweep pads n with NaN
        X, K = np.ascontiguousarray(X[:n], float), K[:n, :n]
        T = _infinite_width(X.tobytes(), X.shape, cfg["activation"], int(cfg["depth"]))
        for G, out in ((K, emp), (T, inf)):
            diag, off = np.mean(np.diag(G)), (np.sum(G) - np.trace(G)) / (n * (n - 1))
            out.append((diag, diag - off))
    return np.array(emp), np.array(inf)


def _kernel_rows(p: xr.Dataset, where: str, cfg: dict) -> list[Row]:
    # E[K] = Theta exactly with one hidden layer (a mean of m i.i.d. neuron terms). Deeper, E[K] - Theta = O(1/m): a
    # smooth function of each layer's empirical covariance, whose fluctuations are O(1/sqrt(m)), averaged. We allow
    # 1/m, more than ten times the 0.1% measured at m = 64, L = 2 (softplus, 4000 inits).
    m, depth = int(cfg["width"]), int(cfg["depth"])
    bias = 0.0 if depth == 1 else 1.0 / m
    emp, inf = _gram_summaries(p, cfg)
    source = f"infinite-width NTK (kernel.py, quadrature){'' if depth == 1 else f'; O(1/m) allowed: {bias:.2g}'}"
    rows = [equal("NTK Gram at init: mean K_ii / infinite width", where, stats.across(emp[:, 0] / inf[:, 0]), 1.0,
                  source, bias=bias, meaningful=GRAM_MEANINGFUL),
            equal("NTK Gram at init: mean K_ii - K_ij (i != j) / inf. width", where,
                  stats.across(emp[:, 1] / inf[:, 1]), 1.0, source, bias=bias, meaningful=GRAM_MEANINGFUL)]
    off_emp, off_inf = 1 - emp[:, 1] / emp[:, 0], 1 - inf[:, 1] / inf[:, 0]
    rows.append(shown("NTK Gram at init: mean K_ij / mean K_ii (i != j)", where, float(off_emp.mean()),
                      float(off_inf.mean()), "the regime, no claim: near 1 the Gram is nearly rank one "
                      "(pre-activations of std |x|/sqrt(d) = 1/sqrt(d), where sigma is nearly linear; README)"))
    return rows


def _margin_rows(p: xr.Dataset, where: str) -> list[Row]:
    gamma = p.ntk_margin.values
    tol = margin_tolerance(float(np.min(gamma)), p.ntk_margin.dtype)
    worst = where + (" (worst seed)" if p.sizes.get("seed", 1) > 1 else "")
    stalled = int(np.size(p.ntk_margin_converged.values) - np.sum(p.ntk_margin_converged.values))
    note = f"; NOT CONVERGED on {stalled} seed(s): raise --margin_iterations" if stalled else ""
    qp, dual = _worst_pair(gamma, p.ntk_margin_dual.values)
    attained, at = _worst_pair(p.ntk_margin_attained.values, gamma)
    return [equal("NTK margin gamma: simplex QP", worst, stats.exact(qp), dual, "SVM dual 1/sqrt(1'alpha*)" + note,
                  bias=tol),
            equal("min_i y_i <phi_i, u*>", worst, stats.exact(attained), at, "gamma: u* attains it", bias=tol)]


def _bound_rows(p: xr.Dataset, where: str) -> list[Row]:
    """The training bound on every draw: a violation on any draw prints VIOLATED; else the draw with the least
    slack (bound / loss) is printed, so "loose xK" is the smallest slack over the draws."""
    limit = _seeds(p.theory_train_bound)
    radius = float(np.mean(p.reference_radius.values))
    rows = []
    for name, what, source in (("final_train_loss", "final train loss F_hat(w_T)",
                                f"F_hat(w*) + |w* - w_0|^2/(eta T), |w* - w_0| = log T/gamma = {radius:.3g}"),
                               ("average_train_loss", "average train loss (1/T) sum_t F_hat(w_t)",
                                "the same bound, the paper's average-iterate form")):
        train = _seeds(p[name])
        excess = train - limit
        i = int(np.argmax(excess)) if np.any(excess > 0) else int(np.argmin(limit / np.maximum(train, 1e-300)))
        vacuous = "; vacuous (> log 2)" if limit[i] > math.log(2) else ""
        label = where + (" (tightest seed)" if train.size > 1 else "")
        rows.append(bound(what, label, stats.exact(train[i]), limit[i], source + vacuous))
    return rows


def _deep_rows(p: xr.Dataset, where: str, cfg: dict) -> list[Row]:
    seeds = p.sizes.get("seed", 1)
    rows = _margin_rows(p, where) + _kernel_rows(p, where, cfg)
    last = p.isel(step=-1)
    if np.isfinite(last.stability_gap_replace.values).all():
        estimate = paired(last.generalization_gap, last.stability_gap_replace)
        rows.append(equal("generalization gap F - F_hat at T", where, estimate,
                          float(_seeds(last.stability_gap_replace).mean()),
                          f"replace-one identity E[l(A(S^i); z_i) - l(A(S); z_i)], paired over {seeds} draws",
                          meaningful=IDENTITY_MEANINGFUL))
        rows.append(shown("delete-one estimate at T", where, float(last.stability_gap_delete.mean()),
                          estimate.mean, "the paper's leave-one-out notion: equal to the gap only to O(1/n), "
                          "with no constant to test"))
        rows.append(shown("model stability mean_i |w_T(S) - w_T(S^i)|", where, float(last.stability_replace.mean()),
                          math.nan, "O(eta T / n) without a constant; its slope in n is tested over a samples sweep"))
    rows += _bound_rows(p, where)
    worst = where + (" (worst seed)" if seeds > 1 else "")
    rows.append(shown("F_hat(w*) at the reference point", worst, float(np.max(p.reference_train_loss.values)),
                      math.nan, "no closed form: small once m is large enough for the NTK linearization along u* "
                      "(the bound's width condition, whose constant is not given)"))
    rho_sq_over_n = float(np.mean(p.bound_stability.values))
    rows.append(shown("rho^2/(eta T) at rho = |w_T - w_0|", where, float(np.mean(p.bound_optimization.values)),
                      math.nan, "a term of the bound, no claim of its own"))
    rows.append(shown("gap n / rho^2 (the e^{O(L)} constant)", where,
                      float(last.generalization_gap.mean()) / rho_sq_over_n if rho_sq_over_n else math.nan, math.nan,
                      f"bounded in n and m, but the constant is not given; rho^2/n = {rho_sq_over_n:.3g}"))
    return rows


def large_step(cfg: dict, sel: dict) -> bool:
    """Whether a grid point runs at the paper's eta = m."""
    lr, per_width = float(sel.get("lr", cfg["lr"])), float(sel.get("lr_per_width", cfg.get("lr_per_width", 0.0)))
    return per_width == 1.0 or (per_width == 0.0 and (lr == 0.0 or lr == float(sel.get("width", cfg["width"]))))


def _fraction(reached: np.ndarray) -> Estimate:
    """The fraction of seeds for which `reached` holds, with its standard error across seeds."""
    return stats.across(np.asarray(reached, float))


def _xor_rows(p: xr.Dataset, where: str, cfg: dict, sel: dict) -> list[Row]:
    if not large_step(cfg, sel):
        return []
    dim, T = int(sel.get("dim", cfg["dim"])), int(cfg["steps"])
    K = math.ceil(math.log(dim))
    theorem = "the theorem: perfect test accuracy (w.h.p.)"
    steps = {a: _seeds(steps_to_accuracy(p.test_error, a)) for a in (1.0, 0.99)}
    seeds = steps[1.0].size
    rows = [bound(f"seeds at 100% test accuracy within T = {T} steps", where, _fraction(np.isfinite(steps[1.0])), 1.0,
                  f"{theorem}, on {cfg['test_samples']} fresh points", upper=False)]
    for a in (0.99, 1.0):
        s = steps[a]
        rows.append(bound(f"seeds at {a:.0%} test accuracy by step ceil(log d) = {K}", where, _fraction(s <= K), 1.0,
                          f"{theorem} after ceil(log d) steps; steps over all {seeds} seeds: median "
                          f"{np.median(s):g}, max {np.max(s):g} (never: inf)", upper=False))
    return rows


def _samples_rows(ds: xr.Dataset) -> list[Row]:
    # Per draw, the slope of log delta(n) on log n; across draws. Swapping one of n samples perturbs every step by
    # (1/n)(grad l(z'_i) - grad l(z_i)), which the linearized GD map carries to w_T: delta(n) = c/n (1 + a/n + ...)
    # with a of order one sample's weight, so the slope over the ladder is -1 up to |a|/n_min <= 1/n_min.
    last = ds.stability_replace.isel(step=-1)
    last = last.mean([d for d in last.dims if d not in ("samples", "seed")])
    n = ds.samples.values.astype(float)
    per_seed = last.transpose("samples", ...).values.reshape(n.size, -1)
    slopes = np.polyfit(np.log(n), np.log(per_seed), 1)[0]
    return [equal("slope of model stability against n", "samples ladder", stats.across(slopes), -1.0,
                  f"delta(n) ~ 1/n at fixed eta, T; per-draw slopes, |a|/n_min = {1 / n.min():.2g} allowed",
                  bias=1.0 / n.min())]


def _width_rows(ds: xr.Dataset) -> list[Row]:
    # Paired over seeds: every width sees the same data draws, so the difference cancels their variance.
    gap = ds.generalization_gap.isel(step=-1)
    base = gap.isel(width=0)
    m0 = int(ds.width.values[0])
    return [bound("generalization gap at T", f"width={m}", paired(gap.sel(width=m), base), float(_seeds(base).mean()),
                  f"the gap at width={m0}: does not grow with m (paired over {gap.sizes.get('seed', 1)} draws)")
            for m in ds.width.values[1:]]


def _xor_grid_rows(ds: xr.Dataset, cfg: dict) -> list[Row]:
    """Width x step grid: at each width, the test accuracy at step ceil(log d) (the theorem's count) at eta = m
    exceeds that at eta = lr_per_width m < m, paired over seeds (the same data draws and init at every step)."""
    if 1.0 not in ds.lr_per_width.values:
        return []
    K = math.ceil(math.log(int(cfg["dim"])))
    accuracy = 1 - ds.test_error.sel(step=K, method="nearest")
    rows = []
    for m in ds.width.values:
        at_m = accuracy.sel(width=m)
        for s in ds.lr_per_width.values[ds.lr_per_width.values < 1.0]:
            small = at_m.sel(lr_per_width=s)
            rows.append(exceeds(f"test accuracy at step ceil(log d) = {K}, eta = m", f"width={m}",
                                paired(at_m.sel(lr_per_width=1.0), small), float(_seeds(small).mean()),
                                f"its value at eta = {s:g} m: the step size decides (paired over "
                                f"{accuracy.sizes.get('seed', 1)} seeds)"))
    return rows


def _xor_ladder_rows(ds: xr.Dataset) -> list[Row]:
    d = np.log(ds.dim.values.astype(float))
    rows = []
    for a in (0.99, 1.0):
        steps = steps_to_accuracy(ds.test_error, a)
        per_seed = steps.mean([x for x in steps.dims if x not in ("dim", "seed")]).transpose("dim", ...).values
        per_seed = per_seed.reshape(d.size, -1)
        slope = float(np.mean(np.polyfit(d, per_seed, 1)[0])) if np.isfinite(per_seed).all() else math.inf
        rows.append(shown(f"steps to {a:.0%} per unit of log d", "dim ladder", slope, 1.0,
                          "ceil(log d) has slope 1, the mechanism 1/(2 log 2) = 0.72 (x2 per step against noise "
                          "~sqrt(d)): the claim, an upper bound on steps, fixes no slope"))
    return rows


def _ladder_rows(ds: xr.Dataset, grid: list[str], cfg: dict) -> list[Row]:
    rows = []
    if "samples" in grid and "stability_replace" in ds and ds.sizes["samples"] >= 3:
        rows += _samples_rows(ds)
    if "width" in grid and "generalization_gap" in ds and "seed" in ds.dims and cfg["task"] != "xor":
        rows += _width_rows(ds)
    if cfg["task"] == "xor" and "width" in grid and "lr_per_width" in grid:
        rows += _xor_grid_rows(ds, cfg)
    if cfg["task"] == "xor" and "dim" in grid and ds.sizes["dim"] >= 3:
        rows += _xor_ladder_rows(ds)
    return rows


def compare(ds: xr.Dataset) -> list[Row]:
    cfg = json.loads(ds.attrs["config"])
    grid = list(json.loads(ds.attrs.get("grid", "{}")))

    def point_rows(p, label, cfg, sel):
        where = label or "-"
        return _xor_rows(p, where, cfg, sel) if cfg["task"] == "xor" else _deep_rows(p, where, cfg)

    return per_point(ds, point_rows) + _ladder_rows(ds, grid, cfg)


def figure(ds: xr.Dataset):
    """The sim's figure (`figures.figure`)."""
    from sims.ntk_stability import figures
    return figures.figure(ds)
