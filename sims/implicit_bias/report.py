"""`implicit_bias` simulation beside theory: own-norm gap rates, cross-bias plateaus, and the paper's figures 1-2.

Every verdict row is an EXACT number tested against a stated range (`report.within` with `stats.exact`): the dynamics
are deterministic given the data (full batch from W_0 = 0; `sim.init` discards the key), so the seeds of a run
replicate it bit for bit and there is no sampling error to estimate. The theorems hold for every separable data set,
so nothing here is a statement over data draws (sweep `data_seed` to see other draws).

Rows per grid point, with T the last step and the "last decade" the records in [T/10, T]:
- own norm (the norm whose max margin the optimizer's direction tends to, theory note's table): the relative gap at T
  (shown: the theorems bound it only up to constants they do not state); the log-log slope of the gap over the last
  decade, in `own_slope_range`; for the Frobenius norm (unique SVM solution) the slope of 1 - cos(W, W*) in
  `correlation_slope_range`, for max and spectral norms the cosine shown (their maximizers are not unique).
- each other norm: the relative gap at T (shown: its limit depends on which maximizer is reached) and the slope of the
  gap over the last decade, in [-P, P] with P = `plateau_halfwidth` (the gap tends to a positive constant).
"""

from __future__ import annotations

import json
import math

import numpy as np
import xarray as xr

from dynamics import stats
from dynamics.report import Row, per_point, series, shown, within

__all__ = ["ASYMPTOTIC_GAP", "MIN_STEPS", "compare", "correlation_slope_range", "decade_slope", "figure", "own_norm",
           "own_slope_range", "plateau_halfwidth", "rate_kind"]

NORMS = ("max", "fro", "spectral")
# The norm whose max margin each optimizer's direction tends to (theory note's table); lp and schatten: p = 2 only.
OWN = {"gd": "fro", "ngd": "fro", "momentum_ngd": "fro", "signgd": "max", "signum": "max", "adam": "max",
       "spectral": "spectral", "muon": "spectral", "lp": None, "schatten": None}
# The cross-bias claim is about the limit direction: the other norms' gaps tend to positive constants once the
# direction has turned to the own norm's maximizer. A run whose own gap is still above this fraction of its gamma has
# not reached that regime (the direction is still turning; NGD at a = 3/4 is at 16% after 10^5 steps and every gap
# still falls at the same slope), so its plateau rows are shown without verdict. At the preset's horizon the own gaps
# are 0.09% (SignGD) to 6% (Adam) of gamma.
ASYMPTOTIC_GAP = 0.1
# Below this horizon the last decade starts before t = 10, where no asymptotic rate means anything (and the bounds'
# log allowance 1/ln(T/10) is undefined): the rate rows are shown without verdict.
MIN_STEPS = 100
SOURCE = "exact: one deterministic run (seeds identical)"


def own_norm(optimizer: str, p: float = 3.0) -> str | None:
    """The norm whose max margin the optimizer's direction tends to; entrywise or Schatten p-norm descent only has a
    reference at p = 2 (both are then the Frobenius norm)."""
    if optimizer in ("lp", "schatten"):
        return "fro" if p == 2 else None
    return OWN[optimizer]


def rate_kind(optimizer: str, decay: float, eps: float, T: int) -> tuple[str | None, str]:
    """("power", why) where the theorems give a power law in t, ("log", why) for a 1/log t law, (None, reason) where
    they state no rate for this setting or the horizon T is too short for one."""
    if T < MIN_STEPS:
        return None, f"T = {T} < {MIN_STEPS} steps: the rates are asymptotic"
    if optimizer == "gd":
        if decay >= 1:
            return None, "GD with a = 1 moves as log log t: no rate is stated"
        return "log", "Soudry et al.: W_t = w_svm log t + O(1), gap Theta(1/log t)"
    if decay <= 0:
        return None, "the theorems need eta_t -> 0 (0 < a <= 1); a constant step has no stated rate"
    if optimizer == "adam":
        if eps > 0:
            return None, ("Adam with eps > 0 turns to the Frobenius margin only once sqrt(v) < eps, at a time the "
                          "theory does not state: no rate to test")
        if decay != 0.5:
            return None, "Adam's t^-1/3 rate is stated for a = 1/2 only"
        return "power", "Adam (eps = 0): O((d log t + nd) t^-1/3), a heuristic upper bound"
    b = min(decay, 1 - decay)
    return "power", f"NSD, eta_t ~ t^-{decay:g}: gap O((log t + n) t^-{b:g}), with momentum O(d (log t + n) t^-{b:g})"


def _log_allowance(T: int) -> float:
    """The largest log-log slope the bounds' log factor adds over the decade [T/10, T]: for (ln t + c) with c >= 0,
    d ln(ln t + c)/d ln t = 1/(ln t + c) <= 1/ln(T/10) (the momentum and Adam bounds' d ln t + dn alike)."""
    return 1.0 / math.log(T / 10)


