"""`ntk_stability` figures: deep nets (losses, the gap beside its replace-one estimate, distance from init, model
stability) and xor (test accuracy against steps; steps to accuracy against d; the width x step grid)."""

from __future__ import annotations

import json
import math

import numpy as np
import xarray as xr

from dynamics.report import points, series
from sims.ntk_stability.report import steps_to_accuracy

__all__ = ["figure"]


def _points(ds: xr.Dataset, grid: list[str]):
    """(label, the point's Dataset) for every grid point."""
    return ((label, ds.sel(sel)) for label, sel in points(ds, grid))


def _median_steps(ds: xr.Dataset, accuracy: float) -> np.ndarray:
    """Median over all seeds of the steps to `accuracy`, per d (inf where more than half never get there)."""
    steps = steps_to_accuracy(ds.test_error, accuracy)
    return steps.median([x for x in steps.dims if x != "dim"]).values


def _xor_figure(ds: xr.Dataset, grid: list[str], cfg: dict, plt):
    fig, (ax_t, ax_d) = plt.subplots(1, 2, figsize=(12, 4))
    for label, p in _points(ds, grid):
        ax_t.plot(p.step, series(1 - p.test_error), label=label or "test accuracy")
    ax_t.axhline(1.0, color="gray", ls=":", lw=1)
    ax_t.set(xlabel="SGD step", ylabel="test accuracy (mean over seeds)", title="XOR")
    ax_t.legend(fontsize=7)
    if "dim" in grid:
        d = ds.dim.values
        for accuracy, marker in ((1.0, "o"), (0.99, "s")):
            median = _median_steps(ds, accuracy)
            ax_d.semilogx(d, np.where(np.isfinite(median), median, np.nan), marker, mfc="none",
                          label=f"steps to {accuracy:.0%} (median over all seeds)")
        dense = np.geomspace(d.min(), d.max(), 400)
        ax_d.semilogx(dense, np.ceil(np.log(dense)), "k--", lw=1, label="ceil(log d)")
        ax_d.set(xlabel="d", ylabel="steps", title="steps to accuracy against d")
        ax_d.legend(fontsize=7)
    elif "width" in grid and "lr_per_width" in grid:
        K = math.ceil(math.log(int(cfg["dim"])))
        for step, ls in ((K, "-"), (int(ds.step.values[-1]), ":")):
            accuracy = 1 - ds.test_error.sel(step=step, method="nearest")
            for i, m in enumerate(ds.width.values):
                at_m = accuracy.sel(width=m)
                mean = at_m.mean([x for x in at_m.dims if x != "lr_per_width"])
                ax_d.semilogx(ds.lr_per_width.values, mean.values, "o" + ls, color=f"C{i}",
                              label=f"m = {m}, step {step}")
        ax_d.set(xlabel="eta / m", ylabel="test accuracy (mean over seeds)",
                 title=f"width x step: at step {K} = ceil(log d) (solid), at the end (dotted)")
        ax_d.legend(fontsize=7)
    else:
        fig.delaxes(ax_d)
    fig.tight_layout()
    return fig


def figure(ds: xr.Dataset):
    """Deep nets: train and test loss, the gap beside its replace-one estimate, and ||w_t - w_0|| against steps;
    model stability against n (a samples sweep). XOR: test accuracy against steps, and steps to accuracy against d
    or final accuracy over the width x step grid."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = json.loads(ds.attrs["config"])
    grid = list(json.loads(ds.attrs.get("grid", "{}")))
    if cfg["task"] == "xor":
        return _xor_figure(ds, grid, cfg, plt)
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
