"""`neural_collapse` simulation beside theory: the final loss against the relaxation's optimum and the closed forms,
the collapse metrics against those of the optimum, the STEP cosines, and the figures.

What a row claims. Riemannian GD is deterministic given its initial features, so a seed is one random
initialization (uniform on the sphere), not a noisy replicate: theory says EVERY initialization ends at the
relaxation's optimum G* once d >= rank G* (all local minima global, G* unique up to rotation). Each row therefore
checks every seed alone at round-off and prints the worst one ("worst of K seeds"). K seeds that all pass say
nothing about an average; they catch a share p of initializations that would miss with probability 1 - (1 - p)^K,
i.e. with 80% probability once p >= 1 - 0.2^(1/K) (`missed_share`: 33% at K = 4, 9.6% at K = 16), printed in the
loss row's source. Below the optimum's rank (d < rank G*) G* is out of reach: every seed must end strictly above
L*, and where it ends (which spurious minimum) is not predicted, so that spread is shown without a verdict.

Tolerances (exact rows: `stats.exact` and a derived round-off tolerance, so `detects` is tolerance / scale).
The loss is a sum of N log-sum-exps of N terms each, so round-off alone moves it by about N eps |L*|;
`loss_tolerance` allows 10 N eps max(1, |L*|). The loss is quadratic at its minimum, so a loss within tol of L*
locates the geometry (Gram entries, cosines, NC metrics) only to about sqrt(2 tol / c), c the smallest curvature
(known for STEP from its reduced program; c = 1 elsewhere): `geometry_tolerance`. A run that has not converged in
its steps fails these rows, which is what they are for.

Scales of relative errors (the `detects` column). The loss: |L*|. The geometry: 1, in cosine units, for every
metric and distance, since several have theory value 0: cosines and the ETF-angle deviation are cosines; equinorm is
a relative spread of norms; equiangularity a spread of cosines; NC1 = 1 is within-class spread as large as the
between-class spread (5.5 at the balanced preset's random start); the class-mean Gram distance compares two
unit-Frobenius Grams (the ETF is 0.52 from the orthogonal frame at k = 4); |H'H - G*|_F / N is an RMS cosine error.
Ranks are integers compared exactly.

Grid points. A sweep pads `sample`, `feature` and `class` to its largest point (NaN beyond), so every point's N,
d and class sizes are read from its own labels and `dim` (`point_shape`), never from the padded sizes.
"""

from __future__ import annotations

import json
import math

import numpy as np
import xarray as xr

from dynamics import stats
from dynamics.report import Row, equal, exceeds, per_point, series, shown
from sims.neural_collapse import theory

__all__ = ["compare", "figure", "geometry_tolerance", "loss_tolerance", "missed_share", "point_shape", "scaling_grid"]

METRICS = ("nc1", "equinorm", "equiangularity", "max_angle")
COSINES = (("alpha", "majority-majority"), ("beta", "minority-minority"), ("gamma", "across"))
GEOMETRY_SCALE = 1.0  # cosine units (module docstring)
POWER = 0.8  # the probability with which K seeds catch a share `missed_share(K)` of bad initializations


def scaling_grid(config) -> dict:
    """No ladder: one run shows its convergence against steps."""
    return {}


def loss_tolerance(N: int, loss: float, dtype) -> float:
    return 10.0 * N * float(np.finfo(dtype).eps) * max(1.0, abs(loss))


def geometry_tolerance(N: int, loss: float, dtype, curvature: float = math.nan) -> float:
    """sqrt(2 tol / c): c the loss's smallest curvature at the optimum where known (STEP), else 1."""
    c = curvature if math.isfinite(curvature) and curvature > 0 else 1.0
    return math.sqrt(2 * loss_tolerance(N, loss, dtype) / c)


def missed_share(seeds: int) -> float:
    """The smallest share p of initializations not reaching the optimum that `seeds` independent seeds catch with
    probability POWER: 1 - (1 - p)^K = POWER, p = 1 - (1 - POWER)^(1/K)."""
    return 1.0 - (1.0 - POWER) ** (1.0 / seeds)


