"""Fit one formula model (bambi) to one selection with the workflow's sampler: its posterior in bambi's
names, sampler statistics, data and pointwise log-likelihood, each site's mean where the formula has
one, then the posterior predictive draws of every row and the model's graph. A fit that fails the
convergence gate is written all the same, marked as failed, as the models' fits are."""

import logging
import time

import numpy as np
import pandas as pd
import xarray as xr

from hbm import io


def fit_formula_step(
    data_path,
    rows_path,
    posterior_path,
    predictive_path,
    graph_path,
    name: str,
    selection: str,
    settings: dict,
    cores: int,
    new_sites: dict,
    compiledir=None,
    log_path=None,
):
    """The fit step of formula `name`; `new_sites`: new site -> the NetCDF of its predictions (none for
    a formula without a term grouped by site); `compiledir`: PyTensor's compile cache for this job."""
    io.setup_logging(log_path)
    io.load_modelling(compiledir)
    fit_formula(
        data_path, rows_path, posterior_path, name, selection, settings, cores, predictive_path, graph_path, new_sites
    )


def fit_formula(
    data_path,
    rows_path,
    out_path,
    name,
    selection,
    settings,
    cores,
    predictive_path=None,
    graph_path=None,
    new_sites=None,
) -> xr.DataTree:
    """Fit formula `name` (settings["formula"]) to the selection's rows; write its posterior to `out_path`
    and, if given, its posterior predictive, graph and the predictions of new sites ({site: path})."""
    import pymc as pm

    from hbm import data as hdata
    from hbm import formulas, sampling

    log = logging.getLogger("hbm")
    outcome, group, spec = settings["outcome"], settings["group"], settings["formula"]
    # the check made before any job, again here: it is the only one a file downloaded by the first job gets
    rows = formulas.read_rows(rows_path, group)
    hdata.check_formulas(
        {"outcome": outcome, "group": group, "models": settings["models"], "formulas": {name: spec}}
        | {"data": settings.get("reading")},
        data_path,
        {selection: list(dict.fromkeys(rows[group]))},
    )
    frame, dropped = formulas.frame_for(data_path, rows, spec["formula"], outcome, group, settings.get("reading"))
    for column, count in dropped.items():
        log.info("dropped %d rows with a missing %r, a column of the formula", count, column)
    sites = list(dict.fromkeys(frame[group]))
    log.info("fitting %s (%s) to %s: %d rows in %d sites", name, spec["formula"], selection, len(frame), len(sites))

    start = time.perf_counter()
    model = formulas.build(spec, frame, settings["models"], group)
    log.info("%s", model)
    if graph_path:
        with io.atomic_path(graph_path) as tmp:
            tmp.write_bytes(sampling.model_graph_png(model.backend.model))
    sampled = sampling.sample(model.backend.model, settings["sampling"], cores, formulas.stored_variables(model))
    seconds = time.perf_counter() - start
    pointwise = pm.compute_log_likelihood(
        sampled, model=model.backend.model, extend_inferencedata=False, progressbar=False
    )
    posterior = formulas.reported(sampled["posterior"].to_dataset())
    if formulas.has_site_means(spec["formula"], outcome, group):
        posterior[formulas.SITE_MEAN] = formulas.site_means(
            model, xr.DataTree.from_dict({"posterior": posterior}), sites, group
        )
    divergences = int(sampled["sample_stats"]["diverging"].sum())
    failures = sampling.gate_failures(posterior, divergences, settings["convergence"])
    attrs = io.provenance(
        settings,
        formula_name=name,
        formula=spec["formula"],
        family=spec.get("family", "gaussian"),
        priors=spec.get("priors", "default"),
        selection=selection,
        sampler=settings["sampling"]["sampler"],
        seed=settings["sampling"]["seed"],
        rows=len(frame),
        dropped_rows=dropped,
        divergences=divergences,
        convergence_failures=failures,
        likely_causes=[],
    )
    obs_id = frame["obs_id"].to_numpy()
    log_likelihood = pointwise["log_likelihood"].to_dataset() if isinstance(pointwise, xr.DataTree) else pointwise
    result = xr.DataTree.from_dict(
        {
            "posterior": posterior.assign_attrs(attrs),
            "sample_stats": sampled["sample_stats"].to_dataset(),
            "observed_data": io.observed_data(frame[outcome], obs_id),
            "constant_data": xr.Dataset(
                {"site_idx": ("obs_id", pd.Categorical(frame[group], categories=sites).codes.astype(np.int64))},
                coords={"obs_id": obs_id, "site": sites},
            ),
            "log_likelihood": _by_row(log_likelihood[outcome].rename("y_est").to_dataset(), obs_id),
        }
    )
    result.attrs.update(attrs)
    log.info("sampled in %.1f s with %d divergences", seconds, divergences)
    if failures:
        log.warning("%s on %s failed the convergence gate: %s", name, selection, "; ".join(failures))
    io.write_tree(result, out_path)
    if predictive_path:
        predictive = _posterior_predictive(
            model, sampled["posterior"].to_dataset(), frame, selection, name, settings, attrs
        )
        io.write_tree(predictive, predictive_path)
    if new_sites:
        table = hdata.read_table(data_path, outcome, group, settings.get("reading"))  # once for every new site
        for site, path in new_sites.items():
            io.write_tree(_new_site(model, result, data_path, table, site, selection, name, settings), path)
    return result


