"""The run's findings, on the report's front page: failed fits, priors that disagree with the data and
uncalibrated predictions, each named with its selection and model; nothing where nothing is wrong."""

import tomllib

import pandas as pd

from findings import findings, software
from helpers import ROOT


def write(path, rows):
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def convergence(tmp_path, failed: bool):
    fine = {"divergences": 0, "failures": "none", "likely_cause": "", "passed": True, "sites_left_out": "[]"}
    no_pooling = {"model": "no_pooling", **fine}
    if failed:
        no_pooling |= {"failures": "sigma[Oslo]: ess_bulk 80 < 400", "likely_cause": "too few draws", "passed": False}
        no_pooling |= {"sites_left_out": '["Kassel", "METU"]'}
    passed = {"model": "complete_pooling", **fine}
    return write(tmp_path / f"convergence_{failed}.csv", [passed, no_pooling])


def priors(tmp_path):
    data = {"model": "data", "q01": 22, "q99": 60, "data_inside_99": None, "conflict": None}
    predictive = [data, {"model": "complete_pooling", "q01": -9, "q99": 9, "data_inside_99": 0.0, "conflict": True}]
    sensitivity = [
        {
            "model": "no_pooling",
            "parameter": "mu[Oslo]",
            "diagnosis": "potential prior-data conflict",
            "fit_passed": True,
        },
        {"model": "no_pooling", "parameter": "sigma[Oslo]", "diagnosis": "✓", "fit_passed": True},
    ]
    return write(tmp_path / "predictive.csv", predictive), write(tmp_path / "sensitivity.csv", sensitivity)


def loo_pit(tmp_path):
    rows = [
        {"model": "complete_pooling", "uniformity_p": 0.0007, "note": ""},
        {"model": "no_pooling", "uniformity_p": 0.31, "note": ""},
        {"model": "partial_pooling", "uniformity_p": None, "note": "stored per site: not tested"},
    ]
    return write(tmp_path / "loo_pit.csv", rows)


def comparisons(tmp_path):
    loo = [
        {"model": "partial_pooling", "unreliable": 0, "k_threshold": 0.7, "remedy": "PSIS", "reliable": True},
        {"model": "no_pooling", "unreliable": 3, "k_threshold": 0.7, "remedy": "exact refits", "reliable": False},
    ]
    logo = [
        {"model": "partial_pooling", "sites": 5, "failed_folds": 0},
        {"model": "complete_pooling", "sites": 5, "failed_folds": 2},
    ]
    return [("first5", write(tmp_path / "loo.csv", loo))], [("first5", write(tmp_path / "logo.csv", logo))]


def test_every_finding_is_named(tmp_path):
    out = tmp_path / "findings.txt"
    findings(
        [("first5", convergence(tmp_path, failed=True))],
        out,
        [("first5", *priors(tmp_path))],
        [("first5", loo_pit(tmp_path))],
        *comparisons(tmp_path),
        "scontrol",
    )
    text = out.read_text()
    gate, left_out, prior, calibration, comparison, software = text.strip().split("\n\n")
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert software.startswith(f"Produced by hierarchical-models-workflow {version} (python ")
    assert gate.splitlines()[1:] == [
        "  no_pooling on first5: sigma[Oslo]: ess_bulk 80 < 400",
        "      likely cause: too few draws",
    ]
    assert "FAILED, marked as failed wherever their results appear (1):" in gate and "complete_pooling" not in gate
    assert left_out.splitlines()[1:] == [
        "  no_pooling on first5: fitted without 2 sites whose rows are all equal (their own sd has no proper "
        "posterior): 'Kassel', 'METU'"
    ]
    assert (
        "disagree with the data; formulas' priors are not checked (2):" in prior
        and "first5: complete_pooling: only 0% of the observed scontrol" in prior
    )
    assert "first5: no_pooling: potential prior-data conflict for mu[Oslo] " in prior and "sigma[Oslo]" not in prior
    assert calibration.splitlines()[1:] == [
        "  first5: complete_pooling: p = 0.0007",
        "  first5: partial_pooling: not tested (stored per site: not tested)",
    ]
    assert "departs from uniform (p < 0.05) or was not tested" in calibration
    assert comparison.splitlines()[1:] == [
        "  first5: no_pooling: PSIS-LOO not reliable (3 rows with Pareto k above 0.7 after the remedy: exact refits)",
        "  first5: complete_pooling: 2 of 5 leave-one-site-out folds failed the convergence gate "
        "(tables/leave_one_site_out.csv)",
    ]


