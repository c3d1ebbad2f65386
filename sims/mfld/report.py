"""`mfld` simulation beside theory: the comparison rows, the figure, and the N-ladder of the command-line run."""

from __future__ import annotations

import json
import math

import numpy as np
import xarray as xr

from dynamics.report import Row, halfwidth, loglog_slope, points, series, stationary

__all__ = ["compare", "figure", "scaling_grid"]

# Stationary quantities with an exact discrete-time prediction (linear oracle). For other models only bounds and
# scaling laws are theorems: E F0(rho) - F0(mu*) need not be >= 0, and E F(rho) = F(mu*) holds only for linear.
_EXACT = (("loss", "E F0(f_ens)"), ("objective", "E F(rho)"), ("model_error", "E |f_ens - f*|^2"),
          ("particle_variance", "fluctuation variance"))


def scaling_grid(config) -> dict:
    """The particle ladder N/8, N/4, N/2, N that the command-line run adds, so its figure shows the 1/N law."""
    ladder = sorted({max(1, config.particles // k) for k in (8, 4, 2, 1)})
    return {"particles": ladder} if len(ladder) >= 3 else {}


def _grid(ds: xr.Dataset) -> list[str]:
    return list(json.loads(ds.attrs.get("grid", "{}")))


def _scalar(da: xr.DataArray) -> float:
    return float(np.asarray(da).ravel()[0]) if da.size else math.nan


def _point_rows(ds: xr.Dataset, label: str) -> list[Row]:
    rows = []
    linear = not math.isnan(_scalar(ds.theory_particle_variance))
    for name, meaning in _EXACT if linear else ():
        mean, width = stationary(ds[name])
        rows.append(Row(name, label, mean, _scalar(ds[f"theory_{name}"]), "=", width,
                        f"exact stationary {meaning}, discrete time"))
    bound = _scalar(ds.bound_model_error)
    for name in ("model_error", "ensemble_variance"):
        if math.isfinite(bound) and not np.all(np.isnan(ds[name].values)):
            mean, width = stationary(ds[name])
            rows.append(Row(name, label, mean, bound, "<=", width,
                            "Theorem 1 via Lemma 1, squared loss: 2B/N (as t -> inf, eta -> 0)"))
    if not math.isnan(_scalar(ds.theory_dual)):
        tail = ds.dual.isel(step=slice(ds.sizes["step"] // 2, None))
        rows.append(Row("max dual D(g_rho)", label, float(tail.max()), _scalar(ds.theory_dual), "<=", 0.0,
                        "weak duality: D(g) <= L(mu*)"))
    if not rows:
        mean, width = stationary(ds.loss)
        rows.append(Row("loss", label, mean, math.nan, "=", width, "no closed form for this model"))
    return rows + [_rate_row(ds, label, linear)]


def _fitted_rate(ds: xr.Dataset, observable: xr.DataArray, limit: float) -> tuple[float, float]:
    """Exponential rate (per unit time t = lr * step) of |observable - limit| over the transient, and the half-width of
    its 99.7% interval from the fit's residuals. Only records where the transient stands 7 half-widths (about 20 standard
    errors) above the stationary noise are used, up to the first that does not."""
    excess = np.abs(series(observable).values - limit)
    _, width = stationary(observable)
    above = excess > 7 * max(width, 1e-300)
    use = np.arange(np.argmin(above) if not above.all() else above.size)
    if use.size < 3:
        return math.nan, math.nan
    t = ds.step.values[use] * json.loads(ds.attrs["config"])["lr"]
    slope, intercept = np.polyfit(t, np.log(excess[use]), 1)
    resid = np.log(excess[use]) - (slope * t + intercept)
    se = math.sqrt(np.sum(resid ** 2) / max(use.size - 2, 1) / np.sum((t - t.mean()) ** 2))
    return -slope, halfwidth(se, use.size - 2)


def _rate_row(ds: xr.Dataset, label: str, linear: bool) -> Row:
    """Theorem 1: exponential convergence at rate 2 alpha lambda. For the linear neuron alpha = 1/s^2 = 2 lambda'/lambda
    and the fluctuation variance relaxes as exactly one exponential in expectation, so the fitted rate is compared
    with it (3 standard errors). Elsewhere alpha is unknown: the objective's fitted rate is reported alone."""
    if linear:
        rate, width = _fitted_rate(ds, ds.particle_variance, _scalar(ds.theory_particle_variance))
        return Row("relaxation rate", label, rate, _scalar(ds.theory_relaxation_rate), "=", width,
                   "exact: -2 log|1 - 2 lambda' eta| / eta, -> 2 alpha lambda of Theorem 1 as eta -> 0")
    rate, width = _fitted_rate(ds, ds.objective, stationary(ds.objective)[0])
    return Row("convergence rate of F", label, rate, math.nan, "=", width,
               "Theorem 1 bounds it below by alpha lambda; alpha unknown")


def _scaling_rows(ds: xr.Dataset, grid: list[str]) -> list[Row]:
    """The 1/N law: slopes of log error against log N at each point of the other swept parameters."""
    if "particles" not in grid or ds.sizes["particles"] < 3:
        return []
    rows = []
    others = [g for g in grid if g != "particles"]
    for label, sel in points(ds, others):
        sub = ds.sel(sel)
        n = sub.particles.values
        excess = sub.loss - sub.theory_optimum_loss  # E F0(rho) - F0(mu*): observed 1/N, not sign-definite
        for name, observed in (("model_error", sub.model_error), ("ensemble_variance", sub.ensemble_variance),
                             ("excess loss", excess)):
            if np.all(np.isnan(observed.values)):
                continue
            y = [stationary(observed.sel(particles=k))[0] for k in n]
            slope, se = loglog_slope(n, y)
            rows.append(Row(f"slope of {name} in N", label or "all", slope, -1.0, "=",
                            halfwidth(se, len(n) - 2), "propagation of chaos: error ~ 1/N"))
    return rows


def poc_errors(ds: xr.Dataset) -> tuple[xr.DataArray, xr.DataArray] | None:
    """The paper's Figure 1 metric against the mean-field reference f_inf, the first system of the sweep's largest
    network (N_inf, at least 10 times every other N), on the test inputs:

    sup_error(N, M) = log10 max_z |f_ens,M(z) - f_inf(z)| (seed 0), and mse(N, M) = mean over z and seeds of
    (f_ens,M(z) - f_inf(z))^2 less the reference's own variance (estimated from the spread of its systems), so that
    it estimates E (f_ens,M - E f_inf)^2. f_ens,M averages the first M systems. None without a reference.
    """
    if "particles" not in _grid(ds) or ds.sizes["particles"] < 3 or ds.sizes.get("system", 1) < 2:
        return None
    n = np.sort(ds.particles.values)
    if n[-1] < 10 * n[-2]:
        return None
    pred = ds.test_prediction
    references = pred.sel(particles=n[-1])
    reference = references.isel(system=0, seed=0)
    reference_variance = references.var("system", ddof=1).mean()
    ens = pred.sel(particles=n[:-1]).cumsum("system") / (pred.system + 1)  # prefix means: M = 1, 2, ...
    ens = ens.rename(system="ensemble_size").assign_coords(ensemble_size=np.arange(1, pred.sizes["system"] + 1))
    diff = ens - reference
    sup = np.log10(np.abs(diff.isel(seed=0)).max("test_sample"))
    mse = (diff ** 2).mean(["test_sample", "seed"]) - reference_variance
    others = [d for d in sup.dims if d not in ("particles", "ensemble_size")]
    return sup.isel({d: 0 for d in others}), mse.isel({d: 0 for d in others})


def _poc_rows(ds: xr.Dataset) -> list[Row]:
    """Theorem 3: E (f_ens - f*)^2 <= 4R^2/(MN) + (8R^2/M) sqrt(E_k) + 2R^2 E_k with E_k ~ B/(lambda N). Its
    variance term falls as 1/(MN); the bias terms do not fall with M. The 1/N of the whole error is observed, not
    proved (the bound is O(N^-1/2)); the M-ratio holds in expectation."""
    errors = poc_errors(ds)
    if errors is None:
        return []
    _, mse = errors
    rows = []
    n = mse.particles.values
    for m in (1, int(mse.ensemble_size.max())):
        slope, se = loglog_slope(n, mse.sel(ensemble_size=m).values)
        rows.append(Row("slope of |f_ens - f_inf|^2 in N", f"M={m}", slope, -1.0, "=", halfwidth(se, len(n) - 2),
                        "observed 1/N; Theorem 3's variance term 4R^2/(MN)"))
    for k in n:
        ratio = float(mse.sel(particles=k, ensemble_size=1) / mse.sel(particles=k).isel(ensemble_size=-1))
        rows.append(Row("|f_1 - f_inf|^2 / |f_M - f_inf|^2", f"particles={k}", ratio, 1.0, ">=", 0.0,
                        "Theorem 3, in expectation: ensembling divides the variance by M"))
    return rows


def free_energy_gap(ds: xr.Dataset) -> tuple[xr.DataArray, xr.DataArray] | None:
    """Delta_N = (1/N) L^N(mu*^(N)) - L(mu*) by thermodynamic integration (theory note): the stationary E B_F0(rho, mu*)
    under the interpolated drift at the 5 Gauss-Legendre nodes s_i of `interpolation`, summed with their weights.
    Returns (Delta_N, its standard error) over the other swept parameters, or None when s is not swept at the nodes."""
    from configs.mfld import GAUSS_LEGENDRE_NODES, GAUSS_LEGENDRE_WEIGHTS
    if "interpolation" not in _grid(ds) or not np.allclose(ds.interpolation.values, GAUSS_LEGENDRE_NODES):
        return None
    tail = ds.bregman.isel(step=slice(ds.sizes["step"] // 2, None)).mean("step")
    weights = xr.DataArray(list(GAUSS_LEGENDRE_WEIGHTS), coords={"interpolation": ds.interpolation})
    mean = (tail.mean("seed") * weights).sum("interpolation")
    se = np.sqrt(((tail.std("seed", ddof=1) / np.sqrt(tail.sizes["seed"]) * weights) ** 2).sum("interpolation"))
    return mean, se


def _free_energy_rows(ds: xr.Dataset) -> list[Row]:
    gap = free_energy_gap(ds)
    if gap is None:
        return []
    mean, se = gap
    rows = []
    others = [g for g in _grid(ds) if g != "interpolation"]
    for label, sel in points(mean, others):
        n = float(sel.get("particles", json.loads(ds.attrs["config"])["particles"]))
        point = ds.sel(sel).isel(interpolation=-1)
        m, width = float(mean.sel(sel)), halfwidth(float(se.sel(sel)), ds.sizes["seed"] - 1)
        exact = _scalar(point.theory_free_energy_gap)
        if math.isfinite(exact):
            rows.append(Row("Delta_N (thermodynamic integration)", label or "-", m, exact, "=", width,
                            "(lambda/2N) sum_k log(1 + gamma_k), continuous time: O(eta) apart"))
        bound = _scalar(point.bound_model_error) / 2 * n  # 2B/N / 2 * N = B
        rows.append(Row("N Delta_N", label or "-", n * m, bound, "<=", n * width, "Theorem 1: B = L_l R^2 / 2"))
    return rows


def compare(ds: xr.Dataset) -> list[Row]:
    """Every comparison of simulation with theory that this run's model and data allow."""
    grid = _grid(ds)
    if poc_errors(ds) is not None:
        return _poc_rows(ds)
    if free_energy_gap(ds) is not None:
        return _free_energy_rows(ds)
    rows = []
    for label, sel in points(ds, grid):
        rows.extend(_point_rows(ds.sel(sel), label or "-"))
    return rows + _scaling_rows(ds, grid)


def figure(ds: xr.Dataset):
    """Left: training loss against step with its theory value. Right (when N is swept): stationary error
    against N with the theory lines; else the dual bound against L(mu*)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = _grid(ds)
    fig, (ax_t, ax_n) = plt.subplots(1, 2, figsize=(11, 4))
    errors = poc_errors(ds)
    if errors is not None:
        return _poc_figure(fig, ax_t, ax_n, ds, *errors)
    if free_energy_gap(ds) is not None:
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
    ax_t.set(xlabel="step", ylabel="training loss F0 (dashed: E F0 exact, or F0(mu*))", yscale="log" if log else "linear")
    ax_t.legend(fontsize=7)
    if "particles" in grid and ds.sizes["particles"] >= 2:
        n = ds.particles.values
        for name in ("model_error", "ensemble_variance"):
            if np.all(np.isnan(ds[name].values)):
                continue
            y = [stationary(ds[name].sel(particles=k))[0] for k in n]
            ax_n.loglog(n, y, "o-", label=f"{name} (simulated)")
            theory = f"theory_{name}"
            if theory in ds and np.isfinite(ds[theory]).any():
                ax_n.loglog(n, [_scalar(ds[theory].sel(particles=k)) for k in n], "k--", label=f"{name} (exact)")
            ax_n.loglog(n, y[-1] * n[-1] / n, ":", color="gray", label="1/N")
        if np.isfinite(ds.bound_model_error).any():
            ax_n.loglog(n, [_scalar(ds.bound_model_error.sel(particles=k)) for k in n], "r-", lw=0.8,
                        label="bound 2B/N (Theorem 1)")
        ax_n.set(xlabel="particles N", ylabel="stationary error")
        ax_n.legend(fontsize=7)
    elif np.isfinite(_scalar(ds.theory_dual)):
        d = flat.dual.isel(point=0)
        ax_n.plot(flat.step, series(d), label="dual D(g_rho)")
        ax_n.axhline(_scalar(flat.theory_dual.isel(point=0)), color="k", ls="--", label="L(mu*)")
        ax_n.set(xlabel="step", ylabel="free energy")
        ax_n.legend(fontsize=7)
    else:
        ax_n.axis("off")
    fig.suptitle(f"mfld: {json.loads(ds.attrs['config'])['model']} neuron, "
                 f"{json.loads(ds.attrs['config'])['dataset']} data")
    fig.tight_layout()
    return fig


def _poc_figure(fig, ax_map, ax_n, ds, sup, mse):
    """The paper's Figure 1: log10 sup-norm error against N and M, and the mean squared error against N."""
    image = ax_map.pcolormesh(sup.ensemble_size, sup.particles, sup.transpose("particles", "ensemble_size"),
                              shading="nearest", cmap="viridis")
    fig.colorbar(image, ax=ax_map, label="log10 sup |f_ens - f_inf|")
    ax_map.set(xlabel="ensemble size M", ylabel="particles N")
    n = mse.particles.values
    for m in (1, 5, int(mse.ensemble_size.max())):
        if m <= mse.ensemble_size.max():
            ax_n.loglog(n, mse.sel(ensemble_size=m), "o-", label=f"M={m}")
    ax_n.loglog(n, float(mse.sel(ensemble_size=1)[0]) * n[0] / n, "k:", label="1/N")
    ax_n.set(xlabel="particles N", ylabel="mean squared |f_ens - f_inf|")
    ax_n.legend(fontsize=7)
    cfg = json.loads(ds.attrs["config"])
    fig.suptitle(f"mfld propagation of chaos: {cfg['dataset']}, reference N_inf = {int(ds.particles.max())}")
    fig.tight_layout()
    return fig


def _free_energy_figure(fig, ax_s, ax_n, ds):
    """Left: the thermodynamic-integration integrand N E_s B_F0(rho, mu*) against s. Right: N Delta_N against N with
    its standard error and Theorem 1's constant B."""
    mean, se = free_energy_gap(ds)
    tail = ds.bregman.isel(step=slice(ds.sizes["step"] // 2, None)).mean(["step", "seed"])
    n = ds.particles.values if "particles" in ds.dims else np.array([json.loads(ds.attrs["config"])["particles"]])
    for k in n:
        curve = tail.sel(particles=k) if "particles" in tail.dims else tail
        ax_s.plot(ds.interpolation, k * curve.squeeze(), "o-", label=f"N={k}")
    ax_s.set(xlabel="interpolation s", ylabel="N E_s B_F0(rho, mu*)")
    ax_s.legend(fontsize=7)
    gap = mean.values.ravel() * n
    ax_n.errorbar(n, gap, yerr=4 * se.values.ravel() * n, fmt="o-", label="N Delta_N (thermodynamic integration)")
    bound = float(np.ravel(ds.bound_model_error.values)[0]) / 2 * n[0]
    ax_n.axhline(bound, color="r", lw=0.8, label="B = L_l R^2 / 2 (Theorem 1)")
    ax_n.set(xscale="log", yscale="log", xlabel="particles N", ylabel="N Delta_N")
    ax_n.legend(fontsize=7)
    fig.suptitle("mfld free-energy gap: N Delta_N stays below Theorem 1's B")
    fig.tight_layout()
    return fig
