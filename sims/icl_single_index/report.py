"""`icl_single_index` simulation beside theory: every row is a test of `dynamics.report` that can fail, or a `shown`
row that says why none is possible.

Rows at each grid point: stage I's alignment against the acceptance threshold; the in-context error at N* against
the projection floor (a lower bound); the exponent of the excess over the floor in N against the theory's 1/N; the
transformer against kernel ridge. Across a `dim` sweep: the in-context error at N* does not grow with d (a bound on
the ratio), each prompt-only learner's does (an ordering).

What a replicate is here. Given the pretrained model (one seed's stage I and stage II), the test tasks are
independent draws, so each task's error is one independent replicate and `stats.across` over the tasks is the
standard error of the test-set mean; with several seeds the tasks of every seed are pooled (each independent of the
rest), and the claim is about those seeds' pretrained models. Every prompt length N uses the same test tasks (the
first N samples of one prompt), so the per-length means are correlated: a quantity that combines lengths (the slope
in N) takes its error across tasks of the whole per-task combination (`excess_slope`), never from per-length errors
added as if independent. Members of a `dim` sweep share their seed's key, and `data.in_subspace_coupled` makes them
draw the same labels and in-S inputs (common random numbers): task i at d and at d0 form a pair, and differences
across d take their error across tasks of the per-task difference.

The pretrained model itself varies from seed to seed (in-context error at d = 16, N* = 128 over 4 seeds: 0.086 to
0.098, SD 0.006, against a test-set SE of 0.002 at 2048 tasks), so one seed's rows speak for its model. Across d
the models are paired too: `model.init_features` draws the same in-S init at every d, so stage I gives the same
neuron directions in S up to its noise, and the per-task errors at d = 16 and 64 correlate at 0.95.
"""

from __future__ import annotations

import json
import math

import numpy as np
import xarray as xr
from scipy import special

from configs.icl_single_index import link_coefficients
from dynamics import stats
from dynamics.report import Estimate, Row, bound, equal, exceeds, per_point, shown
from sims.icl_single_index import data

__all__ = ["ALIGNED", "FLAT", "REFERENCE_TASKS_PER_DIM", "SLOPE_FROM", "compare", "excess_slope", "figure",
           "paired_ratio", "random_alignment", "scaling_grid"]

BASELINES = ("linear", "krr_poly", "krr_rbf", "two_layer")
LABELS = {"icl": "theory model (in context)", "transformer": "flax transformer (in context)",
          "linear": "linear ridge (prompt)", "krr_poly": "KRR poly (prompt)", "krr_rbf": "KRR RBF (prompt)",
          "two_layer": "two-layer GD (prompt)"}
ALIGNED = 0.95  # the theory note's acceptance for stage I with Q = 1 at T_1 N_1 ~ d
REFERENCE_TASKS_PER_DIM = 1250  # the reference budget T_1 = 1250 d (with N_1 = 256)
# "Does not grow with d": error(d) / error(d0) at N* <= 1 + FLAT. The theory allows no growth once pretraining is
# large enough (N* independent of d; T_1 ~ d^(Q+1) r^Q), but a finite budget leaves some, and a test of exact
# equality at 1024-2048 paired tasks (ratio SE ~1%) would see it. FLAT = 10%, the engine's meaningful relative
# error, sits between the growth of adequate budgets and that of a budget held fixed (seed 0, measured): from
# d = 16 to 32, T_1 ~ d^2: +3.4 +- 1.0%, T_1 = 1250 d (the reference): +5.8 +- 1.1% (to d = 64: +6.2 +- 0.9%);
# T_1 held at 5000: +26 +- 2% (held at 20000, to d = 64: +23 +- 1.3%).
FLAT = 0.1
SLOPE_FROM = 16  # the exponent is fitted on N >= 16: at N = 8 the excess (~0.45) is a sizable part of Var y


def scaling_grid(config) -> dict:
    """No ladder: the prompt lengths are the run's own ladder; `--sweep=dim=...` gives the d picture."""
    return {}


