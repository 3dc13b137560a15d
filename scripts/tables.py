"""All tables of one selection: per-model summaries and PPC intervals, then the model comparisons."""

import json
from pathlib import Path

import pandas as pd

from hbm import io
from hbm import tables as t


def make_tables(data_path, posteriors: dict, predictives: dict, new_sites: dict, outdir, config: dict, log_path=None):
    """`posteriors`/`predictives`: model -> NetCDF path; `new_sites`: site -> predictions NetCDF path."""
    log = io.setup_logging(log_path)
    outdir = Path(outdir)
    data = io.read_grouped(data_path, config["outcome"], config["group"])
    trees = {name: io.read_tree(path) for name, path in posteriors.items()}
    draws = {name: tree["posterior"].to_dataset() for name, tree in trees.items()}
    written = {}
    for name in trees:
        written[f"{name}/summary.csv"] = t.posterior_summary(draws[name], data)
        prior_only = (written[f"{name}/summary.csv"]["identified_by"] != "data").sum()
        if prior_only:
            log.info("%s: %d parameters identified by their prior alone (sites with one row)", name, prior_only)
        predictive = io.read_tree(predictives[name])["posterior_predictive"]["y_est"]
        written[f"{name}/ppc_intervals.csv"] = t.ppc_intervals(predictive, data)
    written["tables/mu_comparison.csv"] = t.mu_comparison(draws, data.sites)
    written["tables/convergence.csv"] = pd.DataFrame(
        [
            {
                "model": name,
                "divergences": int(tree.attrs["divergences"]),
                "failures": "; ".join(_failures(tree)) or "none",
                "likely_cause": "; ".join(json.loads(tree.attrs["likely_causes"])),
                "passed": not _failures(tree),
            }
            for name, tree in trees.items()
        ]
    )
    if "partial_pooling" in draws:
        written["tables/variance_decomposition.csv"] = t.variance_decomposition(draws["partial_pooling"])
        written["tables/shrinkage.csv"] = t.shrinkage(draws, data)
        written["tables/new_site_coverage.csv"] = pd.concat(
            [t.new_site_coverage(site, io.read_tree(path)) for site, path in new_sites.items()], ignore_index=True
        )
    for relative, frame in written.items():
        io.write_csv(frame, outdir / relative)
        log.info("wrote %s (%d rows)", relative, len(frame))
    return written


def _failures(tree) -> list[str]:
    return json.loads(tree.attrs["convergence_failures"])


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821
    models = list(sm.config["models"])
    io.run_step(
        make_tables,
        sm.input.data,
        dict(zip(models, sm.input.posteriors)),
        dict(zip(models, sm.input.predictives)),
        dict(zip(sm.params.new_sites, sm.input.new_sites)),
        sm.params.outdir,
        sm.config,
        sm.log[0],
    )