def _exponent(optimizer: str, decay: float) -> float:
    """b in the gap bound t^-b: min(a, 1 - a) for NSD (t^-a for a < 1/2, (log t + n)/sqrt t at 1/2, n/t^(1-a) above,
    n/log t at a = 1: b = 0); two thirds of that for Adam (t^-1/3 at a = 1/2)."""
    b = min(decay, 1.0 - decay)
    return 2 * b / 3 if optimizer == "adam" else b


def own_slope_range(optimizer: str, decay: float, eps: float, T: int) -> tuple[float, float] | None:
    """Range of the own-norm gap's log-log slope over [T/10, T] that the theory allows (None: no rate stated).

    power law, gap <= C (ln t + c) t^-b:
      high = min(0, -b + 1/ln(T/10)): the bound's own slope with its log factor (`_log_allowance`); the theory note
        records that measured slopes are at least as fast as the bound's. At a = 1 (b = 0) it is 0: the gap falls.
      low = -1: NSD moves W by eta_t in norm per step while |W_t| <= sum_s eta_s ~ t^(1-a)/(1-a), so the normalized
        iterate moves by about (1 - a)/t per step; its direction, and a gap linear in the direction, cannot settle
        faster than t^-1.
    1/log t law (GD), gap = C/(ln t + c) with c the bounded remainder: slope -1/(ln t + c) in
      [-2/ln(T/10), 0]: it falls, and no faster than a 1/log law whose offset is at least -ln(T/10)/2.
    """
    kind, _ = rate_kind(optimizer, decay, eps, T)
    if kind == "log":
        return -2.0 / math.log(T / 10), 0.0
    if kind == "power":
        return -1.0, min(0.0, -_exponent(optimizer, decay) + _log_allowance(T))
    return None


def correlation_slope_range(optimizer: str, decay: float, eps: float, T: int) -> tuple[float, float] | None:
    """Range of the log-log slope of 1 - cos(W_t, W_svm) over [T/10, T] (Frobenius norm: W_svm is unique).

    Strong convexity of the Frobenius ball: for unit W with margin gamma - e, the midpoint M = (W + W*)/2 has
    m(M) >= gamma - e/2 (m is concave) and |M|^2 = (1 + cos)/2, and m(M)/|M| <= gamma gives 1 - cos <= 2 e/gamma.
    So 1 - cos closes at least as fast as the gap's bound (same high); since 1 - cos ~ theta^2/2 it may fall up to
    twice as fast as the angle theta, whose slope is bounded below as the gap's (low doubled)."""
    gap = own_slope_range(optimizer, decay, eps, T)
    return None if gap is None else (2 * gap[0], gap[1])


def plateau_halfwidth(optimizer: str, decay: float, T: int) -> float:
    """P: an other-norm gap is on a plateau when its slope over [T/10, T] lies in [-P, P].

    It tends to a positive constant c (the other norm's gap of the own norm's limit direction): g = c + delta(t), with
    delta closing like the own gap, t^-b, has slope -b delta/(c + delta). We call it a plateau when delta < c, i.e.
    |slope| <= b/2: over a decade it changes by less than 10^(b/2) (1.8x at a = 1/2), where a gap closing at the
    theorems' rate falls by 10^b (3.2x). The bounds' log factor moves slopes by up to 1/ln(T/10) (`_log_allowance`),
    which is also the scale of every slope under a 1/log t law (GD, a = 1): P is at least that."""
    b = 0.0 if optimizer == "gd" else min(decay, 1.0 - decay)
    return max(b / 2, _log_allowance(T))


def decade_slope(gap: xr.DataArray) -> float:
    """Least-squares slope of log gap on log t over the records in [T/10, T] (an exact number: the run is
    deterministic); NaN with fewer than 3 records there or a gap <= 0."""
    steps = gap.step.values
    use = (steps >= steps[-1] / 10) & (steps > 0)
    values = gap.values[use]
    if use.sum() < 3 or not np.all(values > 0):
        return math.nan
    return float(np.polyfit(np.log(steps[use]), np.log(values), 1)[0])


def _param(ds: xr.Dataset, cfg: dict, name: str):
    return ds[name].values.item() if name in ds.coords else cfg[name]


def _within(quantity, label, value, span, why) -> Row:
    low, high = span
    return within(quantity, label, stats.exact(value), low, high, f"{SOURCE}; {why}")