def test_calibration_says_which_models_it_tested(tmp_path):
    """A run whose LOO-PIT was tested for no model (e.g. thinned predictions) never reads as calibrated."""
    table = [{"model": "partial_pooling", "uniformity_p": None, "note": "predictions thinned (storage)"}]
    out = tmp_path / "findings.txt"
    tables = [("all", convergence(tmp_path, failed=False))]
    findings(tables, out, [], [("all", write(tmp_path / "pit.csv", table))], [], [], "scontrol")
    calibration = out.read_text().split("\n\n")[3]
    assert "is uniform" not in calibration
    assert "  all: partial_pooling: not tested (predictions thinned (storage))" in calibration
    tested = [{"model": name, "uniformity_p": 0.5, "note": ""} for name in ("complete_pooling", "no_pooling")]
    findings(tables, out, [], [("all", write(tmp_path / "pit.csv", tested))], [], [], "scontrol")
    assert "every model (all: complete_pooling, no_pooling) is uniform" in out.read_text()


def test_nothing_is_flagged_where_nothing_is_wrong(tmp_path):
    out = tmp_path / "findings.txt"
    findings([("all", convergence(tmp_path, failed=False))], out)
    assert out.read_text().splitlines()[::2] == [
        "Convergence gate (tables/convergence.csv, tables/formula_convergence.csv): every fit passed.",
        "Sites left out of a model (tables/convergence.csv): every model was fitted to every site of its selection.",
        "Priors (tables/prior_predictive.csv, tables/prior_sensitivity.csv): "
        "not checked (criticism.prior_checks: false).",
        "Calibration (tables/loo_pit.csv, figures/loo_pit.png): not checked (criticism.calibration: false).",
        "Model comparison (tables/loo_comparison.csv, tables/leave_one_site_out_comparison.csv): "
        "every PSIS-LOO estimate (none) is reliable (leave one site out not run).",
        software(),
    ]


def test_the_gate_repeats_the_findings_where_they_flag_anything(tmp_path):
    from convergence_gate import convergence_gate

    tables = [("all", convergence(tmp_path, failed=False))]
    for flagged in (False, True):
        out = tmp_path / f"findings_{flagged}.txt"
        priors_checked = [("all", *priors(tmp_path))] if flagged else []
        findings(tables, out, priors_checked, [], [], [], "scontrol")
        convergence_gate(tables, tmp_path / "gate.txt", "stop", out, tmp_path / "gate.log")
        log = (tmp_path / "gate.log").read_text()
        assert ("WARNING hbm: findings of this run" in log) == flagged
        assert ("all: no_pooling: potential prior-data conflict for mu[Oslo]" in log) == flagged
        assert (tmp_path / "gate.txt").read_text() == "every fit passed\n"


def test_each_check_names_what_it_covered(tmp_path):
    """Where nothing is flagged, each line says on which selections and models it looked."""
    out = tmp_path / "findings.txt"
    loo = [{"model": name, "unreliable": 0, "k_threshold": 0.7, "remedy": "PSIS", "reliable": True} for name in "ab"]
    predictive = [{"model": "data", "data_inside_99": None, "conflict": None}] + [
        {"model": name, "q01": 30, "q99": 50, "data_inside_99": 1.0, "conflict": False} for name in "ab"
    ]
    sensitivity = [{"model": "a", "parameter": "mu", "diagnosis": "✓", "fit_passed": True}]
    findings(
        [("all", convergence(tmp_path, failed=False))],
        out,
        [("all", write(tmp_path / "p.csv", predictive), write(tmp_path / "s.csv", sensitivity))],
        [],
        [("all", write(tmp_path / "loo.csv", loo))],
        [],
        "scontrol",
    )
    text = out.read_text()
    assert "no model's priors (all: a, b) disagree with the data; formulas' priors are not checked." in text
    assert "every PSIS-LOO estimate (all: a, b) is reliable (leave one site out not run)." in text
