"""The three pooling models, side by side, with the lecture's names.

Each Normal likelihood is written on per-site sufficient statistics (n, mean, sum of squared
deviations), which give exactly the per-row log density, so one gradient costs O(sites), not
O(rows). `likelihood="rows"` builds the lecture's per-row form instead (used to check the
sufficient form, and by the benchmark as the lecture's code).

No pooling has two parameterizations:
- ``centered``: mu[site] and sigma[site] sampled together, the lecture's per-site form;
- ``marginal``: each site mean is integrated out against its Normal prior, the sampler explores
  sigma[site] only, and the fit draws mu[site] afterwards from its exact conditional Normal. A site
  with one or two rows then has no funnel between its mean and its sd.

Partial pooling has three parameterizations:
- ``centered``: mu ~ N(hyper_mu, between_variability), the lecture's form;
- ``noncentered``: mu = hyper_mu + between_variability * mu_offset, mu_offset ~ N(0, 1);
- ``marginal``: the site means are integrated out analytically, and so is hyper_mu when its prior
  is Normal; the sampler explores the two (or three) remaining parameters and the fit draws the
  integrated ones afterwards from their exact conditional Normals (`draw_integrated`).
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from hbm.data import Grouped
from hbm.pointwise import LOG_2PI

MODELS = ("complete_pooling", "no_pooling", "partial_pooling")
# Each model's parameters in the lecture's order, and the parameterizations it offers (default first).
PARAMETERS = {
    "complete_pooling": ("mu", "sigma"),
    "no_pooling": ("mu", "sigma"),
    "partial_pooling": ("hyper_mu", "within_variability", "between_variability", "mu"),
}
OFFERED = {
    "complete_pooling": ("centered",),
    "no_pooling": ("marginal", "centered"),
    "partial_pooling": ("marginal", "noncentered", "centered"),
}


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
    site_precision, precision, mean = _hyper_mu_conditional(within, between, prior_mu, prior_sigma, n, ybar, pt)
    # log of the integral over hyper_mu, with the quadratic form centred on its conditional mean
    site_mean_term = 0.5 * pt.sum(pt.log(site_precision)) - 0.5 * (n.shape[0] * LOG_2PI + pt.log(precision))
    site_mean_term -= pt.log(prior_sigma) + 0.5 * (
        pt.sum(site_precision * (ybar - mean) ** 2) + (prior_mu - mean) ** 2 / prior_sigma**2
    )
    return site_mean_term + _within_site_loglik(within, n, ss)


def _within_site_loglik(within, n, ss):
    """What the rows add, beyond the density of each site's mean: their spread about that mean."""
    return pt.sum(-(n - 1) * (0.5 * LOG_2PI + pt.log(within)) - ss / (2 * within**2) - 0.5 * pt.log(n))


def _hyper_mu_conditional(within, between, prior_mu, prior_sigma, n, ybar, xp):
    """Each site mean's precision about hyper_mu (site means integrated out), and the precision and
    mean of hyper_mu given the two scales and the data; `xp` is numpy or pytensor.tensor, and the
    site axis is the last."""
    site_precision = 1 / (between**2 + within**2 / n)
    precision = 1 / prior_sigma**2 + xp.sum(site_precision, axis=-1)
    mean = (prior_mu / prior_sigma**2 + xp.sum(site_precision * ybar, axis=-1)) / precision
    return site_precision, precision, mean


def integrates_hyper_mu(priors: dict) -> bool:
    """The marginal parameterization integrates hyper_mu out where its prior is Normal (conjugate)."""
    return priors["hyper_mu"]["dist"] == "Normal"


def parameterization_of(name: str, spec: dict) -> str:
    """The parameterization a model is fitted with: its configured one, else its default. No pooling's
    `marginal` needs a Normal prior on mu (conjugate); with another it is fitted `centered`."""
    chosen = spec.get("parameterization", OFFERED[name][0])
    if name == "no_pooling" and chosen == "marginal" and spec["priors"]["mu"]["dist"] != "Normal":
        return "centered"
    return chosen