def _own_rows(ds, label, optimizer, norm, kind_why, decay, eps, T) -> list[Row]:
    gap = series(ds[f"gap_{norm}"])
    gamma = float(np.ravel(ds[f"theory_margin_{norm}"].values)[0])
    decade = f"[{T // 10}, {T}]"
    rows = [shown(f"relative {norm}-norm gap at t={T}", label, float(gap.values[-1]) / gamma, 0.0,
                  f"-> 0 ({optimizer} tends to the {norm}-norm max margin, gamma = {gamma:.4g}); the theorems bound it "
                  "only up to constants they do not state: its rate is tested below")]
    span = own_slope_range(optimizer, decay, eps, T)
    slope = decade_slope(gap)
    name = f"slope of {norm}-norm gap over {decade}"
    rows.append(shown(name, label, slope, math.nan, kind_why) if span is None else
                _within(name, label, slope, span, kind_why))
    corr = series(ds[f"correlation_{norm}"])
    span = correlation_slope_range(optimizer, decay, eps, T)
    if norm == "fro" and span is not None:
        rows.append(_within(f"slope of 1 - cos(W, W_svm) over {decade}", label, decade_slope(1 - corr), span,
                            "1 - cos <= 2 gap/gamma_2 (strong convexity): closes at least as fast as the gap"))
    else:
        why = ("its maximizer is not unique: the cosine with one solver's maximizer need not -> 1 (it saturates "
               "near 0.95-0.98)") if norm != "fro" else kind_why
        rows.append(shown(f"correlation with {norm}-norm solution", label, float(corr.values[-1]), 1.0, why))
    return rows


def _other_rows(ds, label, optimizer, norm, own, own_gap, kind_why, decay, T) -> list[Row]:
    gap = series(ds[f"gap_{norm}"])
    gamma = float(np.ravel(ds[f"theory_margin_{norm}"].values)[0])
    rows = [shown(f"relative {norm}-norm gap at t={T}", label, float(gap.values[-1]) / gamma, math.nan,
                  f"cross-bias: a positive limit set by the {own or 'p'}-norm maximizer reached (no closed form)")]
    name = f"slope of {norm}-norm gap over [{T // 10}, {T}]"
    slope = decade_slope(gap)
    kind, why = kind_why
    if own is None or kind is None:
        return rows + [shown(name, label, slope, 0.0, why if kind is None else "no reference for this p-norm's "
                             "margin, so whether the run has reached its limit direction cannot be checked")]
    if not own_gap <= ASYMPTOTIC_GAP:
        return rows + [shown(name, label, slope, 0.0, f"the {own}-norm gap is still {100 * own_gap:.3g}% of gamma "
                             f"(> {100 * ASYMPTOTIC_GAP:g}%): the direction is still turning; run longer")]
    P = plateau_halfwidth(optimizer, decay, T)
    return rows + [_within(name, label, slope, (-P, P), f"plateau: changes < {10 ** P:.2g}x per decade "
                           f"(a gap closing at the theorems' rate falls faster)")]


def _point_rows(ds: xr.Dataset, label: str, cfg: dict) -> list[Row]:
    optimizer = str(_param(ds, cfg, "optimizer"))
    decay, eps, p = (float(_param(ds, cfg, k)) for k in ("lr_decay", "eps", "p"))
    own = own_norm(optimizer, p)
    T = int(ds.step.values[-1])
    kind_why = rate_kind(optimizer, decay, eps, T)
    rows, own_gap = [], math.nan
    if own is not None:
        own_gap = float(series(ds[f"gap_{own}"]).values[-1]) / float(np.ravel(ds[f"theory_margin_{own}"].values)[0])
        rows += _own_rows(ds, label, optimizer, own, kind_why[1], decay, eps, T)
    for norm in NORMS:
        if norm != own:
            rows += _other_rows(ds, label, optimizer, norm, own, own_gap, kind_why, decay, T)
    return rows


def compare(ds: xr.Dataset) -> list[Row]:
    return per_point(ds, lambda p, label, cfg, sel: _point_rows(p, label or "-", cfg))


def figure(ds: xr.Dataset):
    """The paper's figures 1 and 2 in one: margin gaps (top) and correlations (bottom) in the max, Frobenius and
    spectral norms against t, one line per grid point."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = list(json.loads(ds.attrs.get("grid", "{}")))
    flat = ds.stack(point=grid) if grid else ds.expand_dims(point=[0])
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), sharex=True)
    t = np.maximum(flat.step.values, 1)
    for i in range(flat.sizes["point"]):
        p = flat.isel(point=i)
        label = " ".join(f"{g}={p[g].values}" for g in grid) or p.attrs.get("sim", "")
        for j, norm in enumerate(NORMS):
            gap = series(p[f"gap_{norm}"]).values
            axes[0, j].loglog(t[1:], np.where(gap[1:] > 0, gap[1:], np.nan), label=label)
            corr = series(p[f"correlation_{norm}"])
            axes[1, j].semilogx(t[1:], corr.values[1:], label=label)
    for j, norm in enumerate(NORMS):
        axes[0, j].set(title=f"{norm}-norm margin gap", ylabel="gamma - m(W)/|W|")
        axes[1, j].set(title=f"correlation with the {norm}-norm solution", xlabel="iteration t", ylim=(0, 1.02))
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("implicit bias: each method closes the gap of its own norm (figures 1-2 of Fan et al.)")
    fig.tight_layout()
    return fig