def _mean(da: xr.DataArray) -> np.ndarray:
    """A seeded output averaged over seeds (for the figure and the `shown` rows)."""
    return (da.mean("seed") if "seed" in da.dims else da).values


def _tasks(da: xr.DataArray) -> np.ndarray:
    """Per-task values pooled over seeds: (replicates,) or (replicates, length) with length last."""
    da = da.expand_dims("seed") if "seed" not in da.dims else da
    if "length" in da.dims:
        return da.transpose("seed", "task", "length").values.reshape(-1, da.sizes["length"])
    return da.transpose("seed", "task").values.reshape(-1)


def _seeds(p: xr.Dataset) -> int:
    return p.sizes.get("seed", 1)


def _across(values: np.ndarray, seeds: int) -> Estimate:
    """Mean of per-task replicates (NaN: a task the learner did not see) and its error across them."""
    v = values[np.isfinite(values)]
    return stats.across(v, seeds=seeds)


def random_alignment(dim: int, rank: int) -> float:
    """E |P_S w| for w uniform on the unit sphere of R^d: |P_S w|^2 ~ Beta(r/2, (d - r)/2), so the mean is
    Gamma((r+1)/2) Gamma(d/2) / (Gamma(r/2) Gamma((d+1)/2)), about sqrt(r/d)."""
    return float(np.exp(special.gammaln((rank + 1) / 2) + special.gammaln(dim / 2) - special.gammaln(rank / 2)
                        - special.gammaln((dim + 1) / 2)))


def excess_slope(lengths, errors: np.ndarray, floors: np.ndarray, seeds: int = 1,
                 start: int = SLOPE_FROM) -> Estimate:
    """The log-log slope of the excess E(N) - F over the lengths N >= start, E(N) the mean in-context error over
    tasks, F the mean projection floor.

    errors (tasks, length): per-task errors, all lengths on the same tasks; floors (tasks,): per-task floors, NaN on
    the tasks without one. The slope is s = sum_k c_k log(E_k - F) (c the least-squares weights of log N). Its
    standard error comes from the tasks, the independent replicates, through the whole per-task combination (the
    delta method): z_i = sum_k g_k e_ik - G (n/n_F) f_i [task i has a floor], g_k = c_k / (E_k - F), G = sum_k g_k,
    has mean s's linearization and Var(s) = sum_i Var(z_i) / n^2, estimated within the tasks with and without a
    floor. As in `stats.loglog_fit`, the residuals of the fit give a second error (dof = points - 2), which sees a
    law that is not a power law; the larger one is used. NaN where some excess is not positive."""
    lengths = np.asarray(lengths)
    use = lengths >= start
    e = errors[:, use]
    n = e.shape[0]
    has_floor = np.isfinite(floors)
    excess = e.mean(axis=0) - floors[has_floor].mean()
    if use.sum() < 2 or not np.all(excess > 0):
        return Estimate(math.nan, math.nan, 0, 0)
    lx = np.log(lengths[use])
    c = (lx - lx.mean()) / np.sum((lx - lx.mean()) ** 2)
    value = float(c @ np.log(excess))
    g = c / excess
    z = e @ g - np.where(has_floor, g.sum() * n / has_floor.sum() * np.nan_to_num(floors), 0.0)
    groups = [z[has_floor], z[~has_floor]]
    var = sum(x.size * x.var(ddof=1) for x in groups if x.size > 1) / n ** 2
    se_tasks, dof = math.sqrt(var), has_floor.sum() - 1
    resid = np.log(excess) - (np.log(excess).mean() + value * (lx - lx.mean()))
    if lx.size > 2:
        se_res = math.sqrt(np.sum(resid ** 2) / (lx.size - 2) * np.sum(c ** 2))
        if se_res > se_tasks:
            return Estimate(value, se_res, lx.size - 2, seeds)
    return Estimate(value, se_tasks, dof, seeds)