def _value(p: xr.Dataset, cfg: dict, name: str):
    """A config value at this grid point: its coordinate when swept, else the base config's."""
    return p[name].values.item() if name in p.coords else cfg[name]


def point_shape(p: xr.Dataset, cfg: dict) -> tuple[int, int, tuple[int, ...]]:
    """(N, d, class sizes n_c) of one grid point, from its own labels (NaN-padded in a sweep over shapes) and its
    `dim` (the `feature` axis is padded to the largest d)."""
    labels = np.asarray(p.labels.values, float)
    labels = labels[np.isfinite(labels)].astype(int)
    return labels.size, int(_value(p, cfg, "dim")), tuple(int(n) for n in np.bincount(labels))


def _worst(values: np.ndarray, theory_value: float) -> float:
    """The seed farthest from theory (NaN if any seed is NaN): a claim about every seed is its worst seed's."""
    v = np.asarray(values, float).ravel()
    return float(v[int(np.argmax(np.abs(v - theory_value)))]) if v.size else math.nan


def _exact(quantity, where, value, theory_value, tolerance, source, scale=math.nan) -> Row:
    """An exact comparison: `value` has no sampling noise, `tolerance` is its derived round-off."""
    return equal(quantity, where, stats.exact(value), theory_value, source, scale=scale, bias=tolerance)


def _solver_rows(p: xr.Dataset, at: str, N: int, sizes: tuple[int, ...], nonnegative: bool, tol: float) -> list:
    """The relaxation's optimum against the closed forms and its own certificate (seedless)."""
    rows = []
    L_star, closed, rank_star = float(p.theory_loss), float(p.theory_loss_closed_form), int(p.theory_rank)
    if math.isfinite(closed):
        rows.append(_exact("relaxation optimum L*", at, L_star, closed, tol,
                           "L-BFGS on the Burer-Monteiro factor vs closed form"))
        # Balanced, STEP and nonnegative optima all have a closed-form rank: k - 1 signed (the paper), k nonnegative.
        k = len(sizes)
        rows.append(_exact("rank of G*", at, rank_star, k if nonnegative else k - 1, 0.0,
                           "orthogonal frame: k" if nonnegative else "ETF / STEP optimum: k - 1 (the paper)"))
    factor = theory.factor_rank(N, len(sizes))
    rows.append(exceeds("rank of G* (certificate)", at, stats.exact(rank_star), factor,
                        f"< the factor's rank {factor} (N = {N}): a global optimum (gradient "
                        f"{float(p.theory_solver_residual):.0e})", below=True))
    return rows


def _tight_rows(p: xr.Dataset, where: str, d: int, seeds: int, tol: float, geo: float) -> list:
    """d >= rank G*: every seed's loss is L* and its geometry G*'s, at round-off."""
    L_star, rank_star = float(p.theory_loss), int(p.theory_rank)
    last = p.isel(step=-1)
    rows = [_exact("final loss L", where, _worst(last.loss.values, L_star), L_star, tol,
                   f"d = {d} >= rank G* = {rank_star}: tight, every init ends at L* ({_power(seeds)})")]
    for m in METRICS:
        theory_value = float(p[f"theory_{m}"])
        rows.append(_exact(m, where, _worst(last[m].values, theory_value), theory_value, geo,
                           "the same metric of G*", GEOMETRY_SCALE))
    rows.append(_exact("rank of the features", where, _worst(last["rank"].values, rank_star), rank_star, 0.0,
                       "rank G*"))
    rows.append(_exact("class-mean Gram distance", where, _worst(last.gram_distance.values, 0.0), 0.0, geo,
                       "to the predicted geometry (ETF, orthogonal frame, STEP program or G*)", GEOMETRY_SCALE))
    rows.append(_exact("full Gram distance |H'H - G*|/N", where, _worst(last.full_gram_distance.values, 0.0), 0.0,
                       geo, "unique up to rotation", GEOMETRY_SCALE))
    return rows


