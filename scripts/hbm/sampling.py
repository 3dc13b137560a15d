"""Sampling a model with nutpie or PyMC's NUTS, and the convergence gate."""

from __future__ import annotations

import hashlib
import threading

import numba
import numpy as np
import nutpie
import pymc as pm
import pytensor
import xarray as xr
from nutpie.compile_pymc import (
    CompiledPyMCModel,
    _make_functions,
    _prepare_dims_and_coords,
    _wrap_with_lock,
    make_user_data,
)
from nutpie.compiled_pyfunc import from_pyfunc
from pymc.initial_point import make_initial_point_fn
from pymc.model.transform.optimization import freeze_dims_and_data
from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS, compile_numba_function_src

# PyTensor compiles through numba; with fastmath, code compiled in this process and code loaded
# from the cache may round differently, so draws would depend on the cache state. Strict IEEE
# arithmetic makes the same config and seed give the same draws, cold cache or warm.
pytensor.config.numba__fastmath = False

BACKENDS = ("numba", "pytensor")

# nutpie's public `compile_pymc_model` recompiles numba code in every new process (seconds per fit);
# this module keeps nutpie's callbacks in numba's disk cache instead, which needs these private pieces
# of nutpie and PyTensor. Each is named with the upstream code it mirrors and the arguments used;
# tests/test_contracts.py checks them, and that the draws equal the public path's, for the versions
# in CHECKED_AGAINST, and fails with what to re-check when the installed versions differ.
CHECKED_AGAINST = {"nutpie": "0.16.11", "pytensor": "3.3.8"}
UPSTREAM = {
    "nutpie.compile_pymc._make_functions": {
        "arguments": ("model", "mode", "compute_grad", "join_expanded", "pymc_initial_point_fn"),
        "mirrors": "its call in nutpie.compile_pymc._compile_pymc_model_numba (see `_functions`)",
    },
    "nutpie.compile_pymc._prepare_dims_and_coords": {
        "arguments": ("model", "shape_info", "reparameterized_names"),
        "mirrors": "its call in nutpie.compile_pymc._compile_pymc_model_numba",
    },
    "nutpie.compile_pymc._wrap_with_lock": {
        "arguments": ("func",),
        "mirrors": "nutpie.compile_pymc.compile_pymc_model, which locks the initial-point function",
    },
    "nutpie.compile_pymc.CompiledPyMCModel": {
        "arguments": ("_n_dim", "dims", "_coords", "_shapes", "compiled_logp_func", "compiled_expand_func",
                      "initial_point_func", "shared_data", "shared_var_keys", "user_data", "n_expanded",
                      "shape_info", "logp_func", "expand_func", "reparameterized_names"),
        "mirrors": "the model built at the end of nutpie.compile_pymc._compile_pymc_model_numba",
    },
    "nutpie.compile_pymc.make_user_data": {
        "arguments": ("shared_var_keys", "shared_data"),
        "mirrors": "nutpie.compile_pymc._compile_pymc_model_numba (no shared data: it is frozen in)",
    },
    "pytensor.link.numba.cache.compile_numba_function_src": {
        "arguments": ("src", "function_name", "global_env", "cache_key"),
        "mirrors": "PyTensor's numba dispatchers, which cache generated source under a key",
    },
    "pytensor.compile.executor.Function": {
        "arguments": (),
        "mirrors": "Function.__call__'s fast path: input_storage, vm(), output_storage (`_direct_call`); "
        "vm.jit_fn, the numba function of a NUMBA-mode function (`_cached_callback`)",
    },
    "pytensor.link.numba.cache.CACHED_SRC_FUNCTIONS": {
        "arguments": (),
        "mirrors": "the cache keys PyTensor gives its own numba functions (`_cached_callback`)",
    },
}  # fmt: skip

