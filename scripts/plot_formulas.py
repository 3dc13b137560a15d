"""Figures of one selection's formula models: per formula the trace plot and the PPC interval plot,
then each new site's predictive distribution under each formula that predicts it."""

from itertools import chain

import pandas as pd

from hbm import io, plotting
from hbm.formulas import SITE_MEAN

TRACE_LEVELS = 8  # levels of a per-group parameter shown in a trace plot


def plot_formulas(
    posteriors: dict,
    ppc_tables: dict,
    outputs: dict,
    selection: str,
    settings: dict,
    predictions: dict | None = None,
    coverage_path=None,
    log_path=None,
):
    """`posteriors`, `ppc_tables`: formula -> NetCDF, ppc_intervals.csv; `predictions`: "formula/site" ->
    NetCDF of its new-site predictions, with `coverage_path` their coverage table; `outputs`: the rule's
    named outputs (trace_{formula}, ppc_{formula}, new_site_{formula}/{site})."""
    log = io.setup_logging(log_path)
    plotting.style(settings["plots"])
    drawn = figures(posteriors, ppc_tables, selection, settings)
    if predictions:
        drawn = chain(drawn, new_sites(predictions, coverage_path, selection, settings))
    io.write_outputs(drawn, outputs, plotting.save)
    log.info("plotted traces and predictive checks of %d formulas of %s", len(posteriors), selection)


def figures(posteriors: dict, ppc_tables: dict, selection: str, settings: dict):
    """(output name, figure) per formula: its trace plot, then its PPC intervals."""
    options = settings["plots"]
    for name, path in posteriors.items():
        tree = io.read_tree(path, ["posterior"])
        spec = settings["formulas"][name]
        label = plotting.model_label(name, io.recorded_failures(tree))
        title = f"{label}: {spec['formula']} ({selection})"
        yield f"trace_{name}", trace(tree["posterior"].to_dataset(), title, options)
        table = pd.read_csv(ppc_tables[name], dtype={"site": str}, keep_default_na=False)
        colours = plotting.palette(list(dict.fromkeys(table["site"])), options)
        yield f"ppc_{name}", plotting.ppc_intervals(table, settings["outcome"], title, colours, options)


def new_sites(predictions: dict, coverage_path, selection: str, settings: dict):
    """(output name, figure) per formula and new site it predicts."""
    coverage = pd.read_csv(coverage_path, dtype={"site": str}, keep_default_na=False).set_index(["model", "site"])
    for key, path in predictions.items():
        formula, site = key.split("/")
        source = f"{selection} by {formula}"
        figure = plotting.new_site_figure(
            io.read_tree(path), coverage.loc[(formula, site)], site, source, settings["outcome"], settings["plots"]
        )
        yield f"new_site_{key}", figure


def trace(posterior, title: str, options: dict):
    """The lecture's trace plot of bambi's parameters (the site means derived from them are left out);
    per-group parameters for their first TRACE_LEVELS levels."""
    sampled = posterior.drop_vars(SITE_MEAN, errors="ignore")
    cut = {dim: sampled[dim].values[:TRACE_LEVELS] for dim in sampled.dims if dim not in ("chain", "draw")}
    shown = sampled.sel(cut)
    note = "" if shown.sizes == sampled.sizes else f"; per-group parameters: first {TRACE_LEVELS} groups"
    return plotting.trace_figure(shown, f"{title}: trace{note}", options)


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821
    io.run_step(
        plot_formulas,
        dict(zip(sm.params.formulas, sm.input.posteriors)),
        dict(zip(sm.params.formulas, sm.input.ppc_tables)),
        dict(sm.output.items()),
        sm.wildcards.selection,
        sm.params.settings,
        dict(zip(sm.params.predictions, sm.input.predictions)),
        sm.input.coverage[0] if sm.input.coverage else None,
        sm.log[0],
    )
