"""The test config through the SLURM profile on a real (single-node) SLURM cluster: every job goes
through SLURM, every artifact exists, the draws equal a local run's, and the report is rebuilt locally
without refitting. `.ci/slurm-up` starts the cluster; in CI this test must run, elsewhere it is
skipped when no cluster answers."""

import os
import re
import shutil
import subprocess

import numpy as np
import pytest
import xarray as xr

from helpers import FORMULAS, MODELS, ROOT, SELECTIONS, changed, load_config, run_snakemake, workflow_outputs


def slurm_is_up() -> bool:
    if not shutil.which("sinfo"):
        return False
    states = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True).stdout
    return bool(re.search(r"idle|mixed|allocated", states))


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not slurm_is_up() and not os.environ.get("CI"), reason="no SLURM cluster answers (start one with .ci/slurm-up)"
    ),
]
CLUSTER_ARGS = [
    "--workflow-profile", str(ROOT / "profiles" / "slurm"),
    "--slurm-status-command", "squeue",  # the local cluster keeps no accounting database for sacct
    "--slurm-init-seconds-before-status-checks", "1",
]  # fmt: skip


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory):
    assert slurm_is_up(), "SLURM is not running: start it with .ci/slurm-up"
    workdir = tmp_path_factory.mktemp("slurm")
    result = run_snakemake(workdir, cluster_config(), *CLUSTER_ARGS, timeout=2400, check=True)
    return workdir, result.stdout + result.stderr


def cluster_config() -> dict:
    """The test config with every step on: leave one site out too."""
    return changed(load_config("tests/config/test.yaml"), "criticism", "leave_one_site_out", True)


def test_every_cluster_job_went_through_slurm(cluster_run):
    workdir, output = cluster_run
    submitted = re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (\S+)\)", output)
    finished = re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", output)
    cluster_jobs = [
        rule for rule in finished if rule not in {"all", "subset", "findings", "convergence_gate"}
    ]  # localrules
    assert len(submitted) == len(cluster_jobs) > 0, (submitted, finished)
    assert len({slurm_id for _, slurm_id, _ in submitted}) == len(submitted)
    for _, slurm_id, log in submitted:
        assert log.endswith(f"/{slurm_id}.log") and os.path.exists(log), log
    assert sorted(set(cluster_jobs)) == sorted(
        {
            "fit",
            "predict_new_site",
            "tables",
            "loo_comparison",
            "plot_fits",
            "plot_checks",
            "plot_selection",
            "plot_all_sites",
            "formula_tables",
            "plot_formulas",
            "fit_formula_predicting",  # both formulas of the test config predict new sites
            "calibration",
            "prior_checks",
            "leave_one_site_out",
            "leave_one_site_out_summary",
        }
    )


def test_every_artifact_exists(cluster_run):
    workdir, _ = cluster_run
    expected = workflow_outputs(workdir, workdir / "config.yaml")
    missing = [str(p) for p in expected if not p.is_file() or p.stat().st_size == 0]
    assert len(expected) > 50 and not missing, missing


def test_cluster_draws_equal_local_draws(cluster_run, tmp_path):
    workdir, _ = cluster_run
    targets = [f"results/{s}/{m}/posterior.nc" for s in SELECTIONS for m in MODELS]
    targets += [f"results/{s}/formulas/{f}/posterior.nc" for s in SELECTIONS for f in FORMULAS]
    run_snakemake(tmp_path, load_config("tests/config/test.yaml"), "--cores", "2", *targets, check=True)
    for target in targets:
        with xr.open_datatree(workdir / target) as cluster, xr.open_datatree(tmp_path / target) as local:
            for name, values in cluster["posterior"].data_vars.items():
                assert np.array_equal(values.values, local["posterior"][name].values), (target, name)


def test_report_is_rebuilt_locally_without_refitting(cluster_run):
    workdir, _ = cluster_run
    fits = list((workdir / "results").rglob("posterior.nc"))
    before = {path: path.stat().st_mtime_ns for path in fits}
    result = run_snakemake(workdir, cluster_config(), "--report", "results/report.html", check=True)
    assert "submitted with SLURM" not in result.stdout + result.stderr
    assert (workdir / "results" / "report.html").stat().st_size > 100_000
    assert before == {path: path.stat().st_mtime_ns for path in fits}
