"""Simulation beside theory: one row per comparison, each with a test that can fail, printed and exported.

A `Row` sets a simulated number beside a theory number under a relation, and `verdict` applies that relation's test.
The false-alarm rate is `stats.LEVEL` (two-sided 0.3%) for every kind; the tolerance is the (1 - LEVEL) Student
half-width of the simulated number's standard error from independent replicates (`stats`), plus any stated bound
on a systematic error (`bias`, e.g. an O(eta) discretization bias derived in the sim's theory).

    relation  claim                          verdict
    "="       simulated = theory             DIFFERS when |sim - theory| > tolerance; else "agrees" only if the test
                                             would detect a `meaningful` relative error (default 10%) with 80%
                                             probability, otherwise "inconclusive: would miss a X% error; run
                                             --seeds=K" (K from se ~ 1/sqrt(seeds))
    "<=" ">=" a bound                        VIOLATED beyond the tolerance; "holds", or "holds, loose ×K" when the
                                             bound is more than `loose` (default 3) times the simulated value: such a
                                             bound cannot see an error of that size, and the table says so
    "in"      theory <= simulated <= upper   a range; VIOLATED when outside by more than the tolerance
    ">" "<"   an ordering: sim > theory      "holds" when significant; VIOLATED when significantly the other way
    "~"       shown side by side             no verdict; `source` says why none is possible
A row whose noise has fewer than `stats.MIN_DOF` degrees of freedom gets no "agrees"/"DIFFERS": "inconclusive".

The `detects` column is the smallest relative deviation each "=" row would detect (80% power): the row's power,
printed beside its verdict. `write_tables` exports the same rows and verdicts as CSV and booktabs LaTeX.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import NamedTuple, Sequence

import numpy as np
import xarray as xr

from dynamics import stats
from dynamics.files import atomic_path
from dynamics.stats import Estimate

__all__ = ["Row", "Estimate", "MEANINGFUL", "LOOSE", "equal", "bound", "within", "exceeds", "slope", "shown",
           "verdict", "detects", "format_table", "write_tables", "series", "stationary", "halfwidth", "points",
           "per_point"]

MEANINGFUL = 0.1  # the relative error an "=" row must be able to see, unless the sim states another
LOOSE = 3.0  # a bound more than this factor above (or below) the simulated value is reported as loose


class Row(NamedTuple):
    """One comparison. simulated, theory: the two numbers; relation: see the module docstring; tolerance: absolute
    half-width of the acceptance region; source: the theorem or closed form (or why no verdict); estimate: the
    simulated number's standard error, dof and seeds (None: an exact number, `tolerance` a round-off bound);
    meaningful: the relative error the row must detect; scale: what relative errors refer to (NaN: |theory|);
    upper: the upper end of an "in" range; loose: the slack factor above which a bound is called loose."""

    quantity: str
    where: str
    simulated: float
    theory: float
    relation: str = "="
    tolerance: float = 0.0
    source: str = ""
    estimate: Estimate | None = None
    meaningful: float = MEANINGFUL
    scale: float = math.nan
    upper: float = math.nan
    loose: float = LOOSE


def _tolerance(estimate: Estimate, bias: float) -> float:
    return estimate.halfwidth + bias


def equal(quantity: str, where: str, estimate: Estimate, theory: float, source: str, *,
          meaningful: float = MEANINGFUL, scale: float = math.nan, bias: float = 0.0) -> Row:
    """simulated = theory, two-sided. bias: a bound on a known systematic difference (added to the tolerance)."""
    return Row(quantity, where, estimate.mean, float(theory), "=", _tolerance(estimate, bias), source, estimate,
               meaningful, scale)


def bound(quantity: str, where: str, estimate: Estimate, limit: float, source: str, *, upper: bool = True,
          loose: float = LOOSE, bias: float = 0.0) -> Row:
    """simulated <= limit (upper=True) or >= limit; its slack limit/simulated (or the inverse) is reported."""
    return Row(quantity, where, estimate.mean, float(limit), "<=" if upper else ">=", _tolerance(estimate, bias),
               source, estimate, loose=loose)


def within(quantity: str, where: str, estimate: Estimate, low: float, high: float, source: str) -> Row:
    """low <= simulated <= high."""
    return Row(quantity, where, estimate.mean, float(low), "in", estimate.halfwidth, source, estimate,
               upper=float(high))


def exceeds(quantity: str, where: str, estimate: Estimate, than: float, source: str, *, below: bool = False,
            meaningful: float = MEANINGFUL, scale: float = math.nan) -> Row:
    """An ordering: simulated > than (or < than with below=True), significant at LEVEL. meaningful * scale is the
    smallest effect that matters, for the seeds an inconclusive row would need."""
    return Row(quantity, where, estimate.mean, float(than), "<" if below else ">", estimate.halfwidth, source,
               estimate, meaningful, scale)


def slope(quantity: str, where: str, x: Sequence[float], y: Sequence[Estimate], theory: float, source: str, *,
          meaningful: float = MEANINGFUL) -> Row:
    """The log-log slope of y against x (`stats.loglog_fit`) equals theory."""
    return equal(quantity, where, stats.loglog_fit(x, y), theory, source, meaningful=meaningful)


def shown(quantity: str, where: str, simulated: float, theory: float, reason: str) -> Row:
    """Side by side, no verdict; reason says why no test is possible."""
    return Row(quantity, where, float(simulated), float(theory), "~", 0.0, reason)


def _scale(row: Row) -> float:
    return row.scale if math.isfinite(row.scale) else abs(row.theory)


def detects(row: Row) -> float:
    """The smallest deviation, relative to the row's scale, that its test detects with 80% probability (the
    tolerance itself for an exact number); NaN where no relative error is defined."""
    e = row.estimate
    absolute = row.tolerance if e is None else stats.detectable(e.se, e.dof) + (row.tolerance - e.halfwidth)
    scale = _scale(row)
    return absolute / scale if scale > 0 and math.isfinite(scale) else math.nan


def _noise_unknown(row: Row) -> bool:
    e = row.estimate
    return e is not None and e.se != 0 and not (math.isfinite(e.se) and e.dof >= stats.MIN_DOF)


def _inconclusive(row: Row, why: str, target: float | None = None) -> str:
    """target: the deviation the row must resolve (default: the meaningful error); for a bound or a range, the
    distance to its edge, so that K seeds would put the interval on one side."""
    e = row.estimate
    if e is None:
        return f"inconclusive: {why}"
    target = row.meaningful * _scale(row) if target is None else target
    k = stats.seeds_needed(e, target) if target > 1e-3 * max(_scale(row), abs(row.simulated)) else None
    advice = f"; run --seeds={k}" if k else "; run more seeds or longer"
    if _noise_unknown(row):
        return f"inconclusive: {why}, noise estimated with {e.dof:.0f} dof (need {stats.MIN_DOF}){advice}"
    return f"inconclusive: {why}{advice}"


def verdict(row: Row) -> str:
    sim, th, tol, rel = row.simulated, row.theory, row.tolerance, row.relation
    if rel == "~":
        return "-"
    if not math.isfinite(sim):
        return "DIVERGED" if math.isinf(sim) else "n/a"
    if not math.isfinite(th):
        return "n/a"
    unknown = _noise_unknown(row)
    if rel == "=":
        if not unknown and abs(sim - th) > tol:
            return "DIFFERS"
        d = detects(row)
        if unknown or not d <= row.meaningful:
            return _inconclusive(row, f"would miss a {_pct(d)} error")
        return "agrees"
    if rel in ("<=", ">="):
        excess = sim - th if rel == "<=" else th - sim
        if not unknown and excess > tol:
            return "VIOLATED"
        if excess > 0:
            return _inconclusive(row, "on the bound within noise", excess)
        slack = th / sim if rel == "<=" else sim / th
        return f"holds, loose ×{slack:.3g}" if sim * th > 0 and slack > row.loose else "holds"
    if rel == "in":
        outside = max(th - sim, sim - row.upper)
        if not unknown and outside > tol:
            return "VIOLATED"
        return "holds" if outside <= 0 else _inconclusive(row, "at the range's edge within noise", outside)
    if rel in (">", "<"):
        excess = sim - th if rel == ">" else th - sim
        if unknown:
            return _inconclusive(row, "no estimate of the noise")
        if excess > tol:
            return "holds"
        if excess < -tol:
            return "VIOLATED"
        return _inconclusive(row, "the difference is within noise", abs(excess) or None)
    raise ValueError(f"unknown relation {rel!r}")


def _num(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{x:.6g}"


def _pct(x: float) -> str:
    if not math.isfinite(x):
        return "-"
    return f"{100 * x:.0f}%" if x >= 0.1 else f"{100 * x:.2g}%"


def _theory(row: Row) -> str:
    return f"[{_num(row.theory)}, {_num(row.upper)}]" if row.relation == "in" else _num(row.theory)


def _cells(row: Row) -> dict:
    rel = abs(row.simulated - row.theory) / abs(row.theory) if math.isfinite(row.theory) and row.theory else math.nan
    shown_tol = row.relation != "~" and row.tolerance and math.isfinite(row.tolerance)
    return {"quantity": row.quantity, "where": row.where,
            "simulated": _num(row.simulated) + (f" ± {row.tolerance:.2g}" if shown_tol else ""),
            "relation": row.relation, "theory": _theory(row),
            "rel.err": _num(rel) if row.relation in ("=", "~") else "-",
            "detects": _pct(detects(row)) if row.relation == "=" else "-",
            "verdict": verdict(row), "theory source": row.source}


def format_table(rows: Sequence[Row]) -> str:
    """The comparison as aligned text: quantity, where, simulated ± tolerance, relation, theory, relative error,
    the smallest relative error the row detects, verdict, theory source."""
    body = [list(_cells(r).values()) for r in rows]
    head = list(_cells(Row("", "", 0.0, 0.0)).keys())
    widths = [max(len(str(line[i])) for line in [head, *body]) for i in range(len(head))]
    fmt = lambda line: "  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip()
    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *map(fmt, body)])


def to_csv(rows: Sequence[Row]) -> str:
    """The rows with every number at full precision: the same verdicts as printed."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["quantity", "where", "simulated", "relation", "theory", "upper", "tolerance", "se", "dof",
                     "seeds", "detects", "verdict", "source"])
    for r in rows:
        e = r.estimate or Estimate(r.simulated)
        writer.writerow([r.quantity, r.where, repr(r.simulated), r.relation, repr(r.theory), repr(r.upper),
                         repr(r.tolerance), repr(e.se), repr(float(e.dof)), e.seeds, repr(detects(r)), verdict(r),
                         r.source])
    return out.getvalue()


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}", "±": r"$\pm$", "×": r"$\times$", "<=": r"$\le$",
        ">=": r"$\ge$"}


