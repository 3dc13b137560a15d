"""Contracts with the private parts of nutpie and PyTensor that `hbm.sampling` relies on for its
speed (see `sampling.UPSTREAM`). When the pinned versions change, these fail with what to re-check."""

import inspect
from importlib import import_module
from importlib.metadata import version

import numpy as np
import nutpie
import pymc as pm
import pytest

from hbm import sampling

RECHECK = (
    "hbm.sampling mirrors private nutpie/PyTensor code (sampling.UPSTREAM names each piece and what it "
    "mirrors): re-read those upstream functions in the installed version, adapt sampling.py, then update "
    "sampling.CHECKED_AGAINST"
)


def tiny_model() -> pm.Model:
    with pm.Model(coords={"site": ["a", "b", "c"]}) as model:
        mu = pm.Normal("mu", 0, 10)
        sigma = pm.Exponential("sigma", 1)
        theta = pm.Normal("theta", mu, sigma, dims="site")
        pm.Normal("y", theta, 1, observed=np.array([0.3, -1.2, 2.0]), dims="site")
    return model


@pytest.mark.parametrize("package", sorted(sampling.CHECKED_AGAINST))
def test_installed_versions_are_the_ones_checked(package):
    installed, checked = version(package), sampling.CHECKED_AGAINST[package]
    assert installed == checked, (
        f"{package} {installed} is installed, sampling.py was checked against {checked}. {RECHECK}"
    )


@pytest.mark.parametrize("qualified", sorted(sampling.UPSTREAM))
def test_every_private_name_exists_with_the_arguments_used(qualified):
    module, _, name = qualified.rpartition(".")
    target = getattr(import_module(module), name, None)
    assert target is not None, f"{qualified} is gone. {RECHECK}"
    arguments = sampling.UPSTREAM[qualified]["arguments"]
    if arguments:
        known = set(inspect.signature(target).parameters)
        assert set(arguments) <= known, f"{qualified} no longer takes {set(arguments) - known}. {RECHECK}"


def test_draws_equal_nutpies_public_compile():
    """The cached numba path samples exactly what nutpie.compile_pymc_model gives, seed for seed."""
    settings = dict(draws=50, tune=50, chains=2, seed=7, progress_bar=False)
    ours = nutpie.sample(sampling.compile_nutpie(tiny_model(), "numba"), **settings)
    public = nutpie.sample(nutpie.compile_pymc_model(tiny_model(), freeze_model=True), **settings)
    for name in ("mu", "sigma", "theta"):
        np.testing.assert_array_equal(ours.posterior[name].values, public.posterior[name].values, err_msg=RECHECK)
    assert list(ours.posterior["theta"].dims) == ["chain", "draw", "site"]
    assert list(ours.posterior["site"].values) == ["a", "b", "c"]


def test_direct_call_equals_the_function_call():
    """`_direct_call` drives PyTensor's VM and storage cells; it must return what the function returns."""
    model = tiny_model()
    _, _, logp_fn, _, _, _, _ = sampling._functions(model, "FAST_RUN", False)
    x = np.linspace(-0.5, 0.5, 5)
    expected = logp_fn(x)
    got = sampling._direct_call(logp_fn)(x)
    assert len(got) == len(expected) == 2, RECHECK
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b, err_msg=RECHECK)
