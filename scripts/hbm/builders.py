"""The PyMC models of the registry in `hbm.models`, one builder per model, with the lecture's names.

Each Normal likelihood is written on per-site sufficient statistics (n, mean, sum of squared
deviations), which give exactly the per-row log density, so one gradient costs O(sites), not
O(rows). `likelihood="rows"` builds the lecture's per-row form instead (used to check the
sufficient form, and by the benchmark as the lecture's code). The parameterizations are described
in `hbm.models`.
"""

from __future__ import annotations

import pymc as pm
import pytensor.tensor as pt

from hbm.data import Grouped
from hbm.models import hyper_mu_conditional, integrates_hyper_mu
from hbm.pointwise import LOG_2PI


def prior(name: str, spec: dict, **kwargs):
    """A PyMC random variable from a config prior such as {dist: Normal, mu: 0, sigma: 50}."""
    params = {key: value for key, value in spec.items() if key != "dist"}
    return getattr(pm, spec["dist"])(name, **params, **kwargs)


def normal_loglik(mu, sigma, n, ybar, ss):
    """Sum over rows of log N(y | mu_j, sigma_j), from each site's n, mean and sum of squares."""
    return pt.sum(-n * (0.5 * LOG_2PI + pt.log(sigma)) - (ss + n * (ybar - mu) ** 2) / (2 * sigma**2))


def marginal_loglik(hyper_mu, within, between, n, ybar, ss):
    """The per-row log density with each site mean integrated out against N(hyper_mu, between)."""
    total_sd = pt.sqrt(between**2 + within**2 / n)
    site_mean_term = -0.5 * LOG_2PI - pt.log(total_sd) - (ybar - hyper_mu) ** 2 / (2 * total_sd**2)
    return pt.sum(site_mean_term) + _within_site_loglik(within, n, ss)


def population_loglik(within, between, prior_mu, prior_sigma, n, ybar, ss):
    """`marginal_loglik` with hyper_mu also integrated out against its prior N(prior_mu, prior_sigma)."""
    site_precision, precision, mean = hyper_mu_conditional(within, between, prior_mu, prior_sigma, n, ybar, pt)
    # log of the integral over hyper_mu, with the quadratic form centred on its conditional mean
    site_mean_term = 0.5 * pt.sum(pt.log(site_precision)) - 0.5 * (n.shape[0] * LOG_2PI + pt.log(precision))
    site_mean_term -= pt.log(prior_sigma) + 0.5 * (
        pt.sum(site_precision * (ybar - mean) ** 2) + (prior_mu - mean) ** 2 / prior_sigma**2
    )
    return site_mean_term + _within_site_loglik(within, n, ss)


def _within_site_loglik(within, n, ss):
    """What the rows add, beyond the density of each site's mean: their spread about that mean."""
    return pt.sum(-(n - 1) * (0.5 * LOG_2PI + pt.log(within)) - ss / (2 * within**2) - 0.5 * pt.log(n))


def _model(data: Grouped):
    """An empty PyMC model with the data's coords and its per-site sufficient statistics."""
    model = pm.Model(coords={"site": data.sites, "obs_id": data.obs_id})
    with model:
        site_idx = pm.Data("site_idx", data.site_idx, dims="obs_id")
        stats = {
            "n": pm.Data("n", data.n, dims="site"),
            "ybar": pm.Data("ybar", data.ybar, dims="site"),
            "ss": pm.Data("ss", data.ss, dims="site"),
        }
    return model, site_idx, stats


def _likelihood(likelihood: str, data: Grouped, row_mu, row_sigma, site_mu, site_sigma, stats) -> None:
    """The Normal likelihood of the rows: per row (the lecture's form) or on sufficient statistics."""
    if likelihood == "rows":
        pm.Normal("y_est", mu=row_mu, sigma=row_sigma, observed=data.y, dims="obs_id")
    else:
        pm.Potential("y_est", normal_loglik(site_mu, site_sigma, **stats))


def complete_pooling(data: Grouped, priors: dict, parameterization: str, likelihood: str) -> pm.Model:
    model, _, stats = _model(data)
    with model:
        mu = prior("mu", priors["mu"])
        sigma = prior("sigma", priors["sigma"])
        _likelihood(likelihood, data, mu, sigma, mu, sigma, stats)
    return model


def no_pooling(data: Grouped, priors: dict, parameterization: str, likelihood: str) -> pm.Model:
    model, site_idx, stats = _model(data)
    with model:
        sigma = prior("sigma", priors["sigma"], dims="site")
        if parameterization == "marginal":
            location = priors["mu"]
            pm.Potential("y_est", marginal_loglik(location["mu"], sigma, location["sigma"], **stats))
            return model
        mu = prior("mu", priors["mu"], dims="site")
        _likelihood(likelihood, data, mu[site_idx], sigma[site_idx], mu, sigma, stats)
    return model


def partial_pooling(data: Grouped, priors: dict, parameterization: str, likelihood: str) -> pm.Model:
    model, site_idx, stats = _model(data)
    with model:
        integrated = parameterization == "marginal" and integrates_hyper_mu(priors)
        hyper_mu = None if integrated else prior("hyper_mu", priors["hyper_mu"])
        within_variability = prior("within_variability", priors["within_variability"])
        between_variability = prior("between_variability", priors["between_variability"])
        if parameterization == "marginal":
            scales = (within_variability, between_variability)
            hyper = priors["hyper_mu"]
            loglik = (
                population_loglik(*scales, hyper["mu"], hyper["sigma"], **stats)
                if integrated
                else marginal_loglik(hyper_mu, *scales, **stats)
            )
            pm.Potential("y_est", loglik)
            return model
        if parameterization == "noncentered":
            mu_offset = pm.Normal("mu_offset", 0.0, 1.0, dims="site")
            mu = pm.Deterministic("mu", hyper_mu + between_variability * mu_offset, dims="site")
        else:
            mu = pm.Normal("mu", hyper_mu, between_variability, dims="site")
        _likelihood(likelihood, data, mu[site_idx], within_variability, mu, within_variability, stats)
    return model