def paired_ratio(a: np.ndarray, b: np.ndarray, seeds: int = 1) -> Estimate:
    """mean(a) / mean(b) over paired per-task replicates (a_i, b_i) (NaN pairs dropped), its error across tasks of
    the linearized z_i = (a_i - R b_i) / mean(b) (the delta method for a ratio of paired means)."""
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    r = a.mean() / b.mean()
    return stats.across((a - r * b) / b.mean(), seeds=seeds)._replace(mean=float(r))


def _alignment_row(p: xr.Dataset, where: str, cfg: dict, dim: int, rank: int) -> Row:
    """Stage I's mean |P_S w_j|. It is exact for each seed's model (no test sampling), and every seed's model must
    pass: the worst seed is compared with the threshold."""
    values = np.atleast_1d(p.alignment.values)
    random = random_alignment(dim, rank)
    q = data.information_exponent(link_coefficients(cfg["link"]))
    budget = (cfg["tasks_stage1"] or REFERENCE_TASKS_PER_DIM * dim) * cfg["prompt_stage1"]
    reference = REFERENCE_TASKS_PER_DIM * dim * 256
    name = "stage-I alignment mean |P_S w_j|"
    if q == 1 and budget >= reference:
        return bound(f"{name} (worst seed)", where, stats.exact(values.min()), ALIGNED,
                     f"Q = 1, T_1 N_1 >= 1250 d * 256: stage I aligns the features with S (the theory note's "
                     f"acceptance; random init {random:.2f})", upper=False)
    if q >= 2 and budget <= reference:
        return bound(f"{name} (best seed)", where, stats.exact(values.max()), ALIGNED,
                     f"Q = {q} needs N_1 T_1 ~ d^{2 * q + 1}: at the Q = 1 budget ~ d it stays short of the Q = 1 "
                     f"acceptance (random init {random:.2f})")
    return shown(name, where, float(values.mean()), ALIGNED,
                 f"no threshold at this budget: the acceptance is for Q = 1 at T_1 N_1 >= 1250 d * 256 "
                 f"(random init {random:.2f})")


def _slope_source(width: int) -> str:
    # Measured in runs to N = 1024 (reference budget, d = 16, 512 tasks, local exponents +- ~0.07), T_2 = 8000 /
    # 32000: -0.62 / -0.67 at N = 16-32, -0.83 / -0.79, -0.83 / -0.86, -0.82 / -0.82 up to 256, -0.93 / -0.91 at
    # 256-512, and -0.56 / -0.70 at 512-1024; fitted over 16-128, -0.76 / -0.77. So finite T_2 is not what holds the
    # exponent near -0.8 at N <= 128 (it shows only beyond 512); a factor log N alone would (c log N / N has local
    # exponent -1 + 1/ln N: -0.76 at N = 64).
    return (f"Oko et al.: c/N up to log factors as N, T_2 -> inf; c log N / N has local exponent -1 + 1/ln N "
            f"(-0.76 at N = 64). Measured (d = 16, m = {width}): -0.6 at N = 16-32, -0.8 at 32-256, -0.9 at "
            "256-512; T_2 x 4 changes them by < 0.05")


