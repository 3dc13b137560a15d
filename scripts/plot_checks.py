"""Figures of one selection's checks, drawn from the tables step's results: per model the PPC
interval plot, then shrinkage, each new site's predictive distribution and the ICC posterior."""

import pandas as pd

from hbm import io, plotting
from hbm.variance import variance_draws


def plot_checks(
    inputs: dict, models: list, new_sites: dict, outputs: dict, selection: str, settings: dict, log_path=None
):
    """`inputs`: the rule's named inputs (data, ppc_tables in model order, convergence and, with
    partial pooling, population_posterior and its tables); `new_sites`: site -> NetCDF; `outputs`: the
    rule's named outputs (ppc_{model}, and with partial pooling shrinkage, icc, new_site_{site})."""
    log = io.setup_logging(log_path)
    plotting.style(settings["plots"])
    io.write_outputs(figures(inputs, models, new_sites, selection, settings), outputs, plotting.save)
    log.info("plotted checks of %d models of %s", len(models), selection)


def figures(inputs: dict, models: list, new_sites: dict, selection: str, settings: dict):
    """(output name, figure): each model's PPC intervals, then partial pooling's shrinkage, new sites and ICC."""
    outcome, group, options = settings["outcome"], settings["group"], settings["plots"]
    frame = pd.read_csv(inputs["data"], dtype={group: str}, keep_default_na=False)
    colours = plotting.palette(list(dict.fromkeys(frame[group])), options)
    verdict = _read(inputs["convergence"]).set_index("model")
    for name, path in zip(models, inputs["ppc_tables"]):
        failures = [] if verdict.loc[name, "passed"] else [verdict.loc[name, "failures"]]
        label = f"{plotting.model_label(name, failures)} ({selection})"
        yield f"ppc_{name}", plotting.ppc_intervals(_read(path), outcome, label, colours, options)
    if "population_posterior" not in inputs:
        return
    posterior = io.read_tree(inputs["population_posterior"], ["posterior"])["posterior"].to_dataset()
    population = float(posterior["hyper_mu"].mean())
    title = f"Shrinkage ({selection}): partial pooling pulls site means\ntowards the population, small sites most"
    yield "shrinkage", plotting.shrinkage(_read(inputs["shrinkage"]), outcome, title, options, population)
    coverage = _read(inputs["new_site_coverage"]).set_index("site")
    for site, path in new_sites.items():
        yield (
            f"new_site_{site}",
            plotting.new_site_figure(io.read_tree(path), coverage.loc[site], site, selection, outcome, options),
        )
    variance = _read(inputs["variance_decomposition"]).set_index("quantity")
    yield "icc", _icc_figure(posterior, variance.loc["icc"], selection, options)


def _read(path) -> pd.DataFrame:
    """A table of the tables step, site labels kept as text (never empty), empty cells missing (a site a
    model left out has no mean under it)."""
    return pd.read_csv(path, dtype={"site": str}, keep_default_na=False, na_values=[""])


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
        dict(sm.input.items()),
        sm.params.models,
        dict(zip(sm.params.new_sites, sm.input.new_sites)),
        dict(sm.output.items()),
        sm.wildcards.selection,
        sm.params.settings,
        sm.log[0],
    )
