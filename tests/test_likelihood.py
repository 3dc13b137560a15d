"""The sufficient-statistic likelihoods equal the lecture's per-row model, and so do the pointwise
quantities computed from the draws after sampling."""

import numpy as np
import pymc as pm
import pytest
import xarray as xr

from hbm import data as hdata
from hbm import models, pointwise
from helpers import FIRST5

PRIORS = {
    "complete_pooling": {"mu": {"dist": "Normal", "mu": 0, "sigma": 50}, "sigma": {"dist": "Exponential", "lam": 1}},
    "no_pooling": {"mu": {"dist": "Normal", "mu": 0, "sigma": 50}, "sigma": {"dist": "Exponential", "lam": 2}},
    "partial_pooling": {
        "hyper_mu": {"dist": "Normal", "mu": 40, "sigma": 20},
        "within_variability": {"dist": "Exponential", "lam": 1},
        "between_variability": {"dist": "Exponential", "lam": 1},
    },
}


@pytest.fixture(scope="module")
def grouped(data_path):
    frame = hdata.read_table(data_path, "scontrol", "Site")
    rows, _ = hdata.subset(frame, "scontrol", "Site", FIRST5)
    return hdata.Grouped.from_frame(rows, "scontrol", "Site", FIRST5)


def random_points(model, count, seed):
    rng = np.random.default_rng(seed)
    start = model.initial_point()
    return [{name: value + rng.normal(0, 0.7, np.shape(value)) for name, value in start.items()} for _ in range(count)]


@pytest.mark.parametrize(
    "name, parameterization",
    [
        ("complete_pooling", "centered"),
        ("no_pooling", "centered"),
        ("partial_pooling", "centered"),
        ("partial_pooling", "noncentered"),
    ],
)
def test_sufficient_likelihood_equals_per_row_likelihood(grouped, name, parameterization):
    sufficient = models.build(name, grouped, PRIORS[name], parameterization, likelihood="sufficient")
    rows = models.build(name, grouped, PRIORS[name], parameterization, likelihood="rows")
    logp_sufficient, logp_rows = sufficient.compile_logp(), rows.compile_logp()
    for point in random_points(rows, 20, seed=1):
        assert logp_sufficient(point) == pytest.approx(logp_rows(point), rel=1e-12, abs=1e-8)


def site_mean_quadrature(grouped, within, between, hyper_mu_grid):
    """log of the per-row likelihood integrated over each site mean ~ N(hyper_mu, between), summed
    over sites, for every hyper_mu of the grid (direct quadrature on a grid of site means)."""
    mu = np.linspace(grouped.ybar.min() - 15, grouped.ybar.max() + 15, 6001)
    kernel = -0.5 * np.log(2 * np.pi * between**2) - (mu[None, :] - hyper_mu_grid[:, None]) ** 2 / (2 * between**2)
    total = np.zeros(len(hyper_mu_grid))
    for j in range(len(grouped.sites)):
        y = grouped.y[grouped.site_idx == j]
        log_lik = (-0.5 * np.log(2 * np.pi * within**2) - (y[:, None] - mu) ** 2 / (2 * within**2)).sum(0)
        integrand = log_lik[None, :] + kernel
        top = integrand.max(axis=1, keepdims=True)
        total += top[:, 0] + np.log(np.trapezoid(np.exp(integrand - top), mu, axis=1))
    return total


def potential_at(model, point):
    (potential,) = model.replace_rvs_by_values(model.potentials)
    return float(model.compile_fn(potential, point_fn=True)(point))


def test_marginal_likelihood_integrates_site_means_and_hyper_mu_out(grouped):
    """With a Normal prior on hyper_mu, the marginal density at fixed scales equals a quadrature over
    every site mean and then over hyper_mu against its prior."""
    marginal = models.build("partial_pooling", grouped, PRIORS["partial_pooling"], "marginal")
    assert "hyper_mu" not in marginal.named_vars
    within, between = 7.2, 1.6
    point = {"within_variability_log__": np.log(within), "between_variability_log__": np.log(between)}
    hyper_mu = np.linspace(20, 60, 8001)
    log_prior = -0.5 * np.log(2 * np.pi * 20**2) - (hyper_mu - 40) ** 2 / (2 * 20**2)
    integrand = site_mean_quadrature(grouped, within, between, hyper_mu) + log_prior
    exact = integrand.max() + np.log(np.trapezoid(np.exp(integrand - integrand.max()), hyper_mu))
    assert potential_at(marginal, point) == pytest.approx(exact, rel=1e-9)


