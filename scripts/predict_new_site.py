"""Predict a site the model never saw from the posterior of the model of a population of sites
(partial pooling), and compare with its rows."""

from hbm import data as hdata
from hbm import io, pointwise


def predict_new_site(
    data_path, posterior_path, out_path, site: str, selection: str, model: str, settings: dict, log_path=None
):
    log = io.setup_logging(log_path)
    outcome, group = settings["outcome"], settings["group"]
    frame = hdata.read_table(data_path, outcome, group, settings.get("reading"))
    rows, dropped = hdata.subset(frame, outcome, group, [site])
    if dropped:
        log.info("dropped %d rows of %s with a missing %s", dropped, site, outcome)
    posterior = io.read_tree(posterior_path, ["posterior"])["posterior"].to_dataset()
    seed = int(posterior.attrs["seed"])
    obs_id = rows["obs_id"].to_numpy()
    rng = io.rng_for(seed, selection, "new_site", site)
    predictions = pointwise.new_site_predictive(posterior, model, obs_id, rng, settings["storage"]["max_values"])
    attrs = io.provenance(
        settings,
        model=model,
        selection=selection,
        new_site=site,
        seed=seed,
        thinning=predictions.attrs["thinning"],
    )
    tree = io.draws_with_observed("predictions", predictions, rows[outcome], obs_id, attrs)
    io.write_tree(tree, out_path)
    log.info("predicted %d rows of new site %s from %s", len(obs_id), site, selection)
    return tree


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821
    io.run_step(
        predict_new_site,
        sm.input.data,
        sm.input.posterior,
        sm.output[0],
        sm.wildcards.site,
        sm.wildcards.selection,
        sm.params.model,
        sm.params.settings,
        sm.log[0],
    )
