"""A model that fails the convergence gate never takes the other models' results with it: every
other artifact is written, the failure is shown, and under `on_failure: stop` the run ends non-zero
at the end, naming the model, selection, parameter, value and likely cause."""

import zipfile

import pandas as pd
import pytest

from helpers import load_config, run_snakemake


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory):
    config = load_config("tests/config/test.yaml")
    config["selections"] = {"first5": config["selections"]["first5"]}
    config["sampling"].update(draws=1000, tune=500)
    config["convergence"] = {"min_ess": 400, "on_failure": "stop"}
    config["models"]["no_pooling"]["sampling"] = {"draws": 20, "tune": 1}  # far too few for the gate
    config["formulas"] = {"partial_pooling_bambi": config["formulas"]["partial_pooling_bambi"]}  # one that passes
    workdir = tmp_path_factory.mktemp("failed")
    return workdir, run_snakemake(workdir, config, "--cores", "2")


@pytest.mark.slow
def test_the_run_fails_at_the_end_naming_the_failure(failed_run):
    workdir, result = failed_run
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "1 fit(s) failed the convergence gate" in output, output[-3000:]
    assert "no_pooling on first5: sigma[" in output and "ess_bulk" in output
    assert "likely cause: too few draws for the gate: 2 chains x 20 draws after 1 tuning steps" in output


@pytest.mark.slow
def test_every_other_result_is_written(failed_run):
    workdir, _ = failed_run
    base = workdir / "results" / "first5"
    for model in ("complete_pooling", "partial_pooling", "no_pooling"):
        for name in ("posterior.nc", "summary.csv", "trace.png", "ppc.png"):
            assert (base / model / name).is_file(), (model, name)
    for name in ("forest.png", "shrinkage.png", "icc.png", "new_site_Zurich.png"):
        assert (base / "figures" / name).is_file(), name
    for name in ("posterior.nc", "summary.csv", "trace.png", "ppc.png", "new_site_Zurich.nc", "new_site_Zurich.png"):
        assert (base / "formulas" / "partial_pooling_bambi" / name).is_file(), name
    assert pd.read_csv(base / "tables" / "formula_convergence.csv")["passed"].all()
    verdict = pd.read_csv(base / "tables" / "convergence.csv").set_index("model")
    assert list(verdict["passed"]) == [True, False, True]
    assert "too few draws" in verdict.loc["no_pooling", "likely_cause"]
    assert not (workdir / "results" / "convergence_gate.txt").exists()
    findings = (workdir / "results" / "findings.txt").read_text()
    assert "Convergence gate (tables/convergence.csv, tables/formula_convergence.csv): FAILED" in findings
    assert "  no_pooling on first5: sigma[" in findings and "likely cause: too few draws" in findings


@pytest.mark.slow
def test_the_report_shows_the_failure(failed_run):
    workdir, _ = failed_run
    result = run_snakemake(workdir, workdir / "config.yaml", "--report", "results/report.zip")
    assert result.returncode == 0, result.stderr[-3000:]
    with zipfile.ZipFile(workdir / "results" / "report.zip") as report:
        tables = [report.read(name).decode() for name in report.namelist() if name.endswith("convergence.csv")]
        front_page = report.read("report/report.html").decode()
    models = [table for table in tables if "no_pooling" in table]
    assert len(tables) == 2 and len(models) == 1 and "too few draws" in models[0]
    assert "Findings: what to check" in front_page and "no_pooling on first5: sigma[" in front_page


def test_a_diagnostic_that_cannot_be_computed_fails_the_gate():
    from hbm.sampling import convergence_failures

    table = pd.DataFrame({"r_hat": [1.0, float("nan")], "ess_bulk": [900, float("nan")], "ess_tail": [800, 700]})
    gate = {"max_rhat": 1.01, "min_ess": 400, "max_divergences": 0}
    failures = convergence_failures(table.set_axis(["mu", "sigma"]), 0, gate)
    assert failures == ["sigma: r_hat nan > 1.01", "sigma: ess_bulk nan < 400"]
