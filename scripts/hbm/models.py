"""The registry of models: each entry is everything the workflow needs to know about one model (its
parameters, parameterizations, PyMC builder, per-site likelihood parameters, what it integrates out
and how to draw it back). The steps look models up here; adding a model is one entry plus its own
code (its builder in `hbm.builders`, named as the model).

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
  integrated ones afterwards from their exact conditional Normals (`Model.draw_integrated`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from hbm.data import Grouped


@dataclass(frozen=True)
class Model:
    """One model of the workflow.

    `site_parameters(posterior)`: the mean and sd of y in each site, arrays broadcastable to
    (chain, draw, site). `priors`: the parameters with a prior of their own in the config.
    `integrates_site_means(priors)`: whether the site means have a Normal prior
    to integrate against (for the marginal parameterization and leave-one-out); if so,
    `site_mean_prior(posterior, priors)` gives that Normal and the within-site sd, (prior mean,
    prior sd, sd) broadcastable to (chain, draw, site). `draw_integrated(posterior,
    data, priors, rng)`: exact conditional draws of what the marginal parameterization integrated
    out, as {name: (dims, values)}. `single_normal`: the model is one Normal with a Normal prior on
    its mean, shared by all sites ("pooled") or one per site ("per site"), which gives exact
    leave-one-out densities by quadrature over its sd. `population`: the site means come from a
    population, so the model predicts new sites and has shrinkage and a variance decomposition.
    `formula`: the model as a bambi formula on `{outcome}` and `{group}` (None if bambi cannot write
    it), with `formula_priors` (parameter -> the bambi term its prior goes to) and `formula_quantities`
    (quantity -> (parameter, bambi variable)), what its fit and the formula's must agree on.
    `new_site(posterior)`: where the model predicts a site it never saw, the rows of such a site as
    (mean, between-site sd, within-site sd), each (chain, draw): the site's mean is drawn from
    N(mean, between-site sd), its rows from N(site mean, within-site sd); None where it cannot.
    `own_sd`: each site has an sd of its own, learnt from its rows alone, which has no proper posterior
    for a site of two or more equal rows: the model is fitted to the other sites (`hbm.data.model_data`)."""

    name: str
    label: str
    colour: str
    parameters: tuple[str, ...]
    scales: tuple[str, ...]
    priors: tuple[str, ...]
    parameterizations: tuple[str, ...]
    site_parameters: Callable
    integrates_site_means: Callable = lambda priors: False
    site_mean_prior: Callable | None = None
    draw_integrated: Callable | None = None
    single_normal: str | None = None
    population: bool = False
    formula: str | None = None
    formula_priors: dict = field(default_factory=dict)
    formula_quantities: dict = field(default_factory=dict)
    new_site: Callable | None = None
    own_sd: bool = False

    def build(self, data: Grouped, priors: dict, parameterization: str, likelihood: str):
        from hbm import builders  # PyMC is imported only by the steps that build models

        return getattr(builders, self.name)(data, priors, parameterization, likelihood)


def _scalar(posterior, name: str) -> np.ndarray:
    return posterior[name].values[..., None]


def _no_pooling_prior(posterior, priors):
    return float(priors["mu"]["mu"]), float(priors["mu"]["sigma"]), posterior["sigma"].values


def _draw_no_pooling(posterior, data: Grouped, priors: dict, rng) -> dict:
    """Each site mean given its sd."""
    location = priors["mu"]
    mu = _site_means(posterior["sigma"].values, location["mu"], location["sigma"], data, rng)
    return {"mu": (("chain", "draw", "site"), mu)}


def _draw_partial_pooling(posterior, data: Grouped, priors: dict, rng) -> dict:
    """hyper_mu given the two scales (where it was integrated out), then the site means given all three."""
    within, between = _scalar(posterior, "within_variability"), _scalar(posterior, "between_variability")
    drawn = {}
    if "hyper_mu" in posterior:
        hyper_mu = posterior["hyper_mu"].values
    else:
        spec = priors["hyper_mu"]
        _, precision, mean = hyper_mu_conditional(within, between, spec["mu"], spec["sigma"], data.n, data.ybar, np)
        hyper_mu = mean + rng.standard_normal(mean.shape) / np.sqrt(precision)
        drawn["hyper_mu"] = (("chain", "draw"), hyper_mu)
    drawn["mu"] = (("chain", "draw", "site"), _site_means(within, hyper_mu[..., None], between, data, rng))
    return drawn


MODELS: dict[str, Model] = {
    model.name: model
    for model in (
        Model(
            name="complete_pooling",
            label="complete pooling",
            colour="C1",
            parameters=("mu", "sigma"),
            scales=("sigma",),
            priors=("mu", "sigma"),
            parameterizations=("centered",),
            site_parameters=lambda posterior: (_scalar(posterior, "mu"), _scalar(posterior, "sigma")),
            single_normal="pooled",
            formula="{outcome} ~ 1",
            formula_priors={"mu": "Intercept", "sigma": "sigma"},
            formula_quantities={"population mean": ("mu", "Intercept"), "within-site sd": ("sigma", "sigma")},
            new_site=lambda posterior: (posterior["mu"].values, 0.0, posterior["sigma"].values),
        ),
        Model(
            name="no_pooling",
            label="no pooling",
            colour="C2",
            parameters=("mu", "sigma"),
            scales=("sigma",),
            priors=("mu", "sigma"),
            parameterizations=("marginal", "centered"),
            site_parameters=lambda posterior: (posterior["mu"].values, posterior["sigma"].values),
            integrates_site_means=lambda priors: priors["mu"]["dist"] == "Normal",
            site_mean_prior=_no_pooling_prior,
            draw_integrated=_draw_no_pooling,
            single_normal="per site",
            own_sd=True,
        ),
        Model(
            name="partial_pooling",
            label="partial pooling",
            colour="C0",
            parameters=("hyper_mu", "within_variability", "between_variability", "mu"),
            scales=("within_variability", "between_variability"),
            priors=("hyper_mu", "within_variability", "between_variability"),
            parameterizations=("marginal", "noncentered", "centered"),
            site_parameters=lambda posterior: (posterior["mu"].values, _scalar(posterior, "within_variability")),
            integrates_site_means=lambda priors: True,
            site_mean_prior=lambda posterior, priors: (
                _scalar(posterior, "hyper_mu"),
                _scalar(posterior, "between_variability"),
                _scalar(posterior, "within_variability"),
            ),
            draw_integrated=_draw_partial_pooling,
            population=True,
            formula="{outcome} ~ 1 + (1|{group})",
            formula_priors={
                "hyper_mu": "Intercept",
                "within_variability": "sigma",
                "between_variability": "1|{group}",
            },
            formula_quantities={
                "population mean": ("hyper_mu", "Intercept"),
                "within-site sd": ("within_variability", "sigma"),
                "between-site sd": ("between_variability", "1|{group}_sigma"),
                "site mean": ("mu", "site_mean"),
            },
            new_site=lambda posterior: (
                posterior["hyper_mu"].values,
                posterior["between_variability"].values,
                posterior["within_variability"].values,
            ),
        ),
    )
}
SCALE_PARAMETERS = tuple(dict.fromkeys(scale for model in MODELS.values() for scale in model.scales))


def get(name: str) -> Model:
    """The registry entry of model `name`; an unknown name is an error naming the known ones."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name]


