"""Posterior means from the workflow's fit step lie within 4 MCSE of the exact posterior means.

The exact values come from numerical integration (tests/exact.py) on the lecture's five sites.
With 4 MCSE the chance that a correct sampler fails one comparison is about 6e-5.
"""

import numpy as np
import pandas as pd
import pytest
from arviz_stats import mcse

from exact import partial_pooling, single_normal
from fit import fit
from hbm import data as hdata
from hbm import io, priors
from helpers import FIRST5, changed

TOLERANCE_MCSE = 4


def sampled(first5_csv, tmp_path, config, name):
    path, _ = first5_csv
    config = changed(config, "sampling", "draws", 2000)
    tree = fit(path, tmp_path / "posterior.nc", name, "first5", config, cores=2)
    posterior = tree["posterior"].to_dataset()
    return posterior.mean(("chain", "draw")), mcse(posterior, method="mean")


def assert_close(means, errors, exact, name, site=None):
    selector = {} if site is None else {"site": site}
    estimate = float(means[name].sel(selector))
    error = float(errors[name].sel(selector))
    assert abs(estimate - exact) <= TOLERANCE_MCSE * error, (
        f"{name}{selector}: posterior mean {estimate:.4f}, exact {exact:.4f}, MCSE {error:.4f}"
    )


def test_complete_pooling_is_exact(first5_csv, tmp_path, default_config):
    means, errors = sampled(first5_csv, tmp_path, default_config, "complete_pooling")
    exact = single_normal(first5_csv[1]["scontrol"], m0=0, s0=50, rate=1)
    for name in ("mu", "sigma"):
        assert_close(means, errors, exact[name], name)


def test_no_pooling_is_exact(first5_csv, tmp_path, default_config):
    means, errors = sampled(first5_csv, tmp_path, default_config, "no_pooling")
    rows = first5_csv[1]
    for site in FIRST5:
        exact = single_normal(rows.loc[rows["Site"] == site, "scontrol"], m0=0, s0=50, rate=2)
        for name in ("mu", "sigma"):
            assert_close(means, errors, exact[name], name, site)


@pytest.fixture(scope="module")
def exact_partial(first5_csv):
    rows = first5_csv[1]
    groups = [rows.loc[rows["Site"] == site, "scontrol"].to_numpy() for site in FIRST5]
    return partial_pooling(groups, m0=40, s0=20, rate_within=1, rate_between=1)


