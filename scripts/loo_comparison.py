"""PSIS-LOO comparison of one selection's models, with each model's Pareto k diagnostics and remedy."""

from hbm import io
from hbm import loo as hloo


def loo_comparison(data_path, posteriors: dict, out_path, settings: dict, log_path=None):
    """`posteriors`: model -> NetCDF with the posterior and its `pointwise_level` attribute."""
    log = io.setup_logging(log_path)
    data = io.read_grouped(data_path, settings["outcome"], settings["group"])
    results, facts = {}, []
    for name, path in posteriors.items():
        tree = io.read_tree(path)
        results[name], row = hloo.model_loo(
            tree, name, data, settings["models"][name]["priors"], tree.attrs["pointwise_level"]
        )
        facts.append(row)
        log.info("%s: %s", name, row["remedy"])
    table = hloo.comparison(results, facts)
    io.write_csv(table, out_path)
    if not table["reliable"].all():
        log.warning("PSIS-LOO is not reliable for %s", ", ".join(table.loc[~table["reliable"], "model"]))
    log.info("compared %d models by PSIS-LOO", len(table))


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821
    io.run_step(
        loo_comparison,
        sm.input.data,
        dict(zip(sm.params.settings["models"], sm.input.posteriors)),
        sm.output[0],
        sm.params.settings,
        sm.log[0],
    )
