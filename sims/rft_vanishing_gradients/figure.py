"""Figures of `rft_vanishing_gradients`: passage times against p0 beside the closed forms (tabular, one input), the
fraction of inputs still below the level against time (many inputs), and passage time against initial reward for
coupled policies (one panel per swept value)."""

from __future__ import annotations

import json

import numpy as np

from sims.rft_vanishing_gradients import report, theory

__all__ = ["draw"]


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _flow(ds, cfg, plt):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    eta = float(ds.lr.min()) if "lr" in ds.dims else cfg["lr"]
    base = ds.sel(lr=eta) if "lr" in ds.dims else ds
    Ks = ds.outputs.values if "outputs" in ds.dims else [cfg["outputs"]]
    qs = ds.q.values if "q" in ds.dims else [cfg["q"]]
    grid = np.geomspace(float(ds.p0.min()) / 2, min(0.4, float(ds.p0.max()) * 2), 60)
    for K in Ks:
        for q in qs:
            sel = {**({"outputs": K} if "outputs" in ds.dims else {}), **({"q": q} if "q" in ds.dims else {})}
            p = base.sel(sel)
            qq = report.q_of(cfg["method"], float(q))
            t = p.hit_time.isel(seed=0, input=0).values
            line = axes[0].loglog(grid, [theory.time_q(int(K), g, cfg["level"], qq) for g in grid], lw=1,
                                  label=f"K={K}, q={q:g}")
            axes[0].loglog(p.p0.values, np.where(t > 0, t, np.nan), "o", color=line[0].get_color(), ms=4)
    axes[0].set(xlabel="initial p0 = p(y*|x)", ylabel="time to V = level",
                title=f"passage time: GD (dots, eta={eta:g}) and the flow's closed form")
    axes[0].legend(fontsize=6, ncol=2)
    if "lr" in ds.dims and ds.sizes["lr"] > 1:
        for K in Ks:
            sel = {**({"outputs": K} if "outputs" in ds.dims else {}), **({"q": qs[0]} if "q" in ds.dims else {})}
            for p0 in ds.p0.values:
                p = ds.sel(sel).sel(p0=p0)
                th = theory.time_q(int(K), float(p0), cfg["level"], report.q_of(cfg["method"], float(qs[0])))
                gap = np.abs(p.hit_time.isel(seed=0, input=0).values - th)
                axes[1].loglog(ds.lr.values, gap, "o-", ms=3, label=f"K={K} p0={p0:g}")
        axes[1].set(xlabel="eta", ylabel="|T_GD - T_flow|", title=f"the GD-flow gap is O(eta) (q={qs[0]:g})")
        axes[1].legend(fontsize=5, ncol=2)
    return fig


def _inputs(ds, cfg, plt):
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    eta = cfg["lr"]
    p0s = theory.input_p0(cfg["p0"], cfg["p0_min"], cfg["inputs"])
    t = np.maximum(ds.step.values * eta, eta)
    for q in (ds.q.values if "q" in ds.dims else [cfg["q"]]):
        p = ds.sel(q=q) if "q" in ds.dims else ds
        qq = report.q_of(cfg["method"], float(q))
        line = ax.semilogx(t, p.fraction_below.isel(seed=0).values, lw=2, label=f"simulated, q={q:g}")
        th = np.array([theory.time_q(cfg["outputs"], a, cfg["level"], qq) for a in p0s])
        ax.semilogx(t, [np.mean(th > s) for s in t], "--", lw=1, color=line[0].get_color(), alpha=0.7,
                    label=f"closed form per input, q={q:g}")
    ax.set(xlabel="time eta * step", ylabel=f"fraction of inputs with V < {cfg['level']:g}",
           title=f"{cfg['inputs']} inputs, p0 from {cfg['p0']:g} to {cfg['p0_min']:g} (q=0: RFT, q=1: SFT)")
    ax.legend(fontsize=7)
    return fig


def _coupled(ds, cfg, plt):
    grid = list(json.loads(ds.attrs.get("grid", "{}")))
    flat = ds.stack(point=grid) if grid else ds.expand_dims(point=[0])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    T_end = cfg["lr"] * cfg["steps"]
    for i in range(flat.sizes["point"]):
        p = flat.isel(point=i)
        label = " ".join(f"{g}={p[g].values}" for g in grid) or cfg["method"]
        s0 = np.sqrt(np.clip(p.initial_reward.values * (1 - p.initial_reward.values), 0, None)).ravel()
        h = p.hit_time.values.ravel()
        axes[0].loglog(s0, np.where(h < 0, T_end, h), ".", ms=3, alpha=0.6, label=label)
        axes[1].semilogx(np.maximum(ds.step.values * cfg["lr"], cfg["lr"]), p.fraction_below.mean("seed").values,
                         label=label)
    axes[0].axhline(T_end, color="k", lw=0.5, ls=":")
    axes[0].set(xlabel="initial reward std", ylabel="time to level (run's end if never)",
                title=f"{cfg['policy']} policy, {cfg['features']} inputs: slow inputs start with small std")
    axes[1].set(xlabel="time eta * step", ylabel="fraction of inputs below the level", title="mean over seeds")
    axes[0].legend(fontsize=7)
    return fig


def draw(ds):
    plt = _plt()
    cfg = json.loads(ds.attrs["config"])
    if report.closed_form(cfg) and cfg["inputs"] == 1 and "p0" in ds.dims:
        fig = _flow(ds, cfg, plt)
    elif report.closed_form(cfg) and cfg["inputs"] > 1:
        fig = _inputs(ds, cfg, plt)
    else:
        fig = _coupled(ds, cfg, plt)
    fig.tight_layout()
    return fig