def build(
    name: str,
    data: Grouped,
    priors: dict,
    parameterization: str | None = None,
    likelihood: str = "sufficient",
) -> pm.Model:
    """The PyMC model `name` for `data`; `priors` maps each parameter to its config prior; the
    parameterization defaults to the model's own default."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    parameterization = parameterization or OFFERED[name][0]
    if parameterization not in OFFERED[name]:
        raise ValueError(f"{name} has no parameterization {parameterization!r}; known: {', '.join(OFFERED[name])}")
    if likelihood == "rows" and parameterization == "marginal":
        raise ValueError("the per-row likelihood needs the site means: use 'centered' or 'noncentered'")
    coords = {"site": data.sites, "obs_id": data.obs_id}
    with pm.Model(coords=coords) as model:
        site_idx = pm.Data("site_idx", data.site_idx, dims="obs_id")
        stats = {
            "n": pm.Data("n", data.n, dims="site"),
            "ybar": pm.Data("ybar", data.ybar, dims="site"),
            "ss": pm.Data("ss", data.ss, dims="site"),
        }
        if name == "complete_pooling":
            mu = prior("mu", priors["mu"])
            sigma = prior("sigma", priors["sigma"])
            site_mu, site_sigma = mu, sigma
        elif name == "no_pooling":
            sigma = prior("sigma", priors["sigma"], dims="site")
            if parameterization == "marginal":
                location = priors["mu"]
                pm.Potential("y_est", marginal_loglik(location["mu"], sigma, location["sigma"], **stats))
                return model
            mu = prior("mu", priors["mu"], dims="site")
            site_mu, site_sigma = mu, sigma
        elif name == "partial_pooling":
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
            site_mu, site_sigma = mu, within_variability

        if likelihood == "rows":
            row = (lambda v: v[site_idx]) if name != "complete_pooling" else (lambda v: v)
            pm.Normal(
                "y_est",
                mu=row(site_mu),
                sigma=site_sigma if name == "partial_pooling" else row(site_sigma),
                observed=data.y,
                dims="obs_id",
            )
        else:
            pm.Potential("y_est", normal_loglik(site_mu, site_sigma, **stats))
    return model


def draw_integrated(name: str, posterior, data: Grouped, priors: dict, rng: np.random.Generator) -> dict[str, tuple]:
    """Exact conditional draws of what the marginal parameterization integrated out, as (dims, values).
    No pooling: each site mean given its sd. Partial pooling: hyper_mu given the two scales (where it
    was integrated out), then the site means mu given all three."""
    if name == "no_pooling":
        location = priors["mu"]
        sigma = posterior["sigma"].values
        return {"mu": (("chain", "draw", "site"), _site_means(sigma, location["mu"], location["sigma"], data, rng))}
    within = posterior["within_variability"].values[..., None]
    between = posterior["between_variability"].values[..., None]
    drawn = {}
    if "hyper_mu" in posterior:
        hyper_mu = posterior["hyper_mu"].values
    else:
        spec = priors["hyper_mu"]
        _, precision, mean = _hyper_mu_conditional(within, between, spec["mu"], spec["sigma"], data.n, data.ybar, np)
        hyper_mu = mean + rng.standard_normal(mean.shape) / np.sqrt(precision)
        drawn["hyper_mu"] = (("chain", "draw"), hyper_mu)
    drawn["mu"] = (("chain", "draw", "site"), _site_means(within, hyper_mu[..., None], between, data, rng))
    return drawn


def _site_means(within, prior_mean, prior_sd, data: Grouped, rng) -> np.ndarray:
    """Draws of each site mean from its Normal conditional given the site's rows (sd `within`) and its
    Normal prior N(prior_mean, prior_sd); the site axis is the last."""
    precision = data.n / within**2 + 1 / prior_sd**2
    mean = (data.n * data.ybar / within**2 + prior_mean / prior_sd**2) / precision
    return mean + rng.standard_normal(mean.shape) / np.sqrt(precision)
