"""Figures of one selection's fits: per model a graph, trace and PPC plot; then forest plots side by
side, shrinkage, each new site's predictive distribution and the ICC posterior."""

from pathlib import Path

import arviz_plots as azp
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pymc as pm

from hbm import io, models, plotting
from hbm import tables as t


def plot_models(data_path, posteriors: dict, new_sites: dict, outdir, selection: str, config: dict, log_path=None):
    """`posteriors`: model -> NetCDF; `new_sites`: site -> predictions NetCDF. Intervals and HDIs
    are read from the tables step's CSVs in `outdir`, not computed again."""
    log = io.setup_logging(log_path)
    outcome, group, options = config["outcome"], config["group"], config["plots"]
    plotting.style(options)
    outdir = Path(outdir)
    data = io.read_grouped(data_path, outcome, group)
    frame = pd.read_csv(data_path, dtype={group: str}, keep_default_na=False)
    colours = plotting.palette(data.sites, options)
    trees = {name: io.read_tree(path) for name, path in posteriors.items()}
    predictive_means = {}
    for name, tree in trees.items():
        label = f"{plotting.MODEL_LABELS[name]} ({selection})"
        spec = config["models"][name]
        model = models.build(name, data, spec["priors"], spec.get("parameterization", "marginal"))
        with io.atomic_path(outdir / name / "graph.png") as tmp:
            tmp.write_bytes(pm.model_to_graphviz(model).pipe(format="png"))

        pc = azp.plot_trace_dist(
            tree, var_names=t.reported_parameters(tree["posterior"]), compact=True, backend="matplotlib"
        )
        pc.viz["figure"].item().suptitle(f"{label}: trace", y=1.01)
        plotting.save(pc.viz["figure"].item(), outdir / name / "trace.png")

        table = pd.read_csv(outdir / name / "ppc_intervals.csv", dtype={"site": str}, keep_default_na=False)
        predictive_means[name] = table["predictive_mean"].to_numpy()
        plotting.save(plotting.ppc_intervals(table, outcome, label, colours, options), outdir / name / "ppc.png")

    pc = azp.plot_forest(
        {plotting.MODEL_LABELS[name]: tree for name, tree in trees.items()},
        var_names=["mu"],
        combined=True,
        ci_kind="hdi",
        ci_probs=[0.5, 0.94],
        backend="matplotlib",
        figure_kwargs={"figsize": options["figsize"]},
    )
    pc.add_legend("model", loc="upper center", bbox_to_anchor=(0.5, 1.0), ncols=len(trees), frameon=False)
    pc.viz["figure"].item().suptitle(f"Site means mu under the three models ({selection}); 50% and 94% HDI", y=1.06)
    plotting.save(pc.viz["figure"].item(), outdir / "figures" / "forest.png")

    figure = plotting.shrinkage(frame, predictive_means, outcome, group, options)
    plotting.save(figure, outdir / "figures" / "shrinkage.png")

    if "partial_pooling" in trees:
        coverage = pd.read_csv(outdir / "tables" / "new_site_coverage.csv", dtype={"site": str}, keep_default_na=False)
        for site, path in new_sites.items():
            row = coverage.set_index("site").loc[site]
            figure = _new_site_figure(io.read_tree(path), row, site, selection, outcome, options)
            plotting.save(figure, outdir / "figures" / f"new_site_{site}.png")
        variance = pd.read_csv(outdir / "tables" / "variance_decomposition.csv").set_index("quantity")
        posterior = trees["partial_pooling"]["posterior"].to_dataset()
        plotting.save(_icc_figure(posterior, variance.loc["icc"], selection, options), outdir / "figures" / "icc.png")
    log.info("plotted %d models of %s", len(trees), selection)


def _new_site_figure(tree, coverage, site: str, selection: str, outcome: str, options: dict):
    draws = tree["predictions"]["y_est"].values.ravel()
    observed = tree["observed_data"]["y_est"].values
    fig, ax = plt.subplots(figsize=options["figsize"])
    label = "posterior predictive (95% HDI shaded)"
    plotting.density_with_interval(draws, coverage["hdi_lower"], coverage["hdi_upper"], label, ax)
    ax.hist(observed, bins="auto", density=True, color="0.6", alpha=0.5, label=f"observed {site} (n={observed.size})")
    ax.plot(observed, np.full(observed.size, -0.002), "|", color="0.2", ms=10)
    ax.set_xlabel(outcome)
    ax.set_title(f"{site}, predicted from {selection}: {coverage['coverage']:.0%} of rows inside the 95% HDI")
    ax.legend(fontsize="small")
    return fig


def _icc_figure(posterior, icc, selection: str, options: dict):
    fig, ax = plt.subplots(figsize=options["figsize"])
    draws = t.variance_draws(posterior)["icc"].values.ravel()
    plotting.density_with_interval(draws, icc["hdi_3%"], icc["hdi_97%"], "ICC posterior (94% HDI shaded)", ax)
    ax.set_xlabel("ICC = between-site variance / total variance")
    ax.set_title(f"Share of variance between sites ({selection}): mean {icc['mean']:.3f}")
    ax.legend(fontsize="small")
    return fig


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821
    io.run_step(
        plot_models,
        sm.input.data,
        dict(zip(sm.config["models"], sm.input.posteriors)),
        dict(zip(sm.params.new_sites, sm.input.new_sites)),
        sm.params.outdir,
        sm.wildcards.selection,
        sm.config,
        sm.log[0],
    )
