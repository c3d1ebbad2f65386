"""The verdict of each relation kind, the detects column, and the exported tables."""

import csv
import io
import math

import pytest

from dynamics import report, stats
from dynamics.stats import Estimate

MANY = Estimate(1.0, 0.01, 99, 100)  # a well-measured value: 1 +- 0.01 from 100 seeds


@pytest.mark.parametrize("theory, expected", [(1.0, "agrees"), (1.1, "DIFFERS"), (0.9, "DIFFERS")])
def test_equality_verdicts(theory, expected):
    assert report.verdict(report.equal("q", "", MANY, theory, "")) == expected


def test_equality_detects_column_is_its_power():
    """detects = (t_0.9985 + t_0.8) se / |theory| = (2.97 + 0.84) * 0.01 / 1, about 3.8%."""
    row = report.equal("q", "", MANY, 1.0, "")
    assert report.detects(row) == pytest.approx(stats.detectable(0.01, 99))
    assert 0.037 < report.detects(row) < 0.039


def test_equality_with_too_little_power_is_inconclusive_with_seeds():
    weak = Estimate(1.0, 0.2, 9, 10)
    verdict = report.verdict(report.equal("q", "", weak, 1.05, ""))
    assert verdict.startswith("inconclusive: would miss a") and "run --seeds=" in verdict


def test_a_stated_systematic_bias_widens_the_tolerance():
    row = report.equal("q", "", MANY, 1.05, "", bias=0.03)
    assert report.verdict(row) == "agrees"
    assert row.tolerance == pytest.approx(MANY.halfwidth + 0.03)


@pytest.mark.parametrize("limit, expected", [(1.5, "holds"), (20.0, "holds, loose ×20"), (0.9, "VIOLATED")])
def test_upper_bound_verdicts_report_slack(limit, expected):
    assert report.verdict(report.bound("q", "", MANY, limit, "")) == expected


def test_bound_within_noise_is_inconclusive():
    assert report.verdict(report.bound("q", "", MANY, 0.995, "")).startswith("inconclusive")


@pytest.mark.parametrize("limit, expected", [(0.8, "holds"), (0.05, "holds, loose ×20"), (1.1, "VIOLATED")])
def test_lower_bound_verdicts_report_slack(limit, expected):
    assert report.verdict(report.bound("q", "", MANY, limit, "", upper=False)) == expected


@pytest.mark.parametrize("low, high, expected", [(0.5, 2.0, "holds"), (1.1, 2.0, "VIOLATED"), (0.2, 0.9, "VIOLATED")])
def test_range_verdicts(low, high, expected):
    assert report.verdict(report.within("q", "", MANY, low, high, "")) == expected


@pytest.mark.parametrize("than, below, expected", [(0.9, False, "holds"), (1.1, False, "VIOLATED"),
                                                   (1.1, True, "holds"), (0.9, True, "VIOLATED")])
def test_ordering_verdicts(than, below, expected):
    assert report.verdict(report.exceeds("q", "", MANY, than, "", below=below)) == expected


def test_ordering_within_noise_is_inconclusive():
    assert report.verdict(report.exceeds("q", "", MANY, 0.999, "")).startswith("inconclusive")


def test_an_exact_number_is_judged_by_its_round_off_tolerance():
    assert report.verdict(report.Row("q", "", 1.0 + 1e-13, 1.0, "=", 1e-12)) == "agrees"
    assert report.verdict(report.Row("q", "", 1.0 + 1e-11, 1.0, "=", 1e-12)) == "DIFFERS"


def test_shown_rows_have_no_verdict():
    assert report.verdict(report.shown("q", "", 1.0, 2.0, "a limit, not a number a finite run meets")) == "-"


@pytest.mark.parametrize("value, expected", [(math.inf, "DIVERGED"), (math.nan, "n/a")])
def test_nonfinite_simulation(value, expected):
    assert report.verdict(report.equal("q", "", Estimate(value, 0.1, 9, 10), 1.0, "")) == expected


ROWS = [report.equal("loss", "N=8", MANY, 1.0, "exact, discrete time"),
        report.bound("error", "N=8", MANY, 30.0, "Theorem 1: 2B/N"),
        report.equal("var", "N=8", Estimate(1.0, 0.3, 3, 4), 1.2, "5 & 10% of $x_1$"),
        report.shown("rate", "-", 0.5, math.nan, "alpha unknown")]


def test_csv_holds_every_row_with_its_printed_verdict():
    rows = list(csv.DictReader(io.StringIO(report.to_csv(ROWS))))
    table = report.format_table(ROWS).splitlines()[2:]
    assert [r["verdict"] for r in rows] == [report.verdict(r) for r in ROWS]
    assert all(r["verdict"] in line for r, line in zip(rows, table))
    assert float(rows[0]["se"]) == 0.01 and rows[3]["relation"] == "~"


def test_latex_is_a_booktabs_tabular_with_escaped_text():
    tex = report.to_latex(ROWS)
    assert tex.startswith("\\begin{tabular}") and "\\toprule" in tex and "\\bottomrule" in tex
    assert tex.count("\\\\") == len(ROWS) + 1
    assert "5 \\& 10\\% of \\$x\\_1\\$" in tex and "holds, loose $\\times$30" in tex


def test_write_tables_writes_txt_csv_and_tex(tmp_path):
    paths = report.write_tables(ROWS, str(tmp_path / "comparison"))
    assert sorted(p.rsplit("/", 1)[1] for p in paths) == ["comparison.csv", "comparison.tex", "comparison.txt"]
    assert (tmp_path / "comparison.txt").read_text().strip() == report.format_table(ROWS)


def test_a_range_edge_within_noise_asks_for_the_seeds_that_resolve_the_distance():
    """Outside [1, 2] by 0.05 with se 0.03: the seeds asked for put the interval on one side of the edge, not a
    number sized for a 10% error of the edge value."""
    row = report.within("q", "", Estimate(2.05, 0.03, 9, 10), 1.0, 2.0, "")
    verdict = report.verdict(row)
    assert verdict.startswith("inconclusive: at the range's edge")
    k = int(verdict.split("--seeds=")[1])
    assert k == stats.seeds_needed(row.estimate, 0.05) and k < 200