def population_model(names) -> str | None:
    """The first of `names` whose site means come from a population (it predicts new sites), or None."""
    return next((name for name in names if get(name).population), None)


def predicting_new_sites(names) -> list[str]:
    """Those of `names` that predict a site they never saw."""
    return [name for name in names if get(name).new_site]


def integrates_hyper_mu(priors: dict) -> bool:
    """The marginal parameterization integrates hyper_mu out where its prior is Normal (conjugate)."""
    return priors["hyper_mu"]["dist"] == "Normal"


def parameterization_of(name: str, spec: dict) -> str:
    """The parameterization a model is fitted with: its configured one, else its default. A marginal
    parameterization needs a Normal prior on the site means (conjugate); without one the model is
    fitted `centered`."""
    model = get(name)
    chosen = spec.get("parameterization", model.parameterizations[0])
    if chosen == "marginal" and not model.integrates_site_means(spec["priors"]):
        return "centered"
    return chosen


def build(name: str, data: Grouped, priors: dict, parameterization: str | None = None, likelihood: str = "sufficient"):
    """The PyMC model `name` for `data`; `priors` maps each parameter to its config prior; the
    parameterization defaults to the model's own default."""
    model = get(name)
    parameterization = parameterization or model.parameterizations[0]
    if parameterization not in model.parameterizations:
        known = ", ".join(model.parameterizations)
        raise ValueError(f"{name} has no parameterization {parameterization!r}; known: {known}")
    if likelihood == "rows" and parameterization == "marginal":
        raise ValueError("the per-row likelihood needs the site means: use 'centered' or 'noncentered'")
    return model.build(data, priors, parameterization, likelihood)


def hyper_mu_conditional(within, between, prior_mu, prior_sigma, n, ybar, xp):
    """Each site mean's precision about hyper_mu (site means integrated out), and the precision and
    mean of hyper_mu given the two scales and the data; `xp` is numpy or pytensor.tensor, and the
    site axis is the last."""
    site_precision = 1 / (between**2 + within**2 / n)
    precision = 1 / prior_sigma**2 + xp.sum(site_precision, axis=-1)
    mean = (prior_mu / prior_sigma**2 + xp.sum(site_precision * ybar, axis=-1)) / precision
    return site_precision, precision, mean


def _site_means(within, prior_mean, prior_sd, data: Grouped, rng) -> np.ndarray:
    """Draws of each site mean from its Normal conditional given the site's rows (sd `within`) and its
    Normal prior N(prior_mean, prior_sd); the site axis is the last."""
    precision = data.n / within**2 + 1 / prior_sd**2
    mean = (data.n * data.ybar / within**2 + prior_mean / prior_sd**2) / precision
    return mean + rng.standard_normal(mean.shape) / np.sqrt(precision)
