"""Figures of one selection's posteriors: per model the model graph and trace plot, then the site
means of the three models side by side (forest plot)."""

from pathlib import Path

import arviz_plots as azp
import pymc as pm

from hbm import io, models, plotting
from hbm.tables import reported_parameters


def plot_fits(data_path, posteriors: dict, outdir, selection: str, config: dict, log_path=None):
    """`posteriors`: model -> NetCDF path; figures go to `outdir`/{model}/ and `outdir`/figures/."""
    log = io.setup_logging(log_path)
    options = config["plots"]
    plotting.style(options)
    outdir = Path(outdir)
    data = io.read_grouped(data_path, config["outcome"], config["group"])
    trees = {name: io.read_tree(path) for name, path in posteriors.items()}
    for name, tree in trees.items():
        model = models.build_from_spec(name, data, config["models"][name])
        with io.atomic_path(outdir / name / "graph.png") as tmp:
            tmp.write_bytes(pm.model_to_graphviz(model).pipe(format="png"))
        parameters = reported_parameters(tree["posterior"])
        pc = azp.plot_trace_dist(
            tree,
            var_names=parameters,
            compact=True,
            backend="matplotlib",
            figure_kwargs={
                "figsize": (options["wide_figsize"][0], 1.5 + 2.2 * len(parameters)),
                "layout": "constrained",
            },
        )
        pc.viz["figure"].item().suptitle(f"{plotting.MODEL_LABELS[name]} ({selection}): trace")
        plotting.save(pc.viz["figure"].item(), outdir / name / "trace.png")

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
    log.info("plotted graphs, traces and forest plots of %d models of %s", len(trees), selection)


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821
    io.run_step(
        plot_fits,
        sm.input.data,
        dict(zip(sm.config["models"], sm.input.posteriors)),
        sm.params.outdir,
        sm.wildcards.selection,
        sm.config,
        sm.log[0],
    )