def _tex(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        two = text[i:i + 2]
        if two in _TEX:
            out.append(_TEX[two])
            i += 2
        else:
            out.append(_TEX.get(text[i], text[i]))
            i += 1
    return "".join(out)


def to_latex(rows: Sequence[Row]) -> str:
    """A booktabs tabular of the printed columns (\\usepackage{booktabs})."""
    keys = ["quantity", "where", "simulated", "relation", "theory", "detects", "verdict", "theory source"]
    lines = [r"\begin{tabular}{" + "l" * len(keys) + "}", r"\toprule",
             " & ".join(_tex(k) for k in keys) + r" \\", r"\midrule"]
    lines += [" & ".join(_tex(str(_cells(r)[k])) for k in keys) + r" \\" for r in rows]
    return "\n".join(lines + [r"\bottomrule", r"\end{tabular}", ""])


def write_tables(rows: Sequence[Row], stem: str) -> list[str]:
    """Writes `stem`.txt (as printed), .csv and .tex atomically; returns the paths."""
    paths = []
    for ext, text in ((".txt", format_table(rows) + "\n"), (".csv", to_csv(rows)), (".tex", to_latex(rows))):
        with atomic_path(stem + ext) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        paths.append(stem + ext)
    return paths


def series(da: xr.DataArray) -> xr.DataArray:
    """A recorded observable averaged over every axis but `step` (seeds, systems, ...): one curve in time."""
    return da.mean([d for d in da.dims if d != "step"])


def stationary(da: xr.DataArray, burn_in: float = 0.5) -> Estimate:
    """The stationary mean of a recorded observable: its records after the first `burn_in` fraction of steps,
    averaged over every axis but `step` and `seed`, with the standard error of `stats.batch_means` (across seeds'
    time averages with many seeds, else across batch means longer than the autocorrelation time)."""
    tail = da.isel(step=slice(int(da.sizes["step"] * burn_in), None))
    other = [d for d in tail.dims if d not in ("step", "seed")]
    tail = tail.mean(other) if other else tail
    chains = tail.transpose("seed", "step").values if "seed" in tail.dims else tail.values[None]
    return stats.batch_means(chains)


def halfwidth(se: float, dof: float) -> float:
    """Half-width of the two-sided (1 - LEVEL) Student interval (3 standard errors when dof is large)."""
    return stats.critical(dof) * se if math.isfinite(se) else math.nan


def points(ds: xr.Dataset, grid: Sequence[str]):
    """(label, selection) for every grid point: the label reads like `particles=64 temperature=0.1`."""
    if not grid:
        yield "", {}
        return
    for idx in np.ndindex(*(ds.sizes[g] for g in grid)):
        sel = {g: ds[g].values[i] for g, i in zip(grid, idx)}
        yield " ".join(f"{g}={v}" for g, v in sel.items()), sel


def per_point(ds: xr.Dataset, point_rows) -> list[Row]:
    """The rows of `point_rows(point_ds, label, config, selection)` for every grid point of a sweep, in order;
    config is the base config (a dict) and label reads like `dim=16` ("" without a grid)."""
    grid = list(json.loads(ds.attrs.get("grid", "{}")))
    cfg = json.loads(ds.attrs["config"])
    return [row for label, sel in points(ds, grid) for row in point_rows(ds.sel(sel), label, cfg, sel)]


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Least-squares slope of log y on log x and its residual standard error (NaN with fewer than 3 points)."""
    e = stats.loglog_fit(x, [Estimate(float(v), math.nan, 0, 0) for v in y])
    return e.mean, (e.se if len(x) >= 3 else math.nan)