# The C callbacks nutpie calls for every gradient and every kept draw (its numba interface). They
# wrap PyTensor's numba function of the model, and are compiled from this source so that numba can
# cache them on disk beside PyTensor's own functions. Each defines `callback`.
_LOGP_SOURCE = """
def callback(dim, x_, grad_, logp_, user_data_):
    if dim != N_DIM:
        return -1
    try:
        x = carray(x_, (N_DIM,))
        grad = carray(grad_, (N_DIM,))
        value, gradient = model_function(x)
        logp_[0] = value
        finite = True
        for i in range(N_DIM):
            grad[i] = gradient[i]
            finite = finite and np.isfinite(gradient[i])
    except Exception:
        return 1
    if not finite:
        return 3
    if not np.isfinite(value):
        return 4
    return 0
"""
_EXPAND_SOURCE = """
def callback(dim, n_expanded, x_, out_, user_data_):
    if dim != N_DIM or n_expanded != N_EXPANDED:
        return -1
    try:
        x = carray(x_, (N_DIM,))
        out = carray(out_, (N_EXPANDED,))
        (values,) = model_function(x)
        for i in range(N_EXPANDED):
            out[i] = values[i]
    except Exception:
        return -2
    return 0
"""
_DOUBLES = numba.types.CPointer(numba.types.double)
_LOGP_SIGNATURE = numba.types.int64(numba.types.uint64, _DOUBLES, _DOUBLES, _DOUBLES, numba.types.voidptr)
_EXPAND_SIGNATURE = numba.types.int64(numba.types.uint64, numba.types.uint64, _DOUBLES, _DOUBLES, numba.types.voidptr)


def compile_nutpie(model: pm.Model, backend: str = "numba", var_names=None):
    """A nutpie model. ``numba``: PyTensor's numba functions behind C callbacks, both cached on
    disk (in PyTensor's compiledir), so nutpie calls no Python while it samples; ``pytensor``: the
    same functions called through nutpie's Python-function interface (no callback to compile, but
    about 50 µs of Python per gradient). `var_names`: the variables to store (default: every free and
    deterministic one)."""
    if backend == "numba":
        return _compile_numba(model, var_names)
    if backend != "pytensor":
        raise ValueError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    n_dim, _, logp_fn, expand_fn, initial_point_fn, shape_info, reparameterized = _functions(
        model, "FAST_RUN", False, var_names
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


def _functions(model: pm.Model, mode: str, join_expanded: bool, var_names=None):
    """nutpie's compiled log density with gradient, expansion to the stored variables, and jittered
    initial points (locked: chains start in parallel threads, PyTensor functions are not thread-safe)."""
    initial_point = make_initial_point_fn(
        model=model, jitter_rvs=set(model.free_RVs), return_transformed=True, default_strategy="support_point"
    )
    return _make_functions(
        model,
        mode=mode,
        compute_grad=True,
        join_expanded=join_expanded,
        pymc_initial_point_fn=_wrap_with_lock(initial_point),
        var_names=var_names,
    )


def _compile_numba(model: pm.Model, var_names=None) -> CompiledPyMCModel:
    """nutpie's numba interface with callbacks numba caches on disk. The data are frozen into the
    graph as constants, so the callbacks need no pointers to it and a cached one is reused as is."""
    model = freeze_dims_and_data(model)
    n_dim, n_expanded, logp_fn, expand_fn, initial_point_fn, shape_info, reparameterized = _functions(
        model, "NUMBA", True, var_names
    )
    dims, coords = _prepare_dims_and_coords(model, shape_info, reparameterized)
    return CompiledPyMCModel(
        _n_dim=n_dim,
        dims=dims,
        _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info)},
        compiled_logp_func=_cached_callback(_LOGP_SOURCE, _LOGP_SIGNATURE, logp_fn, N_DIM=n_dim),
        compiled_expand_func=_cached_callback(
            _EXPAND_SOURCE, _EXPAND_SIGNATURE, expand_fn, N_DIM=n_dim, N_EXPANDED=n_expanded
        ),
        initial_point_func=initial_point_fn,
        shared_data={},
        shared_var_keys={},
        user_data=make_user_data({}, {}),
        n_expanded=n_expanded,
        shape_info=shape_info,
        logp_func=logp_fn,
        expand_func=expand_fn,
        reparameterized_names=reparameterized,
    )