def _by_row(dataset: xr.Dataset, obs_id: np.ndarray) -> xr.Dataset:
    """bambi's row dimension (`__obs__`) as the models' `obs_id`, labelled with the data rows."""
    row = next(dim for dim in dataset.dims if dim not in ("chain", "draw"))
    return dataset.rename({row: "obs_id"}).assign_coords(obs_id=obs_id)


def _posterior_predictive(model, sampled, frame, selection, name, settings, attrs) -> xr.DataTree:
    """Replicated rows from the `sampled` posterior; draws thinned evenly past `storage.max_values`."""
    from hbm import formulas, pointwise

    posterior, step = pointwise.thinned(sampled, len(frame), settings["storage"]["max_values"])
    rng = io.rng_for(int(attrs["seed"]), selection, name, "posterior_predictive")
    draws = formulas.response_draws(model, posterior, rng)
    obs_id = frame["obs_id"].to_numpy()
    predictive = xr.Dataset(
        {"y_est": (("chain", "draw", "obs_id"), draws)},
        coords={"chain": posterior["chain"], "draw": posterior["draw"], "obs_id": obs_id},
    )
    attrs = attrs | {"thinning": str(step)}
    return io.draws_with_observed("posterior_predictive", predictive, frame[settings["outcome"]], obs_id, attrs)


def _new_site(model, tree, data_path, table, site, selection, name, settings) -> xr.DataTree:
    """Predictions of a site the formula never saw (as partial pooling's new-site files: group
    `predictions`): its effect drawn from the population where the formula has
    `has_new_site_density` (`formulas.new_site_draws`), else bambi's (`formulas.new_group_draws`)."""
    from hbm import data as hdata
    from hbm import formulas, pointwise

    log = logging.getLogger("hbm")
    outcome, group, spec = settings["outcome"], settings["group"], settings["formula"]
    rows, _ = hdata.subset(table, outcome, group, [site])
    frame, dropped = formulas.frame_for(data_path, rows, spec["formula"], outcome, group, settings.get("reading"))
    for column, count in dropped.items():
        log.info("new site %s: dropped %d rows with a missing %r", site, count, column)
    posterior = tree["posterior"].to_dataset()
    thinned, step = pointwise.thinned(posterior, len(frame), settings["storage"]["max_values"])
    seed = int(tree.attrs["seed"])
    rng = io.rng_for(seed, selection, name, "new_site", site)
    if formulas.has_new_site_density(spec, group):
        draws = formulas.new_site_draws(spec, *formulas.new_site(model, thinned, frame, group), thinned, rng)
    else:
        draws = formulas.new_group_draws(model, xr.DataTree.from_dict({"posterior": thinned}), frame, rng)
    obs_id = frame["obs_id"].to_numpy()
    predictions = xr.Dataset(
        {"y_est": (("chain", "draw", "obs_id"), draws)},
        coords={"chain": thinned["chain"], "draw": thinned["draw"], "obs_id": obs_id},
    )
    attrs = io.provenance(settings, formula_name=name, selection=selection, new_site=site, seed=seed, thinning=step)
    log.info("predicted %d rows of new site %s from %s", len(obs_id), site, selection)
    return io.draws_with_observed("predictions", predictions, frame[outcome], obs_id, attrs)


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821
    io.run_step(
        fit_formula_step,
        sm.input.data,
        sm.input.rows,
        sm.output.posterior,
        sm.output.predictive,
        sm.output.graph,
        sm.wildcards.formula,
        sm.wildcards.selection,
        sm.params.settings,
        sm.threads,
        {key.removeprefix("new_site_"): path for key, path in sm.output.items() if key.startswith("new_site_")},
        sm.params.compiledir,
        sm.log[0],
    )
