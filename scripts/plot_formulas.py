"""Figures of one selection's formula models: per formula the trace plot and the PPC interval plot."""

import json

import pandas as pd

from hbm import io, plotting
from hbm.formulas import SITE_MEAN

TRACE_LEVELS = 8  # levels of a per-group parameter shown in a trace plot


def plot_formulas(posteriors: dict, ppc_tables: dict, outputs: dict, selection: str, settings: dict, log_path=None):
    """`posteriors`, `ppc_tables`: formula -> NetCDF, ppc_intervals.csv; `outputs`: the rule's named
    outputs (trace_{formula}, ppc_{formula})."""
    log = io.setup_logging(log_path)
    plotting.style(settings["plots"])
    io.write_outputs(figures(posteriors, ppc_tables, selection, settings), outputs, plotting.save)
    log.info("plotted traces and predictive checks of %d formulas of %s", len(posteriors), selection)


def figures(posteriors: dict, ppc_tables: dict, selection: str, settings: dict):
    """(output name, figure) per formula: its trace plot, then its PPC intervals."""
    options = settings["plots"]
    for name, path in posteriors.items():
        tree = io.read_tree(path)
        spec = settings["formulas"][name]
        label = plotting.model_label(name, json.loads(tree.attrs["convergence_failures"]))
        title = f"{label}: {spec['formula']} ({selection})"
        yield f"trace_{name}", trace(tree["posterior"].to_dataset(), title, options)
        table = pd.read_csv(ppc_tables[name], dtype={"site": str}, keep_default_na=False)
        colours = plotting.palette(list(dict.fromkeys(table["site"])), options)
        yield f"ppc_{name}", plotting.ppc_intervals(table, settings["outcome"], title, colours, options)


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
        sm.log[0],
    )
