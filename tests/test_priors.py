"""Prior checks: the log prior stored for power-scaling, prior predictive conflicts, and power-scaling
sensitivity that flags a conflicting prior and not a weak one."""

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr

from fit import fit
from hbm import criticism, io, priors
from helpers import changed
from prior_checks import prior_predictive_row, sensitivity_rows

SPECS = {
    "Normal": {"dist": "Normal", "mu": 3.0, "sigma": 2.0},
    "StudentT": {"dist": "StudentT", "nu": 4.0, "mu": -1.0, "sigma": 0.5},
    "Exponential": {"dist": "Exponential", "lam": 0.7},
    "HalfNormal": {"dist": "HalfNormal", "sigma": 3.0},
    "HalfCauchy": {"dist": "HalfCauchy", "beta": 1.5},
    "Cauchy": {"dist": "Cauchy", "alpha": 1.0, "beta": 2.5},
    "Uniform": {"dist": "Uniform", "lower": 0.1, "upper": 5.0},
    "HalfStudentT": {"dist": "HalfStudentT", "nu": 3.0, "sigma": 2.0},
    "Gamma": {"dist": "Gamma", "alpha": 2.0, "beta": 0.8},
    "LogNormal": {"dist": "LogNormal", "mu": 0.5, "sigma": 0.9},
}


def test_every_prior_family_of_the_schema_has_its_distribution():
    """The schema's families are the ones `hbm.priors` knows (and these tests check)."""
    import yaml

    from helpers import ROOT

    definitions = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())["$defs"]
    families = {
        name for kind in ("location_prior", "scale_prior") for name in definitions[kind]["properties"]["dist"]["enum"]
    }
    assert families == set(priors.DISTRIBUTIONS) == set(SPECS)


@pytest.mark.parametrize("dist", SPECS)
def test_log_prior_is_pymcs_log_density(dist):
    """Each config prior's log density equals PyMC's for the distribution the model is built with."""
    spec = SPECS[dist]
    values = np.array([[0.3, 1.7, 4.2]])
    posterior = xr.Dataset({"p": (("chain", "draw"), values)})
    ours = priors.log_prior(posterior, {"p": spec})["p"].values
    pymc_dist = getattr(pm, dist).dist(**{k: v for k, v in spec.items() if k != "dist"})
    assert ours == pytest.approx(pm.logp(pymc_dist, values).eval())


@pytest.mark.parametrize("dist", SPECS)
def test_prior_tail_is_pymcs(dist):
    """The mass above a value (the gate's prior-conflict check) equals the integral of PyMC's density."""
    import pytensor
    import pytensor.tensor as pt
    from scipy.integrate import quad

    spec = SPECS[dist]
    pymc_dist = getattr(pm, dist).dist(**{k: v for k, v in spec.items() if k != "dist"})
    x = pt.dscalar()
    density = pytensor.function([x], pt.exp(pm.logp(pymc_dist, x)))
    upper = spec.get("upper", np.inf)
    for value in (0.3, 1.7, 4.2):
        expected = quad(lambda v: float(density(v)), value, upper, epsabs=1e-13, epsrel=1e-11, limit=200)[0]
        assert float(priors.distribution(spec).sf(value)) == pytest.approx(expected, rel=1e-7, abs=1e-12), value


def simulated(tmp_path, scale=1.0):
    """Five sites of a Normal outcome (mean 40, sd 7.5, site sd 2), times `scale`."""
    rng = np.random.default_rng(8)
    site = np.repeat(list("abcde"), 60)
    means = 40 + 2 * rng.standard_normal(5)
    y = (np.repeat(means, 60) + 7.5 * rng.standard_normal(site.size)) * scale
    io.write_csv(pd.DataFrame({"obs_id": np.arange(site.size), "Site": site, "scontrol": y}), tmp_path / "data.csv")
    return tmp_path / "data.csv"


def fitted(tmp_path, config, scale=1.0):
    return fit(simulated(tmp_path, scale), tmp_path / "posterior.nc", "complete_pooling", "sim", config, cores=1)


def test_data_on_another_scale_conflict_with_the_prior_predictive(tmp_path, default_config):
    """The outcome times 10⁶ under the lecture's priors: the rows fall outside the prior predictive
    distribution, the table marks the conflict and the warning says so; on the data's own scale not."""
    for scale, conflict in ((1.0, False), (1e6, True)):
        tree = fitted(tmp_path, default_config, scale)
        row = prior_predictive_row("complete_pooling", tree, tree["observed_data"]["y_est"].values)
        assert row["conflict"] == conflict, row
        warned = criticism.prior_warnings(pd.DataFrame([row]), sensitivity_rows("complete_pooling", tree), "y")
        assert any("prior predictive" in line for line in warned) == conflict


def test_power_scaling_flags_a_conflicting_prior_and_not_a_weak_one(tmp_path, default_config):
    """mu ~ N(0, 1) against data with mean 40 is a prior-data conflict; mu ~ N(0, 1000) and
    sigma ~ Exponential(0.01) leave the data in charge."""
    conflicting = changed(
        default_config, "models", "complete_pooling", "priors", "mu", {"dist": "Normal", "mu": 0, "sigma": 1}
    )
    table = sensitivity_rows("complete_pooling", fitted(tmp_path, conflicting)).set_index("parameter")
    assert table.loc["mu", "diagnosis"] == "potential prior-data conflict", table
    weak = changed(
        default_config,
        "models",
        "complete_pooling",
        "priors",
        {
            "mu": {"dist": "Normal", "mu": 0, "sigma": 1000},
            "sigma": {"dist": "Exponential", "lam": 0.01},
        },
    )
    table = sensitivity_rows("complete_pooling", fitted(tmp_path, weak)).set_index("parameter")
    assert (table["diagnosis"] == "✓").all(), table
    assert (table["prior"] < 0.05).all() and (table["likelihood"] > 0.05).all()