def _loose_rows(p: xr.Dataset, label: str, d: int, seeds: int, tol: float) -> list:
    """d < rank G*: G* (unique, of rank > d) is out of reach, so every seed ends strictly above L*: the best seed
    must, at more than round-off (a legacy exact Row: `exceeds` takes its tolerance from noise alone)."""
    L_star, rank_star = float(p.theory_loss), int(p.theory_rank)
    loss = p.loss.isel(step=-1).values.ravel()
    where = " ".join(filter(None, [label, f"best of {seeds} seeds" if seeds > 1 else ""])) or "-"
    rows = [Row("final loss L", where, float(loss.min()), L_star, ">", tol,
                f"d = {d} < rank G* = {rank_star}: not tight, G* unique and out of reach, so L > L* for every "
                f"init")]
    if seeds > 1:
        rows.append(shown("spread of final loss over seeds", " ".join(filter(None, [label, f"{seeds} seeds"])),
                          float(np.ptp(loss)), 0.0,
                          "d < rank G*: which spurious minimum a seed finds is not predicted"))
    return rows


def _cosine_rows(p: xr.Dataset, where: str, tight: bool, geo: float, balanced: bool) -> list:
    """STEP's block cosines (balanced: all three are the ETF's -1/(k - 1))."""
    source = "the ETF: -1/(k - 1)" if balanced else "STEP's reduced 3-variable program"
    rows = []
    for c, meaning in COSINES:
        theory_value = float(p[f"theory_{c}"])
        if not math.isfinite(theory_value):
            continue
        sim = p[c].values
        name = f"{c} ({meaning} cosine)"
        if tight:
            rows.append(_exact(name, where, _worst(sim, theory_value), theory_value, geo,
                               source, GEOMETRY_SCALE))
        else:
            rows.append(shown(name, where, _worst(sim, theory_value), theory_value,
                              "d < rank G*: G*'s cosines are out of reach, those of rank-d minima not predicted"))
    return rows


def _power(seeds: int) -> str:
    """What K seeds that all pass can see, for the source column."""
    seeds_catch = f"{seeds} seeds catch" if seeds > 1 else "1 seed catches"
    return f"{seeds_catch} a {100 * missed_share(seeds):.2g}% share of inits that miss, w.p. {POWER:g}"


def _point_rows(p: xr.Dataset, label: str, cfg: dict) -> list[Row]:
    N, d, sizes = point_shape(p, cfg)
    L_star = float(p.theory_loss)
    dtype = p.features.dtype
    tol = loss_tolerance(N, L_star, dtype)
    geo = geometry_tolerance(N, L_star, dtype, float(p.theory_curvature))
    seeds = p.sizes.get("seed", 1)
    who = f"worst of {seeds} seeds" if seeds > 1 else f"seed {p.seed.values.ravel()[0]}" if "seed" in p.coords else ""
    at = label or "-"
    where = " ".join(filter(None, [label, who])) or "-"
    tight = d >= int(p.theory_rank)
    rows = _solver_rows(p, at, N, sizes, bool(_value(p, cfg, "nonnegative")), tol)
    rows += _tight_rows(p, where, d, seeds, tol, geo) if tight else _loose_rows(p, label, d, seeds, tol)
    return rows + _cosine_rows(p, where, tight, geo, len(set(sizes)) == 1)


def compare(ds: xr.Dataset) -> list[Row]:
    return per_point(ds, lambda p, label, cfg, sel: _point_rows(p, label, cfg))


def _first_seed(da: xr.DataArray) -> np.ndarray:
    return (da.isel(seed=0) if "seed" in da.dims else da).values


def _geometry_panels(p: xr.Dataset, cfg: dict, fig, spec) -> None:
    """Features and class means on their top three principal directions; simulated against predicted cosines.
    Cut to the point's own N, d and k (a sweep pads them with NaN)."""
    N, d, sizes = point_shape(p, cfg)
    k = len(sizes)
    H = _first_seed(p.features)[:d, :N]
    labels = np.asarray(p.labels.values[:N]).astype(int)
    U = np.linalg.svd(H, full_matrices=False)[0]
    X = np.zeros((3, H.shape[1]))
    X[:min(3, U.shape[1])] = U[:, :3].T @ H
    ax = fig.add_subplot(spec[0], projection="3d")
    for c in range(k):
        pts = X[:, labels == c]
        ax.scatter(*pts, s=10, alpha=0.4, color=f"C{c}")
        m = pts.mean(axis=1)
        ax.plot(*np.stack([np.zeros(3), m], axis=1), color=f"C{c}", lw=2.5, label=f"class {c} (n={pts.shape[1]})")
    ax.set(title="features and class means (top-3 principal axes)", xlim=(-1, 1), ylim=(-1, 1), zlim=(-1, 1))
    ax.legend(fontsize=7, loc="upper left")
    ax2 = fig.add_subplot(spec[1])
    both = np.hstack([_first_seed(p.class_cosines)[:k, :k], np.full((k, 1), np.nan),
                      p.theory_class_gram.values[:k, :k]])
    im = ax2.imshow(both, cmap="RdBu_r", vmin=-1, vmax=1)
    ax2.set(title="class-mean cosines: simulated | predicted", xticks=[], yticks=[])
    fig.colorbar(im, ax=ax2, fraction=0.03)


