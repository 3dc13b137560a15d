"""Figures of one selection's posteriors: per model the trace plot, then the site means of the
models side by side (forest plot)."""

import numpy as np
import pandas as pd

from hbm import io, models, plotting
from hbm.formulas import SITE_MEAN
from hbm.tables import SAMPLE, hdi_bounds, reported_parameters

TRACE_SITES = 8  # per-site parameters in a trace plot: the sites with the lowest bulk ESS


def plot_fits(
    data_path,
    posteriors: dict,
    summaries: dict,
    outputs: dict,
    selection: str,
    settings: dict,
    formulas: dict | None = None,
    log_path=None,
):
    """`posteriors`, `summaries`: model -> NetCDF path, summary.csv; `formulas`: formula -> NetCDF path,
    whose site means join the forest plot; `outputs`: the rule's named outputs (trace_{model}, forest)."""
    log = io.setup_logging(log_path)
    plotting.style(settings["plots"])
    drawn = figures(data_path, posteriors, summaries, selection, settings, formulas or {})
    io.write_outputs(drawn, outputs, plotting.save)
    log.info("plotted traces and forest plots of %d models of %s", len(posteriors), selection)


def figures(data_path, posteriors: dict, summaries: dict, selection: str, settings: dict, formulas: dict):
    """(output name, figure): each model's trace plot, then the forest plot of the site means of every
    model and of every formula that has them (bambi's terms summed into each site's mean)."""
    options = settings["plots"]
    data = io.read_grouped(data_path, settings["outcome"], settings["group"])
    trees = {name: io.read_tree(path, ["posterior"]) for name, path in posteriors.items()}
    labels = {name: plotting.model_label(name, io.recorded_failures(tree)) for name, tree in trees.items()}
    for name, tree in trees.items():
        summary = pd.read_csv(summaries[name], keep_default_na=False)
        yield f"trace_{name}", trace(tree["posterior"].to_dataset(), summary, f"{labels[name]} ({selection})", options)

    site_means = {
        labels[name] + _left_out(io.sites_left_out(tree)): site_mean_summary(tree["posterior"]["mu"])
        for name, tree in trees.items()
    }
    for name, path in formulas.items():
        tree = io.read_tree(path, ["posterior"])
        if SITE_MEAN in tree["posterior"]:
            label = plotting.model_label(name, io.recorded_failures(tree))
            site_means[label] = site_mean_summary(tree["posterior"][SITE_MEAN])
    pooled = models.population_model(trees)
    population = float(trees[pooled]["posterior"]["hyper_mu"].mean()) if pooled else None
    counts = pd.Series(data.n, index=data.sites)
    title = f"Site means under the models ({selection})"
    yield "forest", plotting.forest(site_means, counts, title, options, population)


def _left_out(sites: list[str]) -> str:
    return f" ({len(sites)} sites of equal rows left out)" if sites else ""


def site_mean_summary(mu) -> pd.DataFrame:
    """Posterior mean and 50% and 94% HDI of site means `mu`, one row per site (one row if mu has no site)."""
    table = {"mean": mu.mean(SAMPLE).values}
    for prob in (0.5, 0.94):
        bounds = hdi_bounds(mu, prob)
        for side, values in zip(("lower", "upper"), bounds):
            table[f"hdi{round(prob * 100)}_{side}"] = values
    index = mu["site"].values if "site" in mu.dims else ["(all)"]
    return pd.DataFrame({key: np.atleast_1d(value) for key, value in table.items()}, index=index)


def trace(posterior, summary: pd.DataFrame, title: str, options: dict):
    """The lecture's trace plot (densities and draws per chain); per-site parameters only for the
    TRACE_SITES sites with the lowest bulk ESS in `summary` (the model's summary.csv) when there are more."""
    parameters = reported_parameters(posterior)
    sites = posterior["site"].values
    per_site = [name for name in parameters if "site" in posterior[name].dims]
    coords, note = {}, ""
    if len(sites) > TRACE_SITES and per_site:
        site_of = summary["parameter"].str.extract(r"^\w+\[(.*)\]$", expand=False)
        worst = summary.assign(site=site_of).dropna(subset=["site"]).groupby("site")["ess_bulk"].min()
        coords = {"site": list(worst.reindex(sites).sort_values(kind="stable").index[:TRACE_SITES])}
        note = f"; per-site parameters: the {TRACE_SITES} of {len(sites):,} sites with the lowest bulk ESS"
    shown = (posterior.sel(coords) if coords else posterior)[parameters]
    return plotting.trace_figure(shown, f"{title}: trace{note}", options)


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821
    io.run_step(
        plot_fits,
        sm.input.data,
        dict(zip(sm.params.models, sm.input.posteriors)),
        dict(zip(sm.params.models, sm.input.summaries)),
        dict(sm.output.items()),
        sm.wildcards.selection,
        sm.params.settings,
        dict(zip(sm.params.formulas, sm.input.formulas)),
        sm.log[0],
    )
