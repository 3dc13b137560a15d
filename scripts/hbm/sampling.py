"""Sampling a model with nutpie or PyMC's NUTS, and the convergence gate."""

from __future__ import annotations

import threading

import numpy as np
import nutpie
import pymc as pm
from nutpie.compile_pymc import _make_functions, _prepare_dims_and_coords, _wrap_with_lock
from nutpie.compiled_pyfunc import from_pyfunc
from pymc.initial_point import make_initial_point_fn
import pytensor
import xarray as xr

# PyTensor compiles through numba; with fastmath, code compiled in this process and code loaded
# from the cache may round differently, so draws would depend on the cache state. Strict IEEE
# arithmetic makes the same config and seed give the same draws, cold cache or warm.
pytensor.config.numba__fastmath = False


def compile_nutpie(model: pm.Model, backend: str = "pytensor"):
    """A nutpie model. ``pytensor``: PyTensor's own compiled functions, cached on disk (in its
    compiledir), called through nutpie's Python-function interface; ``numba``: nutpie's own numba
    compilation (faster per gradient, slower to compile every time)."""
    if backend == "numba":
        return nutpie.compile_pymc_model(model, backend="numba")

    initial_point = _wrap_with_lock(  # chains start in parallel threads; PyTensor functions are not thread-safe
        make_initial_point_fn(
            model=model, jitter_rvs=set(model.free_RVs), return_transformed=True, default_strategy="support_point"
        )
    )
    n_dim, _, logp_fn, expand_fn, initial_point_fn, shape_info, reparameterized = _make_functions(
        model,
        mode="FAST_RUN",
        compute_grad=True,
        join_expanded=False,
        pymc_initial_point_fn=initial_point,
    )
    names, _, shapes = shape_info
    logp, expand = _direct_call(logp_fn), _direct_call(expand_fn)

    def make_logp_fn():
        def logp_and_grad(x):
            value, grad = logp(x)
            return float(value), grad

        return logp_and_grad

    def make_expand_fn(seed1, seed2, chain):
        def expand_draw(x):
            return {name: value.reshape(shape) for name, value, shape in zip(names, expand(x), shapes, strict=True)}

        return expand_draw

    dims, coords = _prepare_dims_and_coords(model, shape_info, reparameterized)
    return from_pyfunc(
        ndim=n_dim,
        make_logp_fn=make_logp_fn,
        make_expand_fn=make_expand_fn,
        make_initial_point_fn=initial_point_fn,
        expanded_dtypes=[np.dtype("float64")] * len(names),
        expanded_shapes=shapes,
        expanded_names=names,
        dims=dims,
        coords=coords,
        reparameterized_names=reparameterized,
    )


def _direct_call(function):
    """Call a compiled PyTensor function through its VM, skipping per-call input checks (about 5x
    less overhead per gradient). PyTensor reuses its output buffers, so results are copied while the
    lock that keeps nutpie's chain threads apart is still held."""
    inputs, outputs, vm, lock = function.input_storage[0], function.output_storage, function.vm, threading.Lock()

    def call(x):
        with lock:
            inputs.storage[0] = x
            vm()
            return [np.array(out.storage[0], dtype="float64", order="C") for out in outputs]

    return call


def sample(model: pm.Model, settings: dict, cores: int) -> xr.DataTree:
    """Posterior draws and sampler statistics for `model` under the `sampling` settings."""
    common = dict(draws=settings["draws"], tune=settings["tune"], chains=settings["chains"])
    if settings["sampler"] == "nutpie":
        compiled = compile_nutpie(model, settings.get("backend", "pytensor"))
        tree = nutpie.sample(
            compiled,
            **common,
            cores=cores,
            seed=settings["seed"],
            target_accept=settings["target_accept"],
            save_warmup=False,
            progress_bar=False,
        )
    else:
        tree = pm.sample(
            **common,
            cores=cores,
            random_seed=settings["seed"],
            target_accept=settings["target_accept"],
            nuts_sampler="pymc",
            progressbar=False,
            compute_convergence_checks=False,
            model=model,
        )
    stats = tree["sample_stats"].to_dataset()
    keep = [name for name in stats.data_vars if stats[name].dtype != object]
    return xr.DataTree.from_dict({"posterior": tree["posterior"].to_dataset(), "sample_stats": stats[keep]})


def convergence_failures(summary, divergences: int, gate: dict) -> list[str]:
    """Each breach of the gate, naming the parameter and value; `summary` is ArviZ's table."""
    failures = []
    if divergences > gate["max_divergences"]:
        failures.append(f"{divergences} divergent transitions (allowed: {gate['max_divergences']})")
    for parameter, row in summary.iterrows():
        if row["r_hat"] > gate["max_rhat"]:
            failures.append(f"{parameter}: r_hat {row['r_hat']:.3f} > {gate['max_rhat']}")
        for column in ("ess_bulk", "ess_tail"):
            if row[column] < gate["min_ess"]:
                failures.append(f"{parameter}: {column} {row[column]:.0f} < {gate['min_ess']}")
    return failures


def settings_for(config: dict, name: str) -> dict:
    """The `sampling` settings with the model's own overrides applied."""
    return {**config["sampling"], **config["models"][name].get("sampling", {})}
