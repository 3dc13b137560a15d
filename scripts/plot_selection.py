"""Figures of one selection's data: histogram with KDE, mean and rug; the outcome by site."""

import pandas as pd
import seaborn as sns

from hbm import io, plotting


def plot_selection(data_path, histogram_path, sites_path, selection: str, settings: dict, log_path=None):
    """Histogram with KDE, mean and rug; box plots by site beside a density per site (up to FEW sites)
    or each site's mean against its size (more sites)."""
    log = io.setup_logging(log_path)
    outcome, group, options = settings["outcome"], settings["group"], settings["plots"]
    plotting.style(options)
    frame = pd.read_csv(data_path, dtype={group: str}, keep_default_na=False)
    sites = list(dict.fromkeys(frame[group]))

    fig = _histogram(
        frame, outcome, f"{outcome} in selection {selection} ({len(frame):,} rows, {len(sites):,} sites)", options
    )
    plotting.save(fig, histogram_path)

    plotting.save(_by_site(frame, sites, outcome, group, options), sites_path)
    log.info("plotted selection %s", selection)


def _histogram(frame, outcome, title, options):
    fig, ax = plotting.figure(options, legend=True)
    sns.histplot(frame[outcome], kde=True, stat="density", ax=ax, color="C0", alpha=0.4)
    sns.rugplot(frame[outcome], ax=ax, color="0.3", height=0.03)
    mean = frame[outcome].mean()
    ax.axvline(mean, color="crimson", ls="--", label=f"mean = {mean:.3g}")
    ax.set_title(title, fontsize="medium")
    plotting.legend_beside(ax)
    return fig


def _by_site(frame, sites, outcome, group, options):
    """Box plots by site beside a density per site (up to FEW sites) or each site's mean by its size;
    past LABEL_LIMIT sites, the means by size alone."""
    if len(sites) > plotting.LABEL_LIMIT:
        fig, ax = plotting.figure(options, wide=True)
        plotting.group_means_by_size(ax, frame, outcome, group)
        ax.set_title(f"{outcome}: site means by site size ({len(sites):,} sites)", fontsize="medium")
        return fig
    few = len(sites) <= plotting.FEW
    fig, (box, right) = plotting.figure(options, groups=len(sites), columns=2)
    colours = plotting.palette(sites, options) if few else None
    order = sites if few else list(frame.groupby(group, sort=False)[outcome].median().sort_values().index)
    note = plotting.boxes_by_group(box, frame, outcome, group, order, colours)
    box.set_title(f"{outcome} by site" + ("" if few else f", sorted by median\n{note}"), fontsize="medium")
    if not few:
        plotting.group_means_by_size(right, frame, outcome, group)
        right.set_title(f"site means by site size ({len(sites):,} sites)", fontsize="medium")
        return fig
    drawn = [site for site in sites if frame.loc[frame[group] == site, outcome].nunique() > 1]
    for site in drawn:
        sns.kdeplot(frame.loc[frame[group] == site, outcome], ax=right, color=colours[site], label=site)
    skipped = len(sites) - len(drawn)
    right.set_title(
        "density by site" + (f" ({skipped} with one distinct value left out)" if skipped else ""), fontsize="medium"
    )
    plotting.legend_beside(right)
    return fig


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821
    io.run_step(
        plot_selection,
        sm.input.data,
        sm.output.histogram,
        sm.output.sites,
        sm.wildcards.selection,
        sm.params.settings,
        sm.log[0],
    )
