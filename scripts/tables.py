"""All tables of one selection: per-model summaries and PPC intervals, then the model comparisons."""

from hbm import io, models
from hbm import tables as t
from hbm.data import model_data


def make_tables(
    data_path, posteriors: dict, predictives: dict, new_sites: dict, outputs: dict, settings: dict, log_path=None
):
    """`posteriors`/`predictives`: model -> NetCDF path; `new_sites`: site -> predictions NetCDF path;
    `outputs`: the rule's named outputs (summary_{model}, ppc_{model} and one per comparison table)."""
    log = io.setup_logging(log_path)
    data = io.read_grouped(data_path, settings["outcome"], settings["group"])
    trees = {name: io.read_tree(path, ["posterior"]) for name, path in posteriors.items()}
    draws = {name: tree["posterior"].to_dataset() for name, tree in trees.items()}
    tables = {}
    for name in trees:
        own, _ = model_data(data, name)
        summary = tables[f"summary_{name}"] = t.posterior_summary(draws[name], own)
        prior_only = (summary["identified_by"] != "data").sum()
        if prior_only:
            log.info("%s: %d parameters identified by their prior alone (sites with one row)", name, prior_only)
        predictive = io.read_tree(predictives[name], ["posterior_predictive"])["posterior_predictive"]["y_est"]
        tables[f"ppc_{name}"] = t.ppc_intervals(predictive, own)
        del predictive  # rows x draws: freed before the next model's are read
    tables["mu_comparison"] = t.mu_comparison(draws, data.sites)
    tables["convergence"] = t.convergence(trees)
    population = models.population_model(draws)
    if population:
        tables["variance_decomposition"] = t.variance_decomposition(draws[population])
        tables["shrinkage"] = t.shrinkage(draws, data, population)
        tables["new_site_coverage"] = t.new_sites_coverage(new_sites)
    io.write_outputs(tables.items(), outputs, io.write_csv)
    for name, frame in tables.items():
        log.info("wrote %s (%d rows)", outputs[name], len(frame))
    return tables


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821
    io.run_step(
        make_tables,
        sm.input.data,
        dict(zip(sm.params.models, sm.input.posteriors)),
        dict(zip(sm.params.models, sm.input.predictives)),
        dict(zip(sm.params.new_sites, sm.input.new_sites)),
        dict(sm.output.items()),
        sm.params.settings,
        sm.log[0],
    )
