"""The convergence gate's advice: what it says is a likely cause of a failed fit."""

import numpy as np

from hbm import gate
from hbm.data import Grouped

SETTINGS = {"draws": 1000, "chains": 4, "tune": 1000}
GATE = {"min_ess": 400}


def data(y):
    y = np.asarray(y, float)
    return Grouped(y=y, site_idx=np.arange(y.size) % 3, sites=["a", "b", "c"], obs_id=np.arange(y.size))


def test_advice_names_only_a_parameterization_the_model_has():
    priors = {"mu": {"dist": "Normal", "mu": 0, "sigma": 50}, "sigma": {"dist": "Exponential", "lam": 1}}
    rows = data(np.linspace(-1, 1, 30))
    failures = ["12 divergent transitions"]
    complete = gate.likely_causes(failures, "centered", rows, priors, SETTINGS, GATE, ("centered",))
    assert not any("parameterization" in cause for cause in complete)
    partial = gate.likely_causes(failures, "centered", rows, priors, SETTINGS, GATE, ("marginal", "centered"))
    assert any("use parameterization: marginal" in cause for cause in partial)


def test_prior_conflicts_under_any_family():
    """A location prior with almost no mass beyond the data's mean, and a scale prior with almost none
    above the data's sd, are named whatever their family."""
    rows = data(np.linspace(30, 50, 30))
    far = {"mu": {"dist": "Uniform", "lower": 0, "upper": 10}, "sigma": {"dist": "Gamma", "alpha": 50, "beta": 500}}
    found = gate.prior_conflicts(far, rows)
    assert len(found) == 2 and "Uniform(lower=0, upper=10)" in found[0] and "above the data's sd" in found[1]
    near = {"mu": {"dist": "Cauchy", "alpha": 0, "beta": 1}, "sigma": {"dist": "HalfStudentT", "nu": 3, "sigma": 1}}
    assert gate.prior_conflicts(near, rows) == []
