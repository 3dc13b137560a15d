"""The model registry: every entry is complete and consistent with its builder; unknown names are refused.
Pure unit tests on simulated data (no data file needed)."""

import numpy as np
import pymc as pm
import pytest
import xarray as xr
import yaml

from hbm import builders, models, pointwise
from hbm.data import Grouped
from helpers import ROOT

PRIORS = {
    "mu": {"dist": "Normal", "mu": 0, "sigma": 10},
    "sigma": {"dist": "Exponential", "lam": 1},
    "hyper_mu": {"dist": "Normal", "mu": 0, "sigma": 10},
    "within_variability": {"dist": "Exponential", "lam": 1},
    "between_variability": {"dist": "Exponential", "lam": 1},
}


def simulated(sites=4, seed=0) -> Grouped:
    rng = np.random.default_rng(seed)
    site_idx = np.repeat(np.arange(sites), [1, 2, 3, 5][:sites])
    return Grouped(
        y=rng.normal(size=site_idx.size),
        site_idx=site_idx,
        sites=[f"s{i}" for i in range(sites)],
        obs_id=np.arange(site_idx.size),
    )


def prior_draws(model, draws=3) -> xr.Dataset:
    """Prior draws of every sampled variable and deterministic of `model`, as a posterior would hold them."""
    return pm.sample_prior_predictive(draws=draws, model=model, random_seed=1)["prior"].to_dataset()


@pytest.mark.parametrize("name", models.MODELS)
def test_every_entry_has_its_builder_and_a_default_parameterization(name):
    entry = models.get(name)
    assert callable(getattr(builders, name, None)), f"hbm.builders has no builder named {name}"
    assert entry.parameterizations and entry.label and entry.parameters
    assert set(entry.scales) <= set(entry.parameters)


@pytest.mark.filterwarnings("ignore:The effect of Potentials")  # only the shapes of prior draws are used
@pytest.mark.parametrize(
    "name, parameterization",
    [(name, p) for name, entry in models.MODELS.items() for p in entry.parameterizations],
)
def test_each_parameterization_yields_the_entrys_parameters(name, parameterization):
    """What the sampler explores, plus what the entry draws back after sampling, is the entry's parameters."""
    entry, data = models.get(name), simulated()
    posterior = prior_draws(models.build(name, data, PRIORS, parameterization))
    if parameterization == "marginal":
        rng = np.random.default_rng(2)
        posterior = posterior.assign(entry.draw_integrated(posterior, data, PRIORS, rng))
    assert set(entry.parameters) <= set(posterior.data_vars), (set(entry.parameters), set(posterior.data_vars))
    mean, sd = pointwise.site_parameters(posterior, name, data)
    assert mean.shape == sd.shape == (1, 3, len(data.sites))
    assert np.all(sd > 0)


def test_marginal_needs_a_normal_prior_on_the_site_means():
    student = {**PRIORS, "mu": {"dist": "StudentT", "nu": 3, "mu": 0, "sigma": 10}}
    assert models.parameterization_of("no_pooling", {"priors": student}) == "centered"
    assert models.parameterization_of("no_pooling", {"priors": PRIORS}) == "marginal"


def test_unknown_model_names_are_refused_everywhere():
    data = simulated()
    posterior = xr.Dataset({"mu": (("chain", "draw"), np.zeros((1, 2)))})
    with pytest.raises(ValueError, match="unknown model 'pooling'"):
        models.build("pooling", data, PRIORS)
    with pytest.raises(ValueError, match="unknown model 'pooling'"):
        pointwise.row_parameters(posterior, "pooling", data)
    with pytest.raises(ValueError, match="unknown model 'pooling'"):
        pointwise.integrates_site_means("pooling", PRIORS)


def test_the_population_model_is_partial_pooling():
    assert models.population_model(["complete_pooling", "partial_pooling"]) == "partial_pooling"
    assert models.population_model(["complete_pooling", "no_pooling"]) is None


def test_every_model_names_the_priors_its_schema_takes():
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    for name, entry in schema["properties"]["models"]["properties"].items():
        assert set(models.get(name).priors) == set(entry["properties"]["priors"]["properties"]), name
        assert set(models.get(name).priors) <= set(models.get(name).parameters), name
