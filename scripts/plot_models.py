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


def plot_models(
    data_path, posteriors: dict, predictives: dict, new_sites: dict, outdir, selection: str, config: dict, log_path=None
):
    """`posteriors`/`predictives`: model -> NetCDF; `new_sites`: site -> predictions NetCDF."""
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
        model = models.build(
            name, data, config["models"][name]["priors"], config["models"][name].get("parameterization", "marginal")
        )
        with io.atomic_path(outdir / name / "graph.png") as tmp:
            tmp.write_bytes(pm.model_to_graphviz(model).pipe(format="png"))

        pc = azp.plot_trace_dist(tree, var_names=_parameters(tree), compact=True, backend="matplotlib")
        pc.viz["figure"].item().suptitle(f"{label}: trace", y=1.01)
        plotting.save(pc.viz["figure"].item(), outdir / name / "trace.png")

        predictive = io.read_tree(predictives[name])["posterior_predictive"]["y_est"]
        predictive_means[name] = predictive.mean(("chain", "draw")).values
        table = t.ppc_intervals(predictive, data)
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

    plotting.save(
        plotting.shrinkage(frame, predictive_means, outcome, group, options), outdir / "figures" / "shrinkage.png"
    )

    if "partial_pooling" in trees:
        posterior = trees["partial_pooling"]["posterior"].to_dataset()
        for site, path in new_sites.items():
            plotting.save(
                _new_site_figure(io.read_tree(path), site, selection, outcome, options),
                outdir / "figures" / f"new_site_{site}.png",
            )
        plotting.save(_icc_figure(posterior, selection, options), outdir / "figures" / "icc.png")
    log.info("plotted %d models of %s", len(trees), selection)


def _parameters(tree) -> list[str]:
    return [name for name in tree["posterior"].data_vars if name != "mu_offset"]


def _new_site_figure(tree, site: str, selection: str, outcome: str, options: dict):
    draws = tree["predictions"]["y_est"].values.ravel()
    observed = tree["observed_data"]["y_est"].values
    coverage = t.new_site_coverage(site, tree).iloc[0]
    fig, ax = plt.subplots(figsize=options["figsize"])
    plotting.density_with_interval(
        draws, coverage["hdi_lower"], coverage["hdi_upper"], "posterior predictive (95% HDI shaded)", ax
    )
    ax.hist(observed, bins="auto", density=True, color="0.6", alpha=0.5, label=f"observed {site} (n={observed.size})")
    ax.plot(observed, np.full(observed.size, -0.002), "|", color="0.2", ms=10)
    ax.set_xlabel(outcome)
    ax.set_title(f"{site}, predicted from {selection}: {coverage['coverage']:.0%} of rows inside the 95% HDI")
    ax.legend(fontsize="small")
    return fig


def _icc_figure(posterior, selection: str, options: dict):
    icc = t.variance_draws(posterior)["icc"]
    row = t.variance_decomposition(posterior).set_index("quantity").loc["icc"]
    fig, ax = plt.subplots(figsize=options["figsize"])
    plotting.density_with_interval(
        icc.values.ravel(), row["hdi_3%"], row["hdi_97%"], "ICC posterior (94% HDI shaded)", ax
    )
    ax.set_xlabel("ICC = between-site variance / total variance")
    ax.set_title(f"Share of variance between sites ({selection}): mean {row['mean']:.3f}")
    ax.legend(fontsize="small")
    return fig


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821
    names = list(sm.config["models"])
    io.run_step(
        plot_models,
        sm.input.data,
        dict(zip(names, sm.input.posteriors)),
        dict(zip(names, sm.input.predictives)),
        dict(zip(sm.params.new_sites, sm.input.new_sites)),
        sm.params.outdir,
        sm.wildcards.selection,
        sm.config,
        sm.log[0],
    )