def test_marginal_likelihood_equals_site_means_integrated_out(grouped):
    """With another prior on hyper_mu (sampled, not integrated), the marginal density at fixed scales
    and hyper_mu equals a quadrature over each site mean."""
    priors = PRIORS["partial_pooling"] | {"hyper_mu": {"dist": "StudentT", "nu": 4, "mu": 40, "sigma": 20}}
    marginal = models.build("partial_pooling", grouped, priors, "marginal")
    hyper_mu, within, between = 40.3, 7.2, 1.6
    point = {
        "hyper_mu": hyper_mu,
        "within_variability_log__": np.log(within),
        "between_variability_log__": np.log(between),
    }
    exact = site_mean_quadrature(grouped, within, between, np.array([hyper_mu]))[0]
    assert potential_at(marginal, point) == pytest.approx(exact, rel=1e-9)


def fake_posterior(name, grouped, seed=3, chains=2, draws=50):
    rng = np.random.default_rng(seed)
    shape = (chains, draws)
    sites = len(grouped.sites)
    values = {
        "complete_pooling": {"mu": rng.normal(40, 1, shape), "sigma": rng.uniform(6, 9, shape)},
        "no_pooling": {"mu": rng.normal(40, 1, shape + (sites,)), "sigma": rng.uniform(6, 9, shape + (sites,))},
        "partial_pooling": {
            "hyper_mu": rng.normal(40, 1, shape),
            "within_variability": rng.uniform(6, 9, shape),
            "between_variability": rng.uniform(0.2, 3, shape),
            "mu": rng.normal(40, 1, shape + (sites,)),
        },
    }[name]
    dims = {
        v.ndim: d
        for v, d in [(np.empty(shape), ("chain", "draw")), (np.empty(shape + (1,)), ("chain", "draw", "site"))]
    }
    return xr.Dataset(
        {key: (dims[value.ndim], value) for key, value in values.items()},
        coords={"chain": np.arange(chains), "draw": np.arange(draws), "site": grouped.sites},
    )


@pytest.mark.parametrize("name", list(PRIORS))
def test_pointwise_log_likelihood_equals_pymc(grouped, name):
    posterior = fake_posterior(name, grouped)
    ours = pointwise.log_likelihood(posterior, name, grouped, "rows")["y_est"].values
    rows_model = models.build(name, grouped, PRIORS[name], "centered", likelihood="rows")
    tree = xr.DataTree.from_dict({"posterior": posterior})
    reference = pm.compute_log_likelihood(tree, model=rows_model, progressbar=False)
    np.testing.assert_allclose(ours, reference["log_likelihood"]["y_est"].values, rtol=1e-12)
    per_site = pointwise.log_likelihood(posterior, name, grouped, "sites")["y_est"].values
    summed = np.stack([ours[..., grouped.site_idx == j].sum(-1) for j in range(len(grouped.sites))], axis=-1)
    np.testing.assert_allclose(per_site, summed, rtol=1e-10)


@pytest.mark.parametrize("name", list(PRIORS))
def test_posterior_predictive_has_the_model_moments(grouped, name):
    """Per-row replicated draws: mean and variance match mu_row and sigma_row draw by draw (pooled)."""
    posterior = fake_posterior(name, grouped, chains=4, draws=500)
    rng = np.random.default_rng(11)
    replicated = pointwise.posterior_predictive(posterior, name, grouped, rng, max_values=10**9)["y_est"].values
    mean, sd = pointwise.row_parameters(posterior, name, grouped)
    z = (replicated - mean) / sd
    n = z.size
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs(z.var() - 1) < 4 * np.sqrt(2 / n)


def test_posterior_predictive_thins_draws_to_the_storage_limit(grouped):
    posterior = fake_posterior("partial_pooling", grouped, chains=4, draws=500)
    limit = 4 * 100 * len(grouped.y)
    replicated = pointwise.posterior_predictive(posterior, "partial_pooling", grouped, np.random.default_rng(0), limit)
    assert replicated["y_est"].size <= limit
    assert replicated.attrs["thinning"] == 5
