"""`ntk_stability` simulation beside theory: the NTK margin's two programs, the replace-one identity, the training
bound at w* = w_0 + (log T / gamma) u*, the bound's terms, model stability against n, the gap against width, and
XOR's steps to 100% test accuracy against ceil(log d).

Tolerances. The margin's programs are exact after their active-set polish, so they must agree to round-off:
1e-6 relative in float64 (the acceptance), 1e-3 in float32. The replace-one identity compares two estimates of
the same expectation from the same seeds: its tolerance is the 99.7% Student-t half-width of their paired
difference over seeds (`report.halfwidth`); with one seed there is none and the row is shown side by side.
"""

from __future__ import annotations

import json
import math

import numpy as np
import xarray as xr

from dynamics.report import Row, halfwidth, loglog_slope, per_point, points, series

__all__ = ["compare", "figure", "scaling_grid", "steps_to_accuracy", "margin_tolerance", "paired"]


def scaling_grid(config) -> dict:
    """The ladder of `--scaling`: n for the deep-net tasks (stability ~ 1/n), d for xor (steps ~ log d)."""
    if config.task == "xor":
        return {"dim": [16, 32, 64, 128, 256]}
    return {"samples": [50, 100, 200, 400]}


def margin_tolerance(gamma: float, dtype) -> float:
    return (1e-6 if np.dtype(dtype) == np.float64 else 1e-3) * max(abs(gamma), 1e-12)


def paired(a: xr.DataArray, b: xr.DataArray) -> tuple[float, float, float]:
    """Mean of a, mean of b and the 99.7% half-width of their paired difference over seeds (NaN with one seed)."""
    a, b = np.ravel(a.values), np.ravel(b.values)
    diff = a - b
    se = diff.std(ddof=1) / math.sqrt(diff.size) if diff.size > 1 else math.nan
    return float(a.mean()), float(b.mean()), halfwidth(se, diff.size - 1)


def steps_to_accuracy(test_error: xr.DataArray, accuracy: float = 1.0) -> xr.DataArray:
    """The first recorded step whose test accuracy is >= `accuracy` (NaN if none), per member."""
    reached = (1.0 - test_error) >= accuracy - 1e-12
    first = reached.argmax("step")
    return xr.where(reached.any("step"), test_error.step[first].drop_vars("step"), np.nan)