def _convergence_panels(p: xr.Dataset, fig, spec) -> None:
    t = p.step.values
    ax = fig.add_subplot(spec[0])
    gap = np.abs(p.loss_gap.transpose("step", ...).values.reshape(len(t), -1))
    ax.semilogy(t, np.maximum(gap, 1e-17), color="C0", alpha=0.6)
    ax.set(title="|L - L*| (one line per seed)", xlabel="step")
    ax = fig.add_subplot(spec[1])
    for i, m in enumerate(METRICS):
        ax.semilogy(t, np.maximum(np.abs(series(p[m]).values - float(p[f"theory_{m}"])), 1e-17),
                    label=f"|{m} - {m}(G*)|", color=f"C{i}")
    for i, m in enumerate(("gram_distance", "full_gram_distance"), start=len(METRICS)):
        ax.semilogy(t, np.maximum(series(p[m]).values, 1e-17), label=m, color=f"C{i}")
    ax.set(title="collapse metrics against the optimum's (mean over seeds)", xlabel="step")
    ax.legend(fontsize=7)


def _step_table_figure(ds: xr.Dataset, plt):
    """The three cosines against R, one colour per tau: markers simulated (mean over seeds), lines the program."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
    R = ds.imbalance.values
    temps = ds.temperature.values if "temperature" in ds.dims else [None]
    for j, tau in enumerate(temps):
        p = ds.sel(temperature=tau) if tau is not None else ds
        for ax, c in zip(axes, ("alpha", "beta", "gamma")):
            sim = p[c].mean("seed") if "seed" in p[c].dims else p[c]
            ax.semilogx(R, p[f"theory_{c}"].values, "-", color=f"C{j}", label=f"tau={tau} program")
            ax.semilogx(R, sim.values, "o", color=f"C{j}", mfc="none", label=f"tau={tau} simulated")
    for ax, c, title in zip(axes, ("alpha", "beta", "gamma"), ("majority-majority", "minority-minority", "across")):
        ax.axhline(-1 / 3, color="gray", ls=":", lw=1)
        ax.set(title=f"{c}: {title}", xlabel="imbalance R")
    axes[0].set_ylabel("cosine of class means (ETF: -1/3 dotted)")
    axes[0].legend(fontsize=7)
    fig.suptitle("STEP imbalance: class-mean cosines against R (Behnia and Thrampoulidis 2024)")
    fig.tight_layout()
    return fig


def figure(ds: xr.Dataset):
    """A sweep over imbalance gives the STEP figure (cosines against R); otherwise the first grid point's geometry
    and every point's convergence."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = list(json.loads(ds.attrs.get("grid", "{}")))
    if "imbalance" in grid and "alpha" in ds and np.isfinite(ds.theory_alpha.values).any():
        return _step_table_figure(ds, plt)
    first = ds.isel({g: 0 for g in grid})
    fig = plt.figure(figsize=(13, 9))
    spec = fig.add_gridspec(2, 2)
    _geometry_panels(first, json.loads(ds.attrs["config"]), fig, [spec[0, 0], spec[0, 1]])
    _convergence_panels(first, fig, [spec[1, 0], spec[1, 1]])
    label = " ".join(f"{g}={first[g].values}" for g in grid)
    fig.suptitle(f"neural collapse under supervised contrastive loss {label}".strip())
    fig.tight_layout()
    return fig