def _point_rows(p: xr.Dataset, label: str, cfg: dict, dim: int, rank: int) -> list[Row]:
    lengths = p.lengths.values
    where = label or "-"
    seeds = _seeds(p)
    longest = int(lengths[-1])
    rows = [_alignment_row(p, where, cfg, dim, rank)]
    icl, floors = _tasks(p.task_error_icl), _tasks(p.task_floor)
    floor = _across(floors, seeds)
    rows.append(bound(f"in-context error at N*={longest}", where, stats.across(icl[:, -1], seeds=seeds), floor.mean,
                      f"a.phi(x_q) with a = Gamma psi fixed per prompt: >= the per-task least-squares floor on the "
                      f"same features ({floor.mean:.4g} ± {floor.halfwidth:.1g}), reached only as N -> inf",
                      upper=False))
    quantity, exponent = f"exponent of (error - floor) in N, N={SLOPE_FROM}..{longest}", excess_slope(
        lengths, icl, floors, seeds)
    if (lengths >= SLOPE_FROM).sum() < 2:
        rows.append(shown(quantity, where, exponent.mean, -1.0, f"needs two prompt lengths >= {SLOPE_FROM}: run "
                          f"--prompt_length >= {2 * SLOPE_FROM}"))
    elif cfg["out_of_distribution"]:
        rows.append(shown(quantity, where, exponent.mean, -1.0, "out of distribution Gamma was fitted on tasks in "
                          "S, which the test tasks are not in: nothing makes the excess vanish, no rate applies"))
    else:
        rows.append(equal(quantity, where, exponent, -1.0, _slope_source(int(cfg["width"]))))
    for name in BASELINES:
        values = _mean(p[f"error_{name}"])
        if not np.all(np.isnan(values)):
            rows.append(shown(f"{LABELS[name]} at N*={longest}", where, float(values[-1]),
                              float(_mean(p.error_icl)[-1]),
                              "beside the theory model; no theory value at one d: the claim is their growth with d "
                              "(the d rows of a dim sweep)"))
    trained = "task_error_transformer" in p and np.isfinite(p.task_error_transformer.values).any()
    if trained and np.isfinite(p.task_error_krr_poly.values).any():
        i = int(np.argmin(np.abs(lengths - 32)))
        kernels = [_tasks(p[f"task_error_krr_{k}"])[:, i] for k in ("poly", "rbf")]
        best = kernels[int(np.argmin([np.nanmean(k) for k in kernels]))]
        rows.append(exceeds(f"transformer - better KRR at N={int(lengths[i])}", where,
                            _across(_tasks(p.task_error_transformer)[:, i] - best, seeds), 0.0,
                            "the pretrained transformer beats the prompt-only kernel method (Oko et al., section 4); "
                            "paired over test tasks", below=True, scale=float(np.nanmean(best))))
    return rows


def _dim_rows(ds: xr.Dataset) -> list[Row]:
    """At fixed r and N*, the in-context error does not grow with d; every prompt-only learner's does. Tasks are
    paired across d (common random numbers, `data.in_subspace_coupled`)."""
    rows = []
    dims = ds.dim.values
    base = ds.sel(dim=dims[0])
    seeds = _seeds(base)
    for d in dims[1:]:
        p = ds.sel(dim=d)
        ratio = paired_ratio(_tasks(p.task_error_icl)[:, -1], _tasks(base.task_error_icl)[:, -1], seeds)
        rows.append(bound(f"{LABELS['icl']}: error(d={d}) / error(d={dims[0]}) at N*", "-", ratio, 1 + FLAT,
                          f"N* independent of d at fixed r (Oko et al.): no growth beyond {FLAT:.0%}; paired over "
                          "test tasks"))
        for name in BASELINES:
            a, b = _tasks(p[f"task_error_{name}"])[:, -1], _tasks(base[f"task_error_{name}"])[:, -1]
            if np.all(np.isnan(a)):
                continue
            rows.append(exceeds(f"{LABELS[name]}: error(d={d}) - error(d={dims[0]}) at N*", "-", _across(a - b, seeds),
                                0.0, "prompt-only learners need N growing with d (Oko et al.: any Omega(d), KRR "
                                "d^Theta(P), two-layer GD d^Theta(Q)); paired over test tasks",
                                scale=float(np.nanmean(b))))
    return rows


def compare(ds: xr.Dataset) -> list[Row]:
    def point_rows(p, label, cfg, sel):
        here = {**cfg, **{k: v.item() if hasattr(v, "item") else v for k, v in sel.items()}}  # this point's values
        return _point_rows(p, label, here, int(here["dim"]), int(here["rank"]))
    rows = per_point(ds, point_rows)
    if list(json.loads(ds.attrs.get("grid", "{}"))) == ["dim"] and ds.sizes["dim"] > 1:
        rows.extend(_dim_rows(ds))
    return rows


