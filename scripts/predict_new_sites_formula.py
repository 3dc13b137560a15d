"""Predict sites the formula never saw (the config's new sites) from its posterior: bambi draws each
new site's group effects from their population, then the site's rows."""

import xarray as xr

from hbm import data as hdata
from hbm import formulas, io, pointwise


def predict_new_sites_formula(
    data_path,
    rows_path,
    posterior_path,
    outputs: dict,
    name: str,
    selection: str,
    settings: dict,
    compiledir=None,
    log_path=None,
):
    """`outputs`: new site -> its NetCDF (group `predictions`, as partial pooling's new-site files);
    `compiledir`: PyTensor's compile cache for this job."""
    log = io.setup_logging(log_path)
    if compiledir:
        io.use_compile_cache(compiledir)
    outcome, group, spec = settings["outcome"], settings["group"], settings["formula"]
    fitted, _ = formulas.frame_for(data_path, formulas.read_rows(rows_path, group), spec["formula"], outcome, group)
    model = formulas.build(spec, fitted, settings["models"], group)
    posterior = io.read_tree(posterior_path)["posterior"].to_dataset()
    seed = int(posterior.attrs["seed"])
    table = hdata.read_table(data_path, outcome, group)
    for site, out_path in outputs.items():
        rows, _ = hdata.subset(table, outcome, group, [site])
        frame, dropped = formulas.frame_for(data_path, rows, spec["formula"], outcome, group)
        for column, count in dropped.items():
            log.info("%s: dropped %d rows with a missing %r", site, count, column)
        thinned, step = pointwise.thinned(posterior, len(frame), settings["storage"]["max_values"])
        rng = io.rng_for(seed, selection, name, "new_site", site)
        draws = formulas.response_draws(
            model, xr.DataTree.from_dict({"posterior": thinned}), frame, rng, new_groups=True
        )
        obs_id = frame["obs_id"].to_numpy()
        predictions = xr.Dataset(
            {"y_est": (("chain", "draw", "obs_id"), draws)},
            coords={"chain": thinned["chain"], "draw": thinned["draw"], "obs_id": obs_id},
        )
        attrs = io.provenance(settings, formula_name=name, selection=selection, new_site=site, seed=seed, thinning=step)
        io.write_tree(io.draws_with_observed("predictions", predictions, frame[outcome], obs_id, attrs), out_path)
        log.info("predicted %d rows of new site %s from %s with %s", len(obs_id), site, selection, name)


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821
    io.run_step(
        predict_new_sites_formula,
        sm.input.data,
        sm.input.rows,
        sm.input.posterior,
        dict(sm.output.items()),
        sm.wildcards.formula,
        sm.wildcards.selection,
        sm.params.settings,
        sm.params.compiledir,
        sm.log[0],
    )
