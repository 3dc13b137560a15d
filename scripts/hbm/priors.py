"""The priors of the config as distributions: their log density at posterior draws (the `log_prior`
group that power-scaling sensitivity needs), and draws of the prior predictive distribution."""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import stats

from hbm.data import Grouped


class HalfStudentT:
    """Student t with location 0 folded onto [0, inf), as PyMC's HalfStudentT (SciPy has no such family)."""

    def __init__(self, nu: float, sigma: float):
        self.t = stats.t(nu, 0.0, sigma)

    def logpdf(self, x):
        x = np.asarray(x, float)
        return np.where(x >= 0, np.log(2) + self.t.logpdf(x), -np.inf)

    def sf(self, x):
        return np.where(np.asarray(x, float) >= 0, 2 * self.t.sf(x), 1.0)


# Every prior family of the config (workflow/schemas/config.schema.yaml) as SciPy's distribution with
# PyMC's parameters; the steps build the PyMC distribution of the same name (`hbm.builders.prior`).
DISTRIBUTIONS = {
    "Normal": lambda spec: stats.norm(spec["mu"], spec["sigma"]),
    "StudentT": lambda spec: stats.t(spec["nu"], spec["mu"], spec["sigma"]),
    "Cauchy": lambda spec: stats.cauchy(spec["alpha"], spec["beta"]),
    "Uniform": lambda spec: stats.uniform(spec["lower"], spec["upper"] - spec["lower"]),
    "Exponential": lambda spec: stats.expon(scale=1 / spec["lam"]),
    "HalfNormal": lambda spec: stats.halfnorm(scale=spec["sigma"]),
    "HalfCauchy": lambda spec: stats.halfcauchy(scale=spec["beta"]),
    "HalfStudentT": lambda spec: HalfStudentT(spec["nu"], spec["sigma"]),
    "Gamma": lambda spec: stats.gamma(spec["alpha"], scale=1 / spec["beta"]),
    "LogNormal": lambda spec: stats.lognorm(spec["sigma"], scale=np.exp(spec["mu"])),
}
PRIOR_DRAWS = 500


def distribution(spec: dict):
    """A config prior such as {dist: Normal, mu: 0, sigma: 50} as a frozen scipy distribution."""
    return DISTRIBUTIONS[spec["dist"]](spec)


def log_prior(posterior: xr.Dataset, priors: dict) -> xr.Dataset:
    """log p(parameter) at each draw for every parameter with a prior of its own in the config (for
    partial pooling the population's three: the site means' density given them belongs to the model's
    structure, not to a prior a user chooses)."""
    return xr.Dataset(
        {
            name: (posterior[name].dims, distribution(spec).logpdf(posterior[name].values))
            for name, spec in priors.items()
        },
        coords={dim: posterior[dim] for dim in posterior.dims},
    )


def prior_draws(rows: int, max_values: int) -> int:
    """Prior predictive draws to store: PRIOR_DRAWS, fewer where draws x rows would pass `max_values`."""
    return int(max(1, min(PRIOR_DRAWS, max_values // max(rows, 1))))


def prior_predictive(name: str, data: Grouped, priors: dict, draws: int, rng) -> tuple[xr.Dataset, xr.Dataset]:
    """Draws of the parameters from their priors and of every row from the model given them (PyMC's
    `sample_prior_predictive` on the model's per-row, centered form): (prior, prior_predictive)."""
    import pymc as pm

    from hbm import models

    model = models.build(name, data, priors, "centered", likelihood="rows")
    tree = pm.sample_prior_predictive(draws=draws, model=model, random_seed=rng)
    # PyMC orders the variables from a set, which differs between processes: sorted, the file is the same
    prior, predictive = (tree[group].to_dataset().drop_attrs() for group in ("prior", "prior_predictive"))
    return prior[sorted(prior.data_vars)], predictive.assign_coords(obs_id=data.obs_id)
