"""PSIS-LOO's remedy and diagnostics: the exact no-pooling leave-one-out densities equal a direct
two-dimensional quadrature over the site's mean and sd, and the comparison table carries every
model's Pareto k bands, remedy and reliability."""

import functools
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.integrate import quad

from fit import fit
from hbm import data as hdata
from hbm import io
from hbm import loo as hloo
from hbm.data import Grouped
from helpers import ROOT, radon
from loo_comparison import loo_comparison

PRIORS = {"mu": {"dist": "Normal", "mu": 0.5, "sigma": 3.0}, "sigma": {"dist": "Exponential", "lam": 1.5}}


def grouped(groups):
    y = np.concatenate(groups)
    idx = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
    return Grouped(y=y, site_idx=idx, sites=[f"s{j}" for j in range(len(groups))], obs_id=np.arange(y.size))


@functools.cache
def brute_force_log_marginal(values: tuple):
    """log ∫∫ N(mu | 0.5, 3) Exp(sd | 1.5) Π N(y | mu, sd) dmu dsd by nested adaptive quadrature."""
    y = np.array(values)

    def normal(x, mean, sd):
        return math.exp(-0.5 * ((x - mean) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))

    def over_mu(sd):  # mu = mean(y) + sd * t keeps the integrand's width near 1 however small sd is
        def integrand(t):
            mu = y.mean() + sd * t
            return normal(mu, 0.5, 3.0) * math.prod(normal(value, mu, sd) for value in y)

        return 1.5 * np.exp(-1.5 * sd) * sd * quad(integrand, -np.inf, np.inf, epsrel=1e-8)[0]

    return np.log(quad(over_mu, 0, 40, limit=200, epsrel=1e-8)[0])


@pytest.mark.parametrize("level", ["rows", "sites"])
def test_exact_no_pooling_loo_equals_direct_quadrature(level):
    groups = [np.array([1.2, 0.4, 2.1]), np.array([-0.7]), np.array([0.9, 1.1])]
    data = grouped(groups)
    positions = np.arange(data.y.size) if level == "rows" else np.arange(len(groups))
    exact = hloo._exact_single_normal(data, PRIORS, positions, level, pooled=False)
    for position, value in zip(positions, exact):
        if level == "sites":
            expected = brute_force_log_marginal(tuple(groups[position]))
        else:
            site = groups[data.site_idx[position]]
            rest = np.delete(site, position - np.flatnonzero(data.site_idx == data.site_idx[position])[0])
            expected = brute_force_log_marginal(tuple(site)) - (
                brute_force_log_marginal(tuple(rest)) if rest.size else 0.0
            )
        assert value == pytest.approx(expected, abs=1e-5), (level, position)


@pytest.mark.parametrize("level", ["rows", "sites"])
def test_exact_complete_pooling_loo_equals_direct_quadrature(level):
    groups = [np.array([1.2, 0.4, 2.1]), np.array([-0.7]), np.array([0.9, 1.1])]
    data = grouped(groups)
    every = np.concatenate(groups)
    positions = np.arange(every.size) if level == "rows" else np.arange(len(groups))
    exact = hloo._exact_single_normal(data, PRIORS, positions, level, pooled=True)
    for position, value in zip(positions, exact):
        left_out = data.site_idx == position if level == "sites" else np.arange(every.size) == position
        expected = brute_force_log_marginal(tuple(every)) - brute_force_log_marginal(tuple(every[~left_out]))
        assert value == pytest.approx(expected, abs=1e-5), (level, position)