def figure(ds: xr.Dataset):
    """Left: error against prompt length, one colour per learner (solid: the theory model, with its floor and the
    fitted floor + A N^s; dashed: prompt-only learners), one line style per d when d is swept. Right: the
    transformer's pretraining (training loss and in-context error at N = 32 against Adam steps)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = list(json.loads(ds.attrs.get("grid", "{}")))
    flat = ds.stack(point=grid) if grid else ds.expand_dims(point=[0])
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.5))
    ax = axes[0]
    styles = ["-", "--", ":", "-."]
    for i in range(flat.sizes["point"]):
        p = flat.isel(point=i)
        lengths = p.lengths.values
        tag = " ".join(f"{g}={p[g].values}" for g in grid)
        ls = styles[i % len(styles)]
        for j, name in enumerate(("icl", "transformer") + BASELINES):
            values = _mean(p[f"error_{name}"])
            if np.all(np.isnan(values)):
                continue
            ax.errorbar(lengths, values, yerr=_mean(p[f"error_{name}_se"]), ls=ls, color=f"C{j}", marker="o",
                        ms=3, label=f"{LABELS[name]} {tag}" if i == 0 or name in ("icl", "krr_poly") else None)
        icl, floors = _tasks(p.task_error_icl), _tasks(p.task_floor)
        floor = float(np.nanmean(floors))
        s = excess_slope(lengths, icl, floors, _seeds(p))
        use = lengths >= SLOPE_FROM
        if math.isfinite(s.mean):
            lx, ly = np.log(lengths[use]), np.log(icl.mean(axis=0)[use] - floor)
            grid_n = np.geomspace(lengths[0], lengths[-1], 50)
            ax.plot(grid_n, floor + np.exp(ly.mean() + s.mean * (np.log(grid_n) - lx.mean())), color="k", ls=ls,
                    lw=0.8, label=f"floor + A N^s, s = {s.mean:.2f} ± {s.halfwidth:.2f} {tag}")
        ax.axhline(floor, color="gray", ls=ls, lw=0.8)
    ax.set(xscale="log", yscale="log", xlabel="prompt length N", ylabel="test MSE (noisy labels)",
           title="in-context learning vs learners that see only the prompt")
    fig.text(0.01, 0.005, "sample complexity (Oko et al.): in context N* = O~(r^Theta(P)), independent of d;\n"
             "KRR on the prompt d^Theta(P); two-layer GD d^Theta(Q); any prompt-only learner Omega(d);\n"
             "pretraining T_1 = Omega~(d^(Q+1) r^Q) tasks, N_1 T_1 = Omega~(d^(2Q+1) r)",
             fontsize=7, va="bottom")
    ax.legend(fontsize=6, loc="upper right")
    ax = axes[1]
    trained = False
    for i in range(flat.sizes["point"]):
        p = flat.isel(point=i)
        if "train_loss" not in p or np.all(np.isnan(_mean(p.train_loss))):
            continue
        tag = " ".join(f"{g}={p[g].values}" for g in grid)
        trained = True
        t = p.step.values
        ax.plot(t[1:], _mean(p.train_loss)[1:], color=f"C{i}", lw=0.8, label=f"training loss {tag}")
        k = int(np.argmin(np.abs(p.lengths.values - 32)))
        err = p.transformer_error.isel(length=k)
        ax.plot(t, _mean(err), color=f"C{i}", ls="--", label=f"in-context error, N = 32 {tag}")
    ax.set(xlabel="Adam step", ylabel="MSE", yscale="log", title="flax transformer pretraining")
    if trained:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no transformer in this run (--transformer_layers=0)", ha="center", transform=ax.transAxes)
    fig.suptitle("Oko et al. 2024: a pretrained transformer learns single-index tasks in context (r fixed, d varies)")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig
