"""Figures of one selection's checks, drawn from the tables step's results: per model the PPC
interval plot, then shrinkage, each new site's predictive distribution and the ICC posterior."""

from pathlib import Path

import numpy as np
import pandas as pd

from hbm import io, plotting
from hbm.variance import variance_draws


def plot_checks(
    data_path, models: list, partial_posterior, new_sites: dict, outdir, selection: str, config: dict, log_path=None
):
    """Reads `outdir`/{model}/ppc_intervals.csv and `outdir`/tables/*.csv; `new_sites`: site -> NetCDF."""
    log = io.setup_logging(log_path)
    outcome, group, options = config["outcome"], config["group"], config["plots"]
    plotting.style(options)
    outdir = Path(outdir)
    frame = pd.read_csv(data_path, dtype={group: str}, keep_default_na=False)
    colours = plotting.palette(list(dict.fromkeys(frame[group])), options)
    verdict = pd.read_csv(outdir / "tables" / "convergence.csv", keep_default_na=False).set_index("model")
    for name in models:
        table = pd.read_csv(outdir / name / "ppc_intervals.csv", dtype={"site": str}, keep_default_na=False)
        failures = [] if verdict.loc[name, "passed"] else [verdict.loc[name, "failures"]]
        label = f"{plotting.model_label(name, failures)} ({selection})"
        plotting.save(plotting.ppc_intervals(table, outcome, label, colours, options), outdir / name / "ppc.png")

    if partial_posterior:
        posterior = io.read_tree(partial_posterior)["posterior"].to_dataset()
        population = float(posterior["hyper_mu"].mean())
        table = pd.read_csv(outdir / "tables" / "shrinkage.csv", dtype={"site": str}, keep_default_na=False)
        title = f"Shrinkage ({selection}): partial pooling pulls site means\ntowards the population, small sites most"
        figure = plotting.shrinkage(table, outcome, title, options, population)
        plotting.save(figure, outdir / "figures" / "shrinkage.png")
        coverage = pd.read_csv(outdir / "tables" / "new_site_coverage.csv", dtype={"site": str}, keep_default_na=False)
        for site, path in new_sites.items():
            figure = _new_site_figure(
                io.read_tree(path), coverage.set_index("site").loc[site], site, selection, outcome, options
            )
            plotting.save(figure, outdir / "figures" / f"new_site_{site}.png")
        variance = pd.read_csv(outdir / "tables" / "variance_decomposition.csv").set_index("quantity")
        plotting.save(_icc_figure(posterior, variance.loc["icc"], selection, options), outdir / "figures" / "icc.png")
    log.info("plotted checks of %d models of %s", len(models), selection)


def _new_site_figure(tree, coverage, site: str, selection: str, outcome: str, options: dict):
    draws = tree["predictions"]["y_est"].values.ravel()
    observed = tree["observed_data"]["y_est"].values
    fig, ax = plotting.figure(options, legend=True)
    label = "posterior predictive (95% HDI shaded)"
    plotting.density_with_interval(draws, coverage["hdi_lower"], coverage["hdi_upper"], label, ax)
    ax.hist(observed, bins="auto", density=True, color="0.6", alpha=0.5, label=f"observed {site} (n={observed.size})")
    ax.plot(observed, np.zeros(observed.size), "|", color="0.2", ms=10)
    ax.set_xlabel(outcome)
    ax.set_title(
        f"{site}, predicted from {selection}:\n{coverage['coverage']:.0%} of rows inside the 95% HDI", fontsize="medium"
    )
    plotting.legend_beside(ax)
    return fig


def _icc_figure(posterior, icc, selection: str, options: dict):
    fig, ax = plotting.figure(options, legend=True)
    draws = variance_draws(posterior)["icc"].values.ravel()
    plotting.density_with_interval(draws, icc["hdi_3%"], icc["hdi_97%"], "ICC posterior (94% HDI shaded)", ax)
    ax.set_xlabel("ICC = between-site variance / total variance")
    ax.set_title(f"Share of variance between sites ({selection}): mean {icc['mean']:.3f}", fontsize="medium")
    plotting.legend_beside(ax)
    return fig


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821
    io.run_step(
        plot_checks,
        sm.input.data,
        list(sm.config["models"]),
        sm.input.get("partial_posterior"),
        dict(zip(sm.params.new_sites, sm.input.new_sites)),
        sm.params.outdir,
        sm.wildcards.selection,
        sm.config,
        sm.log[0],
    )