def test_radon_comparison_is_reliable_and_says_how(tmp_path):
    """On radon's tiny counties no pooling's PSIS has Pareto k above the threshold; those rows are
    computed exactly, and every model's bands, remedy and reliability are in the table."""
    frame = hdata.read_table(radon(), "log_radon", "county")
    sites = [site for site in dict.fromkeys(frame["county"]) if site != "HENNEPIN"]
    io.write_csv(hdata.subset(frame, "log_radon", "county", sites)[0], tmp_path / "data.csv")
    config = yaml.safe_load((ROOT / "config" / "radon.yaml").read_text())
    config["convergence"] = {"max_rhat": 1.01, "min_ess": 400, "max_divergences": 0, "on_failure": "warn"}
    config["storage"] = {"pointwise": "rows", "max_values": 50_000_000}
    config["sampling"].update(target_accept=0.95, sampler="nutpie", backend="numba")
    paths = {}
    for name in config["models"]:
        paths[name] = tmp_path / f"{name}.nc"
        fit(tmp_path / "data.csv", paths[name], name, "radon", config, cores=2)
    loo_comparison(tmp_path / "data.csv", paths, tmp_path / "loo.csv", config)
    table = pd.read_csv(tmp_path / "loo.csv").set_index("model")
    assert table["reliable"].all()
    assert table.loc["no_pooling", "exact"] > 0
    assert table.loc["no_pooling", "exact"] == table.loc["no_pooling", ["k_bad", "k_very_bad"]].sum()
    assert (table[["k_good", "k_bad", "k_very_bad"]].sum(axis=1) == 814).all()
    assert "computed exactly by quadrature" in table.loc["no_pooling", "remedy"]


def test_a_formulas_rows_with_their_sites_effects_integrated_out_are_conditionally_normal():
    """`formulas.loo_log_likelihood` of a row: given the parameters its site's rows are jointly Normal
    (covariance σ² I + Z diag(τ²) Zᵀ), so the row given the site's other rows is Normal with the
    textbook conditional mean and variance, computed here directly."""
    from hbm import formulas

    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"g": np.repeat(list("abcd"), [1, 2, 5, 8]), "x": rng.normal(size=16)})
    frame["y"] = 1 + frame["x"] + rng.normal(size=16)
    model = formulas.build({"formula": "y ~ 1 + x + (x|g)"}, frame, {}, "g")
    draws = formulas.reported(model.prior_predictive(draws=3, random_seed=2)["prior"].to_dataset())
    positions = [0, 1, 2, 10]  # a one-row site, both rows of a two-row site, a row of a larger one
    values = formulas.loo_log_likelihood(model, {}, draws, frame, positions, "y", "g")
    for column, i in enumerate(positions):
        rows = np.flatnonzero(frame["g"] == frame["g"][i])
        others = rows[rows != i]  # the site's other rows
        z = np.column_stack([np.ones(len(rows)), frame["x"][rows]])
        for d in range(3):
            p = draws.isel(chain=0, draw=d)
            mean = float(p["Intercept"]) + float(p["x"]) * frame["x"][rows].to_numpy()
            cov = (
                float(p["sigma"]) ** 2 * np.eye(len(rows))
                + z @ np.diag([float(p["1|g_sigma"]) ** 2, float(p["x|g_sigma"]) ** 2]) @ z.T
            )
            at, rest = rows == i, rows != i
            gain = np.linalg.solve(cov[np.ix_(rest, rest)], cov[np.ix_(rest, at)])  # empty for a one-row site
            m = (mean[at] + gain.T @ (frame["y"][others].to_numpy() - mean[rest])).item()
            v = (cov[np.ix_(at, at)] - cov[np.ix_(at, rest)] @ gain).item()
            expected = -0.5 * math.log(2 * math.pi * v) - (frame["y"][i] - m) ** 2 / (2 * v)
            assert values[0, d, column] == pytest.approx(expected, abs=1e-9), (i, d)