VARIANTS = {
    "marginal, nutpie (numba backend)": {"parameterization": "marginal"},
    "noncentered, nutpie (numba backend)": {"parameterization": "noncentered"},
    "centered, nutpie (numba backend)": {"parameterization": "centered", "target_accept": 0.99},
    "marginal, nutpie (pytensor backend)": {"parameterization": "marginal", "backend": "pytensor"},
    "marginal, PyMC NUTS": {"parameterization": "marginal", "sampler": "pymc"},
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_partial_pooling_is_exact(first5_csv, tmp_path, default_config, exact_partial, variant):
    settings = dict(VARIANTS[variant])
    config = changed(default_config, "models", "partial_pooling", "parameterization", settings.pop("parameterization"))
    config["sampling"].update(settings)
    config["convergence"]["on_failure"] = "warn"
    means, errors = sampled(first5_csv, tmp_path, config, "partial_pooling")
    for name in ("hyper_mu", "within_variability", "between_variability"):
        assert_close(means, errors, exact_partial[name], name)
    for site, exact in zip(FIRST5, exact_partial["mu"]):
        assert_close(means, errors, exact, "mu", site)


def test_oracle_matches_brute_force_integration():
    """The closed-form integration agrees with a direct 2-D quadrature over (mu, sigma)."""
    y = np.array([3.1, 4.7, 2.2, 5.0, 3.9, 4.4])
    mu, sigma = np.meshgrid(np.linspace(-5, 13, 1801), np.linspace(1e-3, 12, 2400), indexing="ij")
    log_post = (
        -0.5 * (mu / 10) ** 2
        - 2 * sigma
        - y.size * np.log(sigma)
        - ((y[:, None, None] - mu) ** 2).sum(0) / (2 * sigma**2)
    )
    w = np.exp(log_post - log_post.max())
    w /= w.sum()
    exact = single_normal(y, m0=0, s0=10, rate=2)
    assert exact["mu"] == pytest.approx((w * mu).sum(), abs=1e-4)
    assert exact["sigma"] == pytest.approx((w * sigma).sum(), abs=1e-4)


@pytest.mark.parametrize("selection", ["first5", "all"])
def test_default_selections_sample_without_divergences(tmp_path, default_config, data_path, selection):
    """The default config's partial pooling on each default selection: zero divergences, gate passed."""
    frame = hdata.read_table(data_path, "scontrol", "Site")
    sites = hdata.check_config_against_data(default_config, frame, "data")[selection]
    rows, _ = hdata.subset(frame, "scontrol", "Site", sites)
    io.write_csv(rows, tmp_path / "data.csv")
    tree = fit(tmp_path / "data.csv", tmp_path / "posterior.nc", "partial_pooling", selection, default_config, cores=2)
    assert int(tree["sample_stats"]["diverging"].sum()) == 0
    assert tree.attrs["convergence_failures"] == "[]"


def test_no_divergences_when_sites_do_not_differ(tmp_path, default_config):
    """Simulated sites with σ_μ = 0, one of them with 4 rows: the funnel the centered form falls into."""
    rng = np.random.default_rng(5)
    sizes = {"a": 4, "b": 30, "c": 60, "d": 120, "e": 200}
    site = np.repeat(list(sizes), list(sizes.values()))
    rows = pd.DataFrame(
        {"obs_id": np.arange(site.size), "Site": site, "scontrol": 40 + 7 * rng.standard_normal(site.size)}
    )
    io.write_csv(rows, tmp_path / "data.csv")
    tree = fit(tmp_path / "data.csv", tmp_path / "posterior.nc", "partial_pooling", "flat", default_config, cores=2)
    assert int(tree["sample_stats"]["diverging"].sum()) == 0
    assert tree.attrs["convergence_failures"] == "[]"


FAMILIES = {
    "Cauchy, HalfStudentT": (
        {"dist": "Cauchy", "alpha": 0.0, "beta": 2.0},
        {"dist": "HalfStudentT", "nu": 3.0, "sigma": 2.0},
    ),
    "Uniform, Gamma": (
        {"dist": "Uniform", "lower": -5.0, "upper": 10.0},
        {"dist": "Gamma", "alpha": 2.0, "beta": 1.0},
    ),
    "StudentT, LogNormal": (
        {"dist": "StudentT", "nu": 4.0, "mu": 1.0, "sigma": 3.0},
        {"dist": "LogNormal", "mu": 0.5, "sigma": 0.8},
    ),
    "Normal, Uniform": (
        {"dist": "Normal", "mu": 0.0, "sigma": 5.0},
        {"dist": "Uniform", "lower": 0.1, "upper": 8.0},
    ),
}


def grid_posterior_means(y, mu_prior, sigma_prior, points=1501):
    """E[μ], E[σ] for y ~ N(μ, σ) under the two priors, by quadrature on a grid over (μ, σ)."""
    from scipy import stats
    from scipy.special import logsumexp

    mu = np.linspace(y.mean() - 12 * y.std() - 5, y.mean() + 12 * y.std() + 5, points)[:, None]
    sigma = np.linspace(1e-3, 12 * y.std() + 5, points)[None, :]
    log_post = priors.distribution(mu_prior).logpdf(mu) + priors.distribution(sigma_prior).logpdf(sigma)
    log_post = log_post + stats.norm.logpdf(y[:, None, None], mu, sigma).sum(0)
    weights = np.exp(log_post - logsumexp(log_post))
    return {"mu": float((weights * mu).sum()), "sigma": float((weights * sigma).sum())}


@pytest.mark.parametrize("families", FAMILIES)
def test_complete_pooling_is_exact_under_each_prior_family(tmp_path, default_config, families):
    """On eight rows, where the priors matter, the fit under each family of the schema matches quadrature."""
    mu_prior, sigma_prior = FAMILIES[families]
    y = np.random.default_rng(4).normal(3.0, 2.0, 8)
    io.write_csv(
        pd.DataFrame({"obs_id": np.arange(8), "Site": ["a"] * 4 + ["b"] * 4, "scontrol": y}), tmp_path / "d.csv"
    )
    config = changed(default_config, "models", "complete_pooling", {"priors": {"mu": mu_prior, "sigma": sigma_prior}})
    config = changed(config, "sampling", "draws", 2000)
    tree = fit(tmp_path / "d.csv", tmp_path / "posterior.nc", "complete_pooling", "tiny", config, cores=2)
    posterior = tree["posterior"].to_dataset()
    means, errors = posterior.mean(("chain", "draw")), mcse(posterior, method="mean")
    exact = grid_posterior_means(y, mu_prior, sigma_prior)
    for name in ("mu", "sigma"):
        assert_close(means, errors, exact[name], name)
