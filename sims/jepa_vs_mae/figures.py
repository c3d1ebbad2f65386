"""`jepa_vs_mae` figures: learning curves beside the ODE and the order ratio against depth, or the phase plane."""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from sims.jepa_vs_mae.report import crossing_times

__all__ = ["figure"]


def _points(ds: xr.Dataset):
    grid = list(json.loads(ds.attrs.get("grid", "{}")))
    flat = ds.stack(point=grid) if grid else ds.expand_dims(point=[0])
    cfg = json.loads(ds.attrs["config"])
    for i in range(flat.sizes["point"]):
        p = flat.isel(point=i)
        info = {k: (p[k].values.item() if k in grid else cfg[k]) for k in ("objective", "depth", "lr")}
        yield p, info, " ".join(f"{g}={p[g].values}" for g in grid)


def _gain(p):
    return p.encoder_gain.mean("seed").values if "seed" in p.encoder_gain.dims else p.encoder_gain.values


def _curves(ds, plt):
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    ratios = {}
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for j, (p, info, label) in enumerate(_points(ds)):
        t, star = p.time.values, p.theory_fixed_point.values
        w, wode = _gain(p), p.theory_encoder_gain.values
        c = colors[j % len(colors)]
        for i, ls in zip(range(min(2, w.shape[1])), ("-", "--")):
            axes[0].semilogx(t[1:], w[1:, i] / star[i], ls, color=c, label=f"{label} {'AB'[i]}" if i < 2 else None)
            axes[0].semilogx(t[1:], wode[1:, i] / star[i], ":", color="k", lw=0.8)
        if w.shape[1] >= 2:
            ts = crossing_times(t, w, star / 2)
            th = p.theory_critical_time.values
            ratios.setdefault(info["objective"], []).append((info["depth"], ts[0] / ts[1], th[0] / th[1]))
    axes[0].axhline(0.5, color="grey", lw=0.5)
    axes[0].set(xlabel="t = lr * step", ylabel="w_i / w_i*", title="encoder gains (solid A, dashed B; dotted: ODE)")
    axes[0].legend(fontsize=6, ncol=2)
    for obj, vals in ratios.items():
        vals = sorted(vals)
        L = [v[0] for v in vals]
        axes[1].plot(L, [v[1] for v in vals], "o", label=f"{obj}: GD")
        axes[1].plot(L, [v[2] for v in vals], "-", label=f"{obj}: ODE closed form")
    axes[1].axhline(1.0, color="grey", lw=0.5)
    axes[1].set(xlabel="depth L", ylabel="t_A / t_B", title="order of learning: > 1 means B (high rho) first")
    axes[1].legend(fontsize=7)
    return fig


def _phase(ds, plt):
    pts = list(_points(ds))
    objs = sorted({i["objective"] for _, i, _ in pts})
    depths = sorted({i["depth"] for _, i, _ in pts})
    fig, axes = plt.subplots(len(objs), len(depths), figsize=(3.2 * len(depths), 3.0 * len(objs)), squeeze=False)
    for p, info, label in pts:
        ax = axes[objs.index(info["objective"]), depths.index(info["depth"])]
        lam, rho = p.covariance.values, p.coefficient.values
        n = int(round(np.sqrt(lam.size - 1)))
        ts = crossing_times(p.time.values, _gain(p), p.theory_fixed_point.values / 2)
        th = p.theory_critical_time.values
        ls, rs = lam[1:].reshape(n, n)[:, 0], rho[1:].reshape(n, n)[0]
        sim = np.log(ts[1:] / ts[0]).reshape(n, n).T
        ax.pcolormesh(ls, rs, sim, cmap="RdBu_r", vmin=-1, vmax=1, shading="nearest")
        ax.contour(ls, rs, np.log(th[1:] / th[0]).reshape(n, n).T, levels=[0.0], colors="k")
        ax.plot(lam[0], rho[0], "k*", ms=10)
        ax.set(title=f"{info['objective']} L={info['depth']}", xlabel="lambda", ylabel="rho")
    fig.suptitle("log(t / t_ref) over the (lambda, rho) plane (blue: learned before the reference *; "
                 "black: ODE's t = t_ref)", fontsize=9)
    return fig


def figure(ds: xr.Dataset):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = _phase(ds, plt) if json.loads(ds.attrs["config"])["grid"] else _curves(ds, plt)
    fig.tight_layout()
    return fig