@pytest.mark.slow
def test_radon_formula_rows_beyond_psis_are_sampled_again_with_the_county_effects_integrated_out(tmp_path):
    """`log_radon ~ 1 + floor + (1 + floor|county)` on radon: plain PSIS leaves rows of tiny counties with
    Pareto k above the threshold; those are importance sampled again with the county's intercept and
    slope integrated out, which brings them under it, and the table says so."""
    from fit_formula import fit_formula

    frame = hdata.read_table(radon(), "log_radon", "county")
    sites = [site for site in dict.fromkeys(frame["county"]) if site != "HENNEPIN"]
    io.write_csv(hdata.subset(frame, "log_radon", "county", sites)[0], tmp_path / "data.csv")
    config = yaml.safe_load((ROOT / "config" / "radon.yaml").read_text())
    spec = {"formula": "log_radon ~ 1 + floor + (1 + floor|county)", "priors": "default"}
    config |= {
        "formulas": {"slopes": spec},
        "formula": spec,
        "storage": {"pointwise": "rows", "max_values": 50_000_000},
    }
    config["convergence"] = {"max_rhat": 1.01, "min_ess": 400, "max_divergences": 0, "on_failure": "warn"}
    config["sampling"].update(target_accept=0.95, sampler="nutpie", backend="numba")
    tree = fit_formula(radon(), tmp_path / "data.csv", tmp_path / "slopes.nc", "slopes", "radon", config, 2)
    plain = hloo.formula_loo(tree, "slopes")[1]
    assert plain["unreliable"] > 0  # else this data no longer tests the remedy
    fit(tmp_path / "data.csv", tmp_path / "pp.nc", "partial_pooling", "radon", config, cores=2)
    posteriors, formulas = {"partial_pooling": tmp_path / "pp.nc"}, {"slopes": tmp_path / "slopes.nc"}
    loo_comparison(tmp_path / "data.csv", posteriors, tmp_path / "loo.csv", config, formulas, radon())
    row = pd.read_csv(tmp_path / "loo.csv").set_index("model").loc["slopes"]
    assert (
        f"{plain['unreliable']} with k above 0.70 sampled again with the site's effects integrated out" in row["remedy"]
    )
    assert row["unreliable"] < plain["unreliable"] and row["k_bad"] + row["k_very_bad"] == plain["unreliable"]


def test_models_compared_on_common_rows_equal_arviz_on_those_rows_alone():
    """PSIS-LOO of each row uses that row's draws alone, so a formula's LOO kept to the rows every model
    has equals ArviZ's `loo` of those rows' log-likelihood, and the table says what it sums over."""
    import xarray as xr
    from arviz_stats import loo

    values = np.random.default_rng(3).normal(-1.0, 0.3, size=(2, 200, 10))
    tree = xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset({"a": (("chain", "draw"), values[..., 0])}),
            "log_likelihood": xr.Dataset(
                {"y_est": (("chain", "draw", "obs_id"), values)}, coords={"obs_id": np.arange(10) * 3}
            ),
        }
    )
    keep = [0, 3, 6, 15, 18, 21, 24, 27]
    kept, facts = hloo.formula_loo(tree, "kept", keep=keep)
    direct = loo(tree.sel(obs_id=keep))
    for field in ("elpd", "se", "p", "n_data_points"):
        assert getattr(kept, field) == pytest.approx(getattr(direct, field), rel=1e-12), field
    assert facts["compared_on"] == "8 of its 10 rows: those every model was fitted to"
    whole, whole_facts = hloo.formula_loo(tree.sel(obs_id=keep), "whole")
    assert whole_facts["compared_on"] == "all 8 rows"
    table = hloo.comparison({"kept": kept, "whole": whole}, [facts, whole_facts]).set_index("model")
    assert table.loc["kept", "elpd"] == pytest.approx(table.loc["whole", "elpd"], rel=1e-12)


def test_no_pooling_leaves_out_sites_of_equal_rows_and_no_other_model_does():
    data = grouped([np.array([1.0, 2.0]), np.array([0.1 * 3] * 3), np.array([4.0]), np.array([5.0, 5.0])])
    assert data.tied_sites() == ["s1", "s3"]
    own, left_out = hdata.model_data(data, "no_pooling")
    assert left_out == ["s1", "s3"] and own.sites == ["s0", "s2"]
    assert own.obs_id.tolist() == [0, 1, 5] and own.site_idx.tolist() == [0, 0, 1]
    for name in ("complete_pooling", "partial_pooling"):
        assert hdata.model_data(data, name) == (data, [])