def _cached_callback(source: str, signature, function, **constants):
    """The numba C callback defined in `source`, calling the compiled PyTensor `function` (named
    `model_function` there). It is cached under a key made of the source, PyTensor's own cache key of
    `function` (which covers the frozen data) and the `constants`, so no model loads another's."""
    inner = function.vm.jit_fn
    inner_key = CACHED_SRC_FUNCTIONS.get(inner.py_func)  # None where PyTensor could not cache it either
    key = (
        None
        if inner_key is None
        else hashlib.sha256(f"{source}{inner_key}{sorted(constants.items())}".encode()).hexdigest()
    )
    env = {"__name__": __name__, "carray": numba.carray, "np": np, "model_function": inner, **constants}
    python_function = compile_numba_function_src(source, "callback", env, cache_key=key)
    return numba.cfunc(signature, cache=key is not None)(python_function)


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


def sample(model: pm.Model, settings: dict, cores: int, var_names=None) -> xr.DataTree:
    """Posterior draws and sampler statistics for `model` under the `sampling` settings; `var_names`:
    the variables to store (default: every free and deterministic one)."""
    common = dict(draws=settings["draws"], tune=settings["tune"], chains=settings["chains"])
    if settings["sampler"] == "nutpie":
        compiled = compile_nutpie(model, settings.get("backend", "numba"), var_names)
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
            var_names=var_names,
            model=model,
        )
    stats = tree["sample_stats"].to_dataset()
    keep = [name for name in stats.data_vars if stats[name].dtype != object]
    return xr.DataTree.from_dict({"posterior": tree["posterior"].to_dataset(), "sample_stats": stats[keep]})


def posterior_of(model: pm.Model, name: str, data, spec: dict, parameterization: str, settings: dict, cores: int, rng):
    """Sample `model` (model `name` of the registry built for `data`); return the sampler's tree, the
    posterior with what the marginal parameterization integrated out drawn back from its exact
    conditional (with `rng`) and the site labels as coordinates, and the names of what was drawn back."""
    from hbm import models

    tree = sample(model, settings, cores)
    posterior = tree["posterior"].to_dataset()
    drawn_after = {}
    if parameterization == "marginal":
        entry = models.get(name)
        drawn_after = entry.draw_integrated(posterior, data, spec["priors"], rng)
        posterior = posterior.assign(drawn_after)[list(entry.parameters)]
    return tree, posterior.assign_coords(site=data.sites), list(drawn_after)


def convergence_failures(summary, divergences: int, gate: dict) -> list[str]:
    """Each breach of the gate, naming the parameter and value; `summary` is ArviZ's table. A
    diagnostic that could not be computed (NaN) is a breach."""
    failures = []
    if divergences > gate["max_divergences"]:
        failures.append(f"{divergences} divergent transitions (allowed: {gate['max_divergences']})")
    for parameter, row in summary.iterrows():
        if not row["r_hat"] <= gate["max_rhat"]:  # NaN, where it cannot be computed, fails too
            failures.append(f"{parameter}: r_hat {row['r_hat']:.3f} > {gate['max_rhat']}")
        for column in ("ess_bulk", "ess_tail"):
            if not row[column] >= gate["min_ess"]:
                failures.append(f"{parameter}: {column} {row[column]:.0f} < {gate['min_ess']}")
    return failures


def model_graph_png(model) -> bytes:
    """The model's graph as PNG, the same bytes in every run. PyMC's `model_to_graphviz` orders the
    plates by `hash()` of their dims, which differs between Python processes, so the DOT statements
    are put in a fixed order (plates, then nodes, then edges, each sorted) before rendering."""
    graph = pm.model_to_graphviz(model)
    blocks, depth = [], 0
    for line in graph.body:
        if depth == 0:
            blocks.append([line])
        else:
            blocks[-1].append(line)
        depth += line.rstrip().endswith("{") - (line.strip() == "}")
    plates = sorted([block[0], *sorted(block[1:-1]), block[-1]] for block in blocks if len(block) > 1)
    statements = [block[0] for block in blocks if len(block) == 1]
    edges = sorted(line for line in statements if " -> " in line)
    nodes = sorted(line for line in statements if " -> " not in line)
    graph.body[:] = [*(line for plate in plates for line in plate), *nodes, *edges]
    return graph.pipe(format="png")


def gate_failures(posterior: xr.Dataset, divergences: int, thresholds: dict) -> list[str]:
    """The convergence gate on `posterior`'s parameters (r-hat, ESS) and the sampler's divergences."""
    from arviz_stats import summary

    return convergence_failures(summary(posterior, kind="diagnostics", round_to="none"), divergences, thresholds)
