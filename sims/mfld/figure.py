"""`mfld` figures: the training loss against time beside its theory, and the error against N (or the dual bound);
the paper's Figure 1 for a PoC sweep; the thermodynamic-integration integrand and N Delta_N for a free-energy sweep."""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from dynamics import stats
from dynamics.report import series, stationary
from sims.mfld import report

__all__ = ["figure"]


def _scalar(da: xr.DataArray) -> float:
    return float(np.asarray(da).ravel()[0]) if da.size else np.nan


def figure(ds: xr.Dataset):
    """Left: training loss against step with its theory value. Right (when N is swept): stationary error
    against N with the theory lines; else the dual bound against L(mu*)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = list(json.loads(ds.attrs.get("grid", "{}")))
    fig, (ax_t, ax_n) = plt.subplots(1, 2, figsize=(11, 4))
    if report.poc_errors(ds) is not None:
        return _poc_figure(fig, ax_t, ax_n, ds)
    if report.free_energy_gap(ds) is not None:
        return _free_energy_figure(fig, ax_t, ax_n, ds)
    flat = ds.stack(point=grid) if grid else ds.expand_dims(point=[0])
    for i in range(flat.sizes["point"]):
        p = flat.isel(point=i)
        label = " ".join(f"{g}={p[g].values}" for g in grid)
        loss = series(p.loss)
        line, = ax_t.plot(p.step, loss.where(np.isfinite(loss)), label=label or "loss")  # a diverged run: gaps
        theory = _scalar(p.theory_loss) if np.isfinite(_scalar(p.theory_loss)) else _scalar(p.theory_optimum_loss)
        if np.isfinite(theory):
            ax_t.axhline(theory, color=line.get_color(), ls="--", lw=0.8)
    finite = flat.loss.values[np.isfinite(flat.loss.values)].astype(float)
    # A log axis spanning past ~1e100 (a diverging run) overflows matplotlib's tick arithmetic.
    log = finite.size and finite.min() > 0 and finite.max() / finite.min() < 1e100
    ax_t.set(xlabel="step", ylabel="training loss F0 (dashed: E F0 exact, or F0(mu*))",
             yscale="log" if log else "linear")
    ax_t.legend(fontsize=7)
    if "particles" in grid and ds.sizes["particles"] >= 2:
        _error_against_n(ax_n, ds)
    elif np.isfinite(_scalar(ds.theory_dual)):
        d = flat.dual.isel(point=0)
        ax_n.plot(flat.step, series(d), label="dual D(g_rho)")
        ax_n.axhline(_scalar(flat.theory_dual.isel(point=0)), color="k", ls="--", label="L(mu*)")
        ax_n.set(xlabel="step", ylabel="free energy")
        ax_n.legend(fontsize=7)
    else:
        ax_n.axis("off")
    cfg = json.loads(ds.attrs["config"])
    fig.suptitle(f"mfld: {cfg['model']} neuron, {cfg['dataset']} data")
    fig.tight_layout()
    return fig


def _error_against_n(ax, ds: xr.Dataset) -> None:
    """Stationary errors against N with 3-standard-error bars, the exact values (dashed) and the bound 2B/N."""
    n = ds.particles.values
    for name in ("model_error", "ensemble_variance"):
        if np.all(np.isnan(ds[name].values)):
            continue
        est = [stationary(ds[name].sel(particles=k)) for k in n]
        y = np.array([e.mean for e in est])
        ax.errorbar(n, y, yerr=[3 * e.se if np.isfinite(e.se) else 0 for e in est], fmt="o-",
                    label=f"{name} (simulated)")
        theory = f"theory_{name}"
        if theory in ds and np.isfinite(ds[theory]).any():
            ax.plot(n, [_scalar(ds[theory].sel(particles=k)) for k in n], "k--", label=f"{name} (exact)")
        ax.plot(n, y[-1] * n[-1] / n, ":", color="gray", label="1/N")
    if np.isfinite(ds.bound_model_error).any():
        ax.plot(n, [_scalar(ds.bound_model_error.sel(particles=k)) for k in n], "r-", lw=0.8,
                label="bound 2B/N (Theorem 1)")
    ax.set(xscale="log", yscale="log", xlabel="particles N", ylabel="stationary error")
    ax.legend(fontsize=7)


def _poc_figure(fig, ax_map, ax_n, ds):
    """The paper's Figure 1: log10 sup-norm error against N and M (seed 0, against one reference system as in the
    paper), and the mean squared error against N (mean over seeds, against the reference systems' mean, its own
    variance subtracted: `report.poc_errors`)."""
    n, err, single = report.poc_errors(ds)
    pred = ds.test_prediction
    pred = pred.isel({d: 0 for d in pred.dims if d not in ("particles", "seed", "system", "test_sample")})
    pred = pred.isel(seed=0)
    reference = pred.sel(particles=ds.particles.max()).isel(system=0)
    ens = pred.sel(particles=n).cumsum("system") / (pred.system + 1)
    sup = np.log10(np.abs(ens - reference).max("test_sample")).transpose("particles", "system")
    m = np.arange(1, ens.sizes["system"] + 1)
    image = ax_map.pcolormesh(m, n, sup.values, shading="nearest", cmap="viridis")
    fig.colorbar(image, ax=ax_map, label="log10 sup |f_ens - f_inf| (seed 0)")
    ax_map.set(xlabel="ensemble size M", ylabel="particles N")
    for size in sorted({1, min(5, m[-1]), m[-1]}):
        per_seed = single.mean(axis=1) if size == 1 else err[:, :, size - 1]  # M = 1: every system on its own
        est = [stats.across(per_seed[:, k]) for k in range(n.size)]
        ax_n.errorbar(n, [e.mean for e in est], yerr=[3 * e.se if np.isfinite(e.se) else 0 for e in est],
                      fmt="o-", label=f"M={size}")
    first = single[:, :, 0].mean()  # M = 1, smallest N
    ax_n.plot(n, first * n[0] / n, "k:", label="1/N")
    ax_n.set(xscale="log", yscale="log", xlabel="particles N",
             ylabel="E |f_ens - f_inf|^2 (reference variance removed)")
    ax_n.legend(fontsize=7)
    cfg = json.loads(ds.attrs["config"])
    fig.suptitle(f"mfld propagation of chaos: {cfg['dataset']}, reference N_inf = {int(ds.particles.max())}, "
                 f"{err.shape[0]} seed(s)")
    fig.tight_layout()
    return fig


def _free_energy_figure(fig, ax_s, ax_n, ds):
    """Left: the thermodynamic-integration integrand N E_s B_F0(rho, mu*) against s. Right: N Delta_N against N with
    3 standard errors across seeds and Theorem 1's constant B."""
    gap = report.free_energy_gap(ds)
    tail = ds.bregman.isel(step=slice(ds.sizes["step"] // 2, None)).mean(["step", "seed"])
    n = ds.particles.values if "particles" in ds.dims else np.array([json.loads(ds.attrs["config"])["particles"]])
    for k in n:
        curve = tail.sel(particles=k) if "particles" in tail.dims else tail
        ax_s.plot(ds.interpolation, k * curve.squeeze(), "o-", label=f"N={k}")
    ax_s.set(xlabel="interpolation s", ylabel="N E_s B_F0(rho, mu*)")
    ax_s.legend(fontsize=7)
    est = [stats.across(gap.sel(particles=k).values if "particles" in gap.dims else gap.values) for k in n]
    ax_n.errorbar(n, [k * e.mean for k, e in zip(n, est)],
                  yerr=[3 * k * e.se if np.isfinite(e.se) else 0 for k, e in zip(n, est)], fmt="o-",
                  label="N Delta_N (thermodynamic integration)")
    bound = _scalar(ds.bound_model_error) / 2 * n[0]
    if np.isfinite(bound):
        ax_n.axhline(bound, color="r", lw=0.8, label="B = L_l R^2 / 2 (Theorem 1)")
    ax_n.set(xscale="log", yscale="log", xlabel="particles N", ylabel="N Delta_N")
    ax_n.legend(fontsize=7)
    fig.suptitle("mfld free-energy gap: N Delta_N against Theorem 1's B")
    fig.tight_layout()
    return fig
