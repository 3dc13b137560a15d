"""A user's own data with a config of three keys (data.path, outcome, group), as README.md's "Your own
data" runs it: other column names, another scale, integer group labels, tied values, groups whose rows
are all equal and one-row groups. The run goes to the end with the defaults (priors scaled to the data);
complete and partial pooling lie within 4 MCSE of the exact posterior under those priors on every group,
and no pooling, fitted to the groups of unequal rows, within 4 MCSE of its own on those."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from arviz_stats import mcse

from exact import partial_pooling, single_normal
from helpers import run_snakemake

TOLERANCE_MCSE = 4
SIZES = {101: 1, 202: 2, 303: 4, 404: 7, 505: 12, 606: 1, 707: 3, 808: 2}  # integer labels, one-row groups
TIED = ["707", "808"]  # schools whose pupils all have the same score


def scores(path):
    """Scores in the thousands, rounded to hundreds (so values repeat), by school; in the TIED schools
    every pupil has the same score."""
    rng = np.random.default_rng(11)
    rows = []
    for school, size in SIZES.items():
        mean = 5000 + 800 * rng.standard_normal()
        draws = np.full(size, mean) if str(school) in TIED else mean + 1500 * rng.standard_normal(size)
        rows += [(school, round(value, -2)) for value in draws]
    frame = pd.DataFrame(rows, columns=["school", "pupil_score"])
    by_school = frame.groupby("school")["pupil_score"]
    all_equal = (by_school.nunique() == 1) & (by_school.size() > 1)
    assert frame["pupil_score"].duplicated().any() and sorted(map(str, all_equal[all_equal].index)) == TIED
    frame.to_csv(path, index=False)
    return frame


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("own")
    frame = scores(workdir / "scores.csv")
    config = {"data": {"path": str(workdir / "scores.csv")}, "outcome": "pupil_score", "group": "school"}
    result = run_snakemake(workdir / "run", config, "--cores", "2")
    report = run_snakemake(workdir / "run", config, "--report", "results/report.html")
    return workdir / "run", frame, result, report


def posterior(run_dir, model):
    tree = xr.load_datatree(run_dir / "results" / "all" / model / "posterior.nc")
    priors = json.loads(tree.attrs["settings"])["models"][model]["priors"]
    draws = tree["posterior"].to_dataset()
    return draws.mean(("chain", "draw")), mcse(draws, method="mean"), priors


def assert_close(means, errors, exact, name, site=None):
    selector = {} if site is None else {"site": site}
    estimate, error = float(means[name].sel(selector)), float(errors[name].sel(selector))
    assert abs(estimate - exact) <= TOLERANCE_MCSE * error, (name, selector, estimate, exact, error)


@pytest.mark.slow
def test_three_keys_run_to_a_full_report(run):
    run_dir, frame, result, report = run
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert report.returncode == 0, (report.stdout + report.stderr)[-4000:]
    assert "Priors scaled to 'pupil_score'" in output
    rows = pd.read_csv(run_dir / "results" / "all" / "data.csv", dtype={"school": str})
    assert sorted(set(rows["school"])) == sorted(map(str, SIZES)) and len(rows) == len(frame)
    assert (run_dir / "results" / "convergence_gate.txt").read_text() == "every fit passed\n"
    html = (run_dir / "results" / "report.html").read_text(encoding="utf-8")
    assert "scaled to" in html and "pupil_score" in html


@pytest.mark.slow
def test_priors_are_scaled_to_the_outcome(run):
    run_dir, frame, *_ = run
    mean, sd = float(f"{frame['pupil_score'].mean():.3g}"), float(f"{frame['pupil_score'].std():.3g}")
    location = {"dist": "Normal", "mu": mean, "sigma": float(f"{2.5 * sd:.3g}")}
    scale = {"dist": "Exponential", "lam": float(f"{1 / sd:.3g}")}
    assert posterior(run_dir, "complete_pooling")[2] == {"mu": location, "sigma": scale}
    assert posterior(run_dir, "no_pooling")[2] == {"mu": location, "sigma": scale}
    expected = {"hyper_mu": location, "within_variability": scale, "between_variability": scale}
    assert posterior(run_dir, "partial_pooling")[2] == expected


@pytest.mark.slow
def test_complete_and_partial_pooling_are_exact_under_the_scaled_priors(run):
    run_dir, frame, *_ = run
    means, errors, priors = posterior(run_dir, "complete_pooling")
    exact = single_normal(frame["pupil_score"], priors["mu"]["mu"], priors["mu"]["sigma"], priors["sigma"]["lam"])
    for name in ("mu", "sigma"):
        assert_close(means, errors, exact[name], name)
    means, errors, priors = posterior(run_dir, "partial_pooling")
    sites = [str(site) for site in means["site"].values]
    groups = [frame.loc[frame["school"].astype(str) == site, "pupil_score"].to_numpy() for site in sites]
    hyper = priors["hyper_mu"]
    rates = priors["within_variability"]["lam"], priors["between_variability"]["lam"]
    exact = partial_pooling(groups, hyper["mu"], hyper["sigma"], *rates)
    for name in ("hyper_mu", "within_variability", "between_variability"):
        assert_close(means, errors, exact[name], name)
    for site, value in zip(sites, exact["mu"]):
        assert_close(means, errors, value, "mu", site)


@pytest.mark.slow
def test_no_pooling_leaves_out_the_groups_of_equal_rows_and_says_so(run):
    run_dir, frame, *_ = run
    tree = xr.load_datatree(run_dir / "results" / "all" / "no_pooling" / "posterior.nc")
    assert json.loads(tree.attrs["sites_left_out"]) == TIED
    assert sorted(tree["posterior"]["site"].values.tolist()) == sorted(set(map(str, SIZES)) - set(TIED))
    convergence = pd.read_csv(run_dir / "results" / "all" / "tables" / "convergence.csv").set_index("model")
    assert json.loads(convergence.loc["no_pooling", "sites_left_out"]) == TIED
    assert json.loads(convergence.loc["partial_pooling", "sites_left_out"]) == []
    findings = (run_dir / "results" / "findings.txt").read_text()
    assert "no_pooling on all: fitted without 2 sites whose rows are all equal" in findings and "'707'" in findings
    loo = pd.read_csv(run_dir / "results" / "all" / "tables" / "loo_comparison.csv").set_index("model")
    compared = len(frame) - sum(SIZES[int(site)] for site in TIED)
    assert loo.loc["no_pooling", "compared_on"] == f"all {compared} rows"
    for model in ("complete_pooling", "partial_pooling"):
        assert loo.loc[model, "compared_on"] == f"{compared} of its {len(frame)} rows: those every model was fitted to"
    assert (loo[["k_good", "k_bad", "k_very_bad"]].sum(axis=1) == compared).all()
    shrinkage = pd.read_csv(run_dir / "results" / "all" / "tables" / "shrinkage.csv", dtype={"site": str})
    assert shrinkage.set_index("site").loc[TIED, "no_pooling_mean"].isna().all()


@pytest.mark.slow
def test_no_pooling_is_exact_on_the_groups_it_was_fitted_to(run):
    """Each group of unequal rows alone: a Normal with its own mean and sd under the scaled priors."""
    run_dir, frame, *_ = run
    means, errors, priors = posterior(run_dir, "no_pooling")
    for school, size in SIZES.items():
        if size < 2 or str(school) in TIED:
            continue
        rows = frame.loc[frame["school"] == school, "pupil_score"]
        exact = single_normal(rows, priors["mu"]["mu"], priors["mu"]["sigma"], priors["sigma"]["lam"])
        for name in ("mu", "sigma"):
            assert_close(means, errors, exact[name], name, str(school))