def _worst_pair(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(a, b) at the member where they differ most."""
    a, b = np.ravel(a), np.broadcast_to(np.ravel(b), np.ravel(a).shape)
    i = int(np.argmax(np.abs(a - b)))
    return float(a[i]), float(b[i])


def _deep_rows(p: xr.Dataset, where: str, cfg: dict) -> list[Row]:
    dtype = p.ntk_margin.dtype
    gamma = p.ntk_margin.values
    tol = margin_tolerance(float(np.min(gamma)), dtype)
    seeds = p.sizes.get("seed", 1)
    worst = " (worst seed)" if seeds > 1 else ""
    stalled = int(np.size(p.ntk_margin_converged.values) - np.sum(p.ntk_margin_converged.values))
    note = f"; NOT CONVERGED on {stalled} seed(s): raise --margin_iterations" if stalled else ""
    rows = [
        Row("NTK margin gamma: simplex QP", where + worst, *_worst_pair(gamma, p.ntk_margin_dual.values), "=", tol,
            "SVM dual 1/sqrt(1'alpha*)" + note),
        Row("min_i y_i <phi_i, u*>", where + worst, *_worst_pair(p.ntk_margin_attained.values, gamma), "=", tol,
            "gamma: u* attains it"),
    ]
    last = p.isel(step=-1)
    if np.isfinite(last.stability_gap_replace.values).all():
        gap, estimate, hw = paired(last.generalization_gap, last.stability_gap_replace)
        rows.append(Row("generalization gap F - F_hat at T", where, gap, estimate, "=" if seeds > 1 else "~", hw,
                        f"replace-one identity E[l(A(S^i); z_i) - l(A(S); z_i)] ({seeds} draws)"))
        rows.append(Row("delete-one estimate at T", where, float(last.stability_gap_delete.mean()), gap, "~", 0.0,
                        "the paper's leave-one-out notion; equal to the gap only to O(1/n)"))
        rows.append(Row("model stability mean_i |w_T(S) - w_T(S^i)|", where,
                        float(last.stability_replace.mean()), math.nan, "~", 0.0, "O(eta T / n)"))
    bound = np.ravel(p.theory_train_bound.values)
    radius = float(np.mean(p.reference_radius.values))
    for name, what, source in (("final_train_loss", "final train loss F_hat(w_T)",
                                f"F_hat(w*) + |w* - w_0|^2/(eta T), |w* - w_0| = log T/gamma = {radius:.3g}"),
                               ("average_train_loss", "average train loss (1/T) sum_t F_hat(w_t)",
                                "the same bound, the paper's average-iterate form")):
        train = np.ravel(p[name].values)
        worst = int(np.argmax(train - bound))
        vacuous = "; vacuous (> log 2)" if bound[worst] > math.log(2) else ""
        rows.append(Row(what, where + (" (worst seed)" if seeds > 1 else ""), float(train[worst]),
                        float(bound[worst]), "<=", 0.0, source + vacuous))
    rows.append(Row("F_hat(w*) at the reference point", where + (" (worst seed)" if seeds > 1 else ""),
                    float(np.max(p.reference_train_loss.values)), math.nan, "~", 0.0,
                    "small only once m is large enough for the NTK linearization along u* to hold"))
    rho_sq_over_n = float(np.mean(p.bound_stability.values))
    rows.append(Row("rho^2/(eta T) at rho = |w_T - w_0|", where, float(np.mean(p.bound_optimization.values)),
                    math.nan, "~", 0.0, "the bound's optimization term"))
    rows.append(Row("gap n / rho^2 (the e^{O(L)} constant)", where,
                    float(last.generalization_gap.mean()) / rho_sq_over_n if rho_sq_over_n else math.nan, math.nan,
                    "~", 0.0, f"bounded in n and m; rho^2/n = {rho_sq_over_n:.3g}"))
    return rows


def _xor_rows(p: xr.Dataset, where: str, cfg: dict, sel: dict) -> list[Row]:
    dim = int(sel.get("dim", cfg["dim"]))
    rows = []
    for accuracy in (1.0, 0.99):
        steps = steps_to_accuracy(p.test_error, accuracy).values
        reached = np.isfinite(steps)
        rows.append(Row(f"steps to {accuracy:.0%} test accuracy", where,
                        float(np.mean(steps[reached])) if reached.all() else math.inf if not reached.any()
                        else float(np.nanmean(steps)), math.ceil(math.log(dim)), "~", 0.0,
                        f"ceil(log d); reached by {int(reached.sum())} of {reached.size} seeds"))
    rows.append(Row("final test accuracy", where, float(1 - p.test_error.isel(step=-1).mean()), 1.0, "~", 0.0,
                    f"on {cfg['test_samples']} fresh points"))
    return rows


def _ladder_rows(ds: xr.Dataset, grid: list[str], cfg: dict) -> list[Row]:
    rows = []
    if "samples" in grid and "stability_replace" in ds and ds.sizes["samples"] >= 3:
        last = ds.stability_replace.isel(step=-1)
        means = last.mean([d for d in last.dims if d != "samples"]).values
        slope, se = loglog_slope(ds.samples.values, means)
        rows.append(Row("slope of model stability against n", "samples ladder", slope, -1.0, "=",
                        halfwidth(se, ds.sizes["samples"] - 2), "delta(n) ~ 1/n at fixed eta, T"))
    if "width" in grid and "generalization_gap" in ds and "seed" in ds.dims:
        # Paired over seeds: every width sees the same data draws, so the difference cancels their variance.
        gap = ds.generalization_gap.isel(step=-1)
        base = gap.isel(width=0)
        m0 = int(ds.width.values[0])
        for m in ds.width.values[1:]:
            g, g0, hw = paired(gap.sel(width=m), base)
            rows.append(Row("generalization gap at T", f"width={m}", g, g0, "<=", hw,
                            f"the gap at width={m0}: does not grow with m (paired over {gap.sizes['seed']} draws)"))
    if cfg["task"] == "xor" and "dim" in grid and ds.sizes["dim"] >= 3:
        steps = steps_to_accuracy(ds.test_error, 0.99)
        mean = steps.mean([d for d in steps.dims if d != "dim"]).values
        if np.isfinite(mean).all():
            slope, _ = np.polyfit(np.log(ds.dim.values), mean, 1)
            rows.append(Row("steps to 99% per unit of log d", "dim ladder", float(slope), 1.0, "~", 0.0,
                            "ceil(log d) has slope 1"))
    return rows


def compare(ds: xr.Dataset) -> list[Row]:
    cfg = json.loads(ds.attrs["config"])
    grid = list(json.loads(ds.attrs.get("grid", "{}")))

    def point_rows(p, label, cfg, sel):
        where = label or "-"
        return _xor_rows(p, where, cfg, sel) if cfg["task"] == "xor" else _deep_rows(p, where, cfg)

    return per_point(ds, point_rows) + _ladder_rows(ds, grid, cfg)


def _points(ds: xr.Dataset, grid: list[str]):
    """(label, the point's Dataset) for every grid point."""
    return ((label, ds.sel(sel)) for label, sel in points(ds, grid))


def _xor_figure(ds: xr.Dataset, grid: list[str], plt):
    fig, (ax_t, ax_d) = plt.subplots(1, 2, figsize=(11, 4))
    for label, p in _points(ds, grid):
        ax_t.plot(p.step, series(1 - p.test_error), label=label or "test accuracy")
    ax_t.axhline(1.0, color="gray", ls=":", lw=1)
    ax_t.set(xlabel="SGD step", ylabel="test accuracy (mean over seeds)", title="XOR, eta = m")
    ax_t.legend(fontsize=7)
    if "dim" in grid:
        d = ds.dim.values
        for accuracy, marker in ((1.0, "o"), (0.99, "s")):
            steps = steps_to_accuracy(ds.test_error, accuracy)
            ax_d.semilogx(d, steps.mean([x for x in steps.dims if x != "dim"]).values, marker, mfc="none",
                          label=f"steps to {accuracy:.0%} (mean over the seeds that reach it)")
        ax_d.semilogx(d, np.ceil(np.log(d)), "k--", label="ceil(log d)")
        ax_d.set(xlabel="d", ylabel="steps", title="steps to accuracy against d")
        ax_d.legend(fontsize=7)
    else:
        fig.delaxes(ax_d)
    fig.tight_layout()
    return fig


def figure(ds: xr.Dataset):
    """Deep nets: train and test loss, the gap beside its replace-one estimate, and ||w_t - w_0|| against steps;
    model stability against n (a samples sweep). XOR: test accuracy against steps and steps to 100% against d."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = json.loads(ds.attrs["config"])
    grid = list(json.loads(ds.attrs.get("grid", "{}")))
    if cfg["task"] == "xor":
        return _xor_figure(ds, grid, plt)
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    ax_loss, ax_gap, ax_dist, ax_stab = axes.ravel()
    for i, (label, p) in enumerate(_points(ds, grid)):
        c = f"C{i}"
        ax_loss.plot(p.step, series(p.train_loss), color=c, label=f"train {label}")
        ax_loss.plot(p.step, series(p.test_loss), color=c, ls="--", label=f"test {label}")
        ax_gap.plot(p.step, series(p.generalization_gap), color=c, label=f"gap {label}")
        estimate = series(p.stability_gap_replace)
        ax_gap.plot(p.step, estimate, color=c, ls=":", label=f"replace-one {label}")
        if p.sizes.get("seed", 1) > 1:  # where the gap's mean may lie if the identity holds: 2 paired SE
            diff = p.generalization_gap - p.stability_gap_replace
            diff = diff.mean([d for d in diff.dims if d not in ("step", "seed")])
            se = diff.std("seed", ddof=1) / math.sqrt(diff.sizes["seed"])
            ax_gap.fill_between(p.step, estimate - 2 * se, estimate + 2 * se, color=c, alpha=0.15, lw=0)
        ax_dist.plot(p.step, series(p.distance), color=c, label=label or "||w_t - w_0||")
        if "samples" not in grid:
            ax_stab.plot(p.step, series(p.stability_replace), color=c, label=label or "model stability")
    ax_loss.set(xlabel="step", ylabel="logistic loss", title="train (solid) and test (dashed) loss")
    ax_gap.set(xlabel="step", ylabel="F - F_hat",
               title="gap and its replace-one estimate (band: 2 paired SE)")
    ax_dist.set(xlabel="step", ylabel="||w_t - w_0||", title="distance from init")
    if "samples" in grid:
        last = ds.stability_replace.isel(step=-1)
        n = ds.samples.values
        delta = last.mean([d for d in last.dims if d != "samples"]).values
        ax_stab.loglog(n, delta, "o", label="mean_i ||w_T(S) - w_T(S^i)||")
        ax_stab.loglog(n, delta[0] * n[0] / n, "k--", label="1/n")
        ax_stab.set(xlabel="n", title="model stability against n")
    else:
        ax_stab.set(xlabel="step", title="model stability mean_i ||w_t(S) - w_t(S^i)||")
    for ax in axes.ravel():
        ax.legend(fontsize=7)
    fig.suptitle("deep smooth net on the logistic loss (Taheri, Thrampoulidis, Mazumdar 2025)")
    fig.tight_layout()
    return fig
