"""Fit one model to one selection: its posterior, sampler statistics, data and pointwise
log-likelihood, then the posterior predictive draws of every row, computed from the draws, and the
model's graph. A model that fails the convergence gate is written all the same, marked as failed:
the gate step at the end of the run decides what that means (config `convergence.on_failure`)."""

import logging
import time

import xarray as xr

from hbm import io
from hbm.config import sampling_settings


def fit_step(
    data_path,
    posterior_path,
    predictive_path,
    graph_path,
    name: str,
    selection: str,
    config: dict,
    cores: int,
    compiledir=None,
    log_path=None,
):
    """The fit step of model `name`; `compiledir`: PyTensor's compile cache for this job (PyTensor's
    own default if None)."""
    io.setup_logging(log_path)
    io.load_modelling(compiledir)
    fit(data_path, posterior_path, name, selection, config, cores, predictive_path, graph_path)


def fit(
    data_path, out_path, name: str, selection: str, config: dict, cores: int, predictive_path=None, graph_path=None
) -> xr.DataTree:
    """Fit model `name`; write its posterior to `out_path` and, if given, its posterior predictive and
    the model's graph (PNG)."""

    from hbm import gate, models, pointwise, priors, sampling
    from hbm.data import model_data

    log = logging.getLogger("hbm")
    selected = io.read_grouped(data_path, config["outcome"], config["group"])
    data, left_out = model_data(selected, name)
    selection_rows = len(selected.y)
    if left_out:
        log.warning(
            "%s leaves out %d sites whose rows are all equal (their own sd has no proper posterior): %s",
            name,
            len(left_out),
            ", ".join(left_out),
        )
    spec = config["models"][name]
    settings = sampling_settings(config, name)
    parameterization = models.parameterization_of(name, spec)
    log.info("fitting %s to %s: %d rows in %d sites, %s", name, selection, len(data.y), len(data.sites), settings)

    start = time.perf_counter()
    model = models.build(name, data, spec["priors"], parameterization)
    if graph_path:
        with io.atomic_path(graph_path) as tmp:
            tmp.write_bytes(sampling.model_graph_png(model))
    rng = io.rng_for(settings["seed"], selection, name, "mu")
    tree, posterior, drawn_after = sampling.posterior_of(
        model, name, data, spec, parameterization, settings, cores, rng
    )
    seconds = time.perf_counter() - start

    # the selection's rows decide, so that every model of a selection stores it alike (LOO compares them)
    level = pointwise.pointwise_level(config, posterior.sizes["chain"] * posterior.sizes["draw"], selection_rows)
    divergences = int(tree["sample_stats"]["diverging"].sum())
    # what the marginal parameterization draws after sampling, from its exact conditional, is left out
    gate_failures = sampling.gate_failures(posterior.drop_vars(list(drawn_after)), divergences, config["convergence"])
    offered = models.get(name).parameterizations
    causes = gate.likely_causes(
        gate_failures, parameterization, data, spec["priors"], settings, config["convergence"], offered
    )
    attrs = io.provenance(
        config,
        model=name,
        selection=selection,
        parameterization=parameterization,
        drawn_after_sampling=list(drawn_after),
        sampler=settings["sampler"],
        backend=settings.get("backend", "numba") if settings["sampler"] == "nutpie" else "pymc",
        seed=settings["seed"],
        draws=settings["draws"],
        tune=settings["tune"],
        chains=settings["chains"],
        target_accept=settings["target_accept"],
        pointwise_level=level,
        divergences=divergences,
        convergence_failures=gate_failures,
        likely_causes=causes,
        sites_left_out=left_out,
    )
    if predictive_path:  # first, so that its rows x draws are freed before the prior predictive's are made
        io.write_tree(_posterior_predictive(posterior, name, selection, data, config, attrs), predictive_path)
    result = xr.DataTree.from_dict(
        {
            "posterior": posterior.assign_attrs(attrs),
            "sample_stats": tree["sample_stats"].to_dataset(),
            "observed_data": io.observed_data(data.y, data.obs_id),
            "constant_data": xr.Dataset(
                {
                    "site_idx": ("obs_id", data.site_idx),
                    "n": ("site", data.n),
                    "ybar": ("site", data.ybar),
                    "ss": ("site", data.ss),
                },
                coords={"obs_id": data.obs_id, "site": data.sites},
            ),
            "log_likelihood": pointwise.log_likelihood(posterior, name, data, level),
            "log_prior": priors.log_prior(posterior, spec["priors"]),
            **_prior_groups(name, selection, data, spec["priors"], settings["seed"], config),
        }
    )
    result.attrs.update(attrs)
    log.info("sampled in %.1f s with %d divergences; log-likelihood stored per %s", seconds, divergences, level)
    if gate_failures:
        log.warning("%s on %s failed the convergence gate: %s", name, selection, "; ".join(gate_failures + causes))
    io.write_tree(result, out_path)
    return result


def _prior_groups(name, selection, data, model_priors, seed, config) -> dict:
    """The `prior` and `prior_predictive` groups: draws from the priors and of every row given them."""
    from hbm import priors

    draws = priors.prior_draws(len(data.y), config["storage"]["max_values"])
    rng = io.rng_for(seed, selection, name, "prior_predictive")
    prior, predictive = priors.prior_predictive(name, data, model_priors, draws, rng)
    return {"prior": prior, "prior_predictive": predictive}


def _posterior_predictive(posterior, name, selection, data, config, attrs) -> xr.DataTree:
    from hbm import pointwise

    rng = io.rng_for(int(attrs["seed"]), selection, name, "posterior_predictive")
    predictive = pointwise.posterior_predictive(posterior, name, data, rng, config["storage"]["max_values"])
    attrs = attrs | {"thinning": str(predictive.attrs["thinning"])}
    return io.draws_with_observed("posterior_predictive", predictive, data.y, data.obs_id, attrs)


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821
    io.run_step(
        fit_step,
        sm.input.data,
        sm.output.posterior,
        sm.output.predictive,
        sm.output.graph,
        sm.wildcards.model,
        sm.wildcards.selection,
        sm.params.settings,
        sm.threads,
        sm.params.compiledir,
        sm.log[0],
    )
