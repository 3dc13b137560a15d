"""Exactness on data with many small groups: Minnesota radon (85 counties, half with 5 houses or
fewer, three with one) and simulated data with many groups of 1, 2 and 3 rows.

Every posterior mean lies within `tolerance` MCSE of the exact posterior mean (numerical
integration, tests/exact.py). With m comparisons per fit the tolerance is the larger of 4 and the
normal quantile that keeps the chance of any false failure in that fit below 1% (Bonferroni):
4.0 MCSE for about 170 comparisons. The default parameterizations must also pass the convergence
gate; the lecture's forms (centered) may fail it on such data, and then the gate must say so.
"""

import numpy as np
import pandas as pd
import pytest
from arviz_stats import mcse
from scipy.stats import norm

from exact import partial_pooling, single_normal
from fit import fit
from hbm import data as hdata
from hbm import io
from helpers import changed, load_config, radon

pytestmark = pytest.mark.slow

LOCATION = {"dist": "Normal", "mu": 0, "sigma": 10}
SCALE = {"dist": "Exponential", "lam": 1}
PRIORS = {
    "complete_pooling": {"mu": LOCATION, "sigma": SCALE},
    "no_pooling": {"mu": LOCATION, "sigma": SCALE},
    "partial_pooling": {"hyper_mu": LOCATION, "within_variability": SCALE, "between_variability": SCALE},
}
# (model, settings): `strict` variants must pass the gate and be exact; the others exact or flagged.
VARIANTS = {
    "complete pooling": ("complete_pooling", {}, True),
    "no pooling, marginal": ("no_pooling", {"parameterization": "marginal"}, True),
    "complete pooling, PyMC NUTS": ("complete_pooling", {"sampler": "pymc"}, True),
    "no pooling, marginal, pytensor backend": (
        "no_pooling",
        {"parameterization": "marginal", "backend": "pytensor"},
        True,
    ),
    "no pooling, marginal, PyMC NUTS": ("no_pooling", {"parameterization": "marginal", "sampler": "pymc"}, True),
    "no pooling, centered": ("no_pooling", {"parameterization": "centered"}, False),
    "partial pooling, marginal": ("partial_pooling", {"parameterization": "marginal"}, True),
    "partial pooling, marginal, pytensor backend": (
        "partial_pooling",
        {"parameterization": "marginal", "backend": "pytensor"},
        True,
    ),
    "partial pooling, marginal, PyMC NUTS": (
        "partial_pooling",
        {"parameterization": "marginal", "sampler": "pymc"},
        True,
    ),
    "partial pooling, noncentered": ("partial_pooling", {"parameterization": "noncentered"}, False),
    "partial pooling, centered": ("partial_pooling", {"parameterization": "centered"}, False),
}


def radon_rows():
    frame = hdata.read_table(radon(), "log_radon", "county")
    sites = [site for site in dict.fromkeys(frame["county"]) if site != "HENNEPIN"]
    return hdata.subset(frame, "log_radon", "county", sites)[0], sites


def simulated_rows():
    """60 groups of 1, 2 or 3 rows and 15 of 8 to 40; hyper_mu 1, σ_μ 0.5, σ_y 0.8."""
    rng = np.random.default_rng(11)
    sizes = [1, 2, 3] * 20 + list(rng.integers(8, 41, 15))
    sites = [f"g{j:02d}" for j in range(len(sizes))]
    means = 1 + 0.5 * rng.standard_normal(len(sizes))
    group = np.repeat(sites, sizes)
    y = np.repeat(means, sizes) + 0.8 * rng.standard_normal(group.size)
    rows = pd.DataFrame({"obs_id": np.arange(group.size), "county": group, "log_radon": y})
    return rows, sites


@pytest.fixture(scope="module", params=["radon", "simulated"])
def dataset(request, tmp_path_factory):
    rows, sites = radon_rows() if request.param == "radon" else simulated_rows()
    path = tmp_path_factory.mktemp(request.param) / "data.csv"
    io.write_csv(rows, path)
    groups = [rows.loc[rows["county"] == site, "log_radon"].to_numpy() for site in sites]
    return request.param, path, sites, groups


def config_for(model, settings):
    config = load_config("config/config.yaml")
    config.update(outcome="log_radon", group="county")
    config["models"] = {model: {"priors": PRIORS[model]}}
    if "parameterization" in settings:
        config["models"][model]["parameterization"] = settings["parameterization"]
    config["sampling"].update({k: v for k, v in settings.items() if k != "parameterization"})
    return changed(config, "convergence", "on_failure", "warn")


def exact_means(model, groups):
    """Exact posterior means as {parameter: value or per-site array}."""
    if model == "complete_pooling":
        return single_normal(np.concatenate(groups), 0, 10, 1)
    if model == "no_pooling":
        per_site = [single_normal(g, 0, 10, 1) for g in groups]
        return {name: np.array([s[name] for s in per_site]) for name in ("mu", "sigma")}
    return partial_pooling(groups, 0, 10, 1, 1)


def deviations(posterior, exact):
    """(parameter label, z) for every parameter: (posterior mean - exact) / MCSE."""
    means, errors = posterior.mean(("chain", "draw")), mcse(posterior, method="mean")
    found = []
    for name, value in exact.items():
        z = (means[name].values - value) / errors[name].values
        labels = [name] if np.ndim(z) == 0 else [f"{name}[{s}]" for s in posterior["site"].values]
        found += list(zip(labels, np.atleast_1d(z)))
    return found


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_model_is_exact_on_many_small_groups(dataset, variant, tmp_path):
    name, path, sites, groups = dataset
    model, settings, strict = VARIANTS[variant]
    tree = fit(path, tmp_path / "posterior.nc", model, name, config_for(model, settings), cores=2)
    flagged = tree.attrs["convergence_failures"] != "[]"
    if strict:
        assert not flagged, f"{variant} on {name} failed the gate: {tree.attrs['convergence_failures']}"
        assert int(tree.attrs["divergences"]) == 0
    found = deviations(tree["posterior"].to_dataset(), exact_means(model, groups))
    tolerance = max(4.0, float(norm.isf(0.005 / len(found))))
    off = [f"{label}: {z:+.1f} MCSE" for label, z in found if abs(z) > tolerance]
    assert flagged or not off, (
        f"{variant} on {name}: {len(off)} of {len(found)} off by > {tolerance:.2f} MCSE: {off[:10]}"
    )


def test_partial_pooling_agrees_with_the_published_lmer_fit(tmp_path):
    """Gelman & Hill's varying-intercept model on all 85 counties: lmer (REML=FALSE) gives μ 1.312,
    σ_α 0.306, σ_y 0.798; under weak priors each lies within one posterior sd of the posterior mean."""
    frame = hdata.read_table(radon(), "log_radon", "county")
    rows, _ = hdata.subset(frame, "log_radon", "county", list(dict.fromkeys(frame["county"])))
    io.write_csv(rows, tmp_path / "data.csv")
    config = config_for("partial_pooling", {})
    tree = fit(tmp_path / "data.csv", tmp_path / "posterior.nc", "partial_pooling", "radon85", config, cores=2)
    posterior = tree["posterior"]
    for name, published in {"hyper_mu": 1.312, "between_variability": 0.306, "within_variability": 0.798}.items():
        draws = posterior[name].values
        assert abs(draws.mean() - published) <= draws.std(), (name, draws.mean(), draws.std(), published)
