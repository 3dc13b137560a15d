"""Figures shared by the plotting steps, readable from 2 to thousands of groups.

Up to `FEW` groups the figures keep the lecture's forms (one colour per group, per-row plots). Past
that they switch to forms that scale: groups on the vertical axis sorted by estimate, summaries of
per-row plots by group, group means against group size. Every group is labelled up to
`LABEL_LIMIT` groups (the figure grows with them); past that labels are left out on purpose and the
title says so. Legends sit outside the axes, so they never cover data.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from hbm import models
from hbm.io import atomic_path

FEW = 12
LABEL_LIMIT = 100
SMALL_GROUP = 2  # groups with this many rows or fewer are marked
INCH_PER_GROUP = 0.17


def style(options: dict) -> None:
    sns.set_theme(style=options.get("style", "whitegrid"), context="notebook")
    plt.rcParams["figure.dpi"] = options.get("dpi", 110)


def palette(sites: list[str], options: dict) -> dict[str, tuple]:
    """A colour per site, the same in every figure and never shared: a palette with fewer colours
    than sites (tab10 has ten) gives way to evenly spaced hues."""
    colours = sns.color_palette(options.get("palette", "tab10"), len(sites))
    if len(set(colours)) < len(sites):
        colours = sns.color_palette("husl", len(sites))
    return dict(zip(sites, colours))


def model_label(name: str, failures: list | None = None) -> str:
    """A model's name in figures, marked where it failed the convergence gate."""
    label = models.MODELS[name].label if name in models.MODELS else name
    return label + (" (FAILED the convergence gate)" if failures else "")


def figure(options: dict, groups: int = 0, wide: bool = False, columns: int = 1, legend: bool = False, panels=0):
    """A constrained-layout figure, taller with the number of groups it labels one per row, and wider
    by a third where a legend sits beside the axes; `columns` axes side by side, each as wide as the
    figure size, or `panels` axes sharing the figure size and the y axis."""
    width, height = options.get("wide_figsize" if wide else "figsize", (12, 4.5) if wide else (7, 4.5))
    width *= 4 / 3 if legend else 1
    if FEW < groups <= LABEL_LIMIT:
        height = max(height, 1.6 + INCH_PER_GROUP * groups)
    elif groups > LABEL_LIMIT:
        height = max(height, 7.0)
    if panels:
        fig, axes = plt.subplots(1, panels, figsize=(width, height), sharey=True, squeeze=False)
        axes = axes[0]
    else:
        fig, axes = plt.subplots(1, columns, figsize=(width * (1 if columns == 1 else columns / 1.4), height))
    fig.set_layout_engine("constrained")
    return fig, axes


def save(fig, path: str | Path) -> None:
    """Save a figure atomically, with metadata that names the software only."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": f"matplotlib {matplotlib.__version__}"})
    plt.close(fig)


def legend_beside(ax, **kwargs) -> None:
    """The axes' legend to its right, outside the data."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(
            handles,
            labels,
            loc="upper left",
            bbox_to_anchor=(1.01, 1),
            fontsize="small",
            frameon=False,
            borderaxespad=0,
            **kwargs,
        )


def group_labels(ax, positions, names, counts, axis: str = "y") -> str:
    """Label each group `name (n=…)` up to LABEL_LIMIT groups, groups of SMALL_GROUP rows or fewer in
    red; past that the labels are left out. Returns a note for the title."""
    set_ticks = ax.set_yticks if axis == "y" else ax.set_xticks
    if len(names) > LABEL_LIMIT:
        set_ticks([])
        return f"{len(names):,} groups, labels left out (see the tables)"
    size = "small" if len(names) <= FEW else "x-small" if len(names) <= 60 else 6
    labels = [f"{name} (n={int(n)})" for name, n in zip(names, counts)]
    kwargs = (
        {}
        if axis == "y"
        else {"rotation": 90 if len(names) > FEW else 30, "ha": "center" if len(names) > FEW else "right"}
    )
    set_ticks(positions, labels, fontsize=size, **kwargs)
    ticks = ax.get_yticklabels() if axis == "y" else ax.get_xticklabels()
    for tick, n in zip(ticks, counts):
        if n <= SMALL_GROUP:
            tick.set_color("crimson")
    return (
        f"{len(names)} groups; red: {SMALL_GROUP} rows or fewer"
        if (np.asarray(counts) <= SMALL_GROUP).any()
        else f"{len(names)} groups"
    )


def group_means_by_size(ax, frame: pd.DataFrame, outcome: str, group: str) -> None:
    """Each group's mean against its size, with the overall mean and its ±2 standard error funnel."""
    stats = frame.groupby(group, sort=False)[outcome].agg(["mean", "size"])
    overall, sd = frame[outcome].mean(), frame[outcome].std()
    sizes = np.geomspace(1, stats["size"].max(), 200)
    ax.fill_between(
        sizes,
        overall - 2 * sd / np.sqrt(sizes),
        overall + 2 * sd / np.sqrt(sizes),
        color="0.85",
        label="overall mean ± 2 sd/√n",
    )
    ax.axhline(overall, color="0.3", lw=1, label="overall mean")
    ax.scatter(
        stats["size"],
        stats["mean"],
        s=10 if len(stats) > LABEL_LIMIT else 18,
        color="C0",
        alpha=0.7,
        label="group mean",
        rasterized=len(stats) > LABEL_LIMIT,
        zorder=3,
    )
    size_axis(ax, stats["size"].to_numpy())
    ax.set_xlabel("rows in the group (log scale)")
    ax.set_ylabel(f"group mean of {outcome}")
    legend_beside(ax)


def size_axis(ax, sizes) -> None:
    """A log axis of group sizes labelled with plain whole numbers (1, 2, 5, 10, 20, ...)."""
    ax.set_xscale("log")
    top = max(float(np.max(sizes)), 2.0)
    ticks = [t for t in (m * 10**e for e in range(8) for m in (1, 2, 5)) if t <= top * 1.5]
    ax.set_xticks(ticks, [f"{t:,}" for t in ticks])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlim(0.8, top * 1.5)


def boxes_by_group(ax, frame: pd.DataFrame, outcome: str, group: str, order: list[str], colours=None) -> str:
    """Horizontal box plots of the outcome per group, in `order` from the top; returns the title note."""
    counts = frame[group].value_counts().reindex(order).to_numpy()
    kwargs = {"hue": group, "palette": colours, "legend": False} if colours else {"color": "C0"}
    sns.boxplot(data=frame, x=outcome, y=group, order=order, orient="h", ax=ax, fliersize=1.5, linewidth=0.8, **kwargs)
    note = group_labels(ax, np.arange(len(order)), order, counts, axis="y")
    ax.set_xlabel(outcome)
    ax.set_ylabel("")
    return note


def site_ticks(ax, sites: np.ndarray) -> None:
    """Label the x axis of a per-observation plot (rows grouped by site, at most FEW) with site names."""
    codes, labels = pd.factorize(sites)
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    ends = np.r_[starts[1:], len(codes)]
    width_pt = ax.get_position().width * ax.figure.get_figwidth() * 72
    fits = all(
        (end - start) / len(codes) * width_pt > 6 * len(str(label)) + 6
        for start, end, label in zip(starts, ends, labels)
    )
    ax.set_xticks((starts + ends - 1) / 2, labels, rotation=0 if fits else 90, fontsize="small")
    for boundary in starts[1:]:
        ax.axvline(boundary - 0.5, color="0.8", lw=0.8, zorder=0)
    ax.set_xlim(-0.5, len(codes) - 0.5)
    ax.grid(axis="x", visible=False)


def ppc_intervals(table: pd.DataFrame, outcome: str, title: str, colours: dict, options: dict):
    """Posterior predictive 95% HDIs against the observed rows: per row up to FEW groups, else per group."""
    inside = table["inside"].to_numpy(bool)
    headline = f"{title}: {inside.mean():.1%} of observations inside their 95% predictive HDI"
    sizes = table["site"].value_counts()
    if len(sizes) > FEW or sizes.min() < 0.02 * len(table):
        return _ppc_by_group(table, outcome, headline, options)
    fig, ax = figure(options, wide=True)
    x = np.arange(len(table))
    ax.vlines(x, table["hdi_lower"], table["hdi_upper"], colors=[colours[s] for s in table["site"]], lw=1.2, alpha=0.7)
    ax.scatter(
        x, table["predictive_mean"], marker="_", color="0.15", s=25, lw=1, label="posterior predictive mean", zorder=3
    )
    ax.scatter(x[inside], table["observed"][inside], s=9, color="0.35", label="observed, inside 95% HDI", zorder=4)
    ax.scatter(
        x[~inside], table["observed"][~inside], s=14, color="crimson", label="observed, outside 95% HDI", zorder=5
    )
    site_ticks(ax, table["site"].to_numpy())
    ax.set_ylabel(outcome)
    ax.set_title(headline, fontsize="medium")
    legend_beside(ax)
    return fig


def _ppc_by_group(table: pd.DataFrame, outcome: str, headline: str, options: dict):
    """One column per group, sorted by predictive mean: the rows' 95% predictive HDI and the observed rows."""
    by_group = (
        table.groupby("site", sort=False)
        .agg(
            lower=("hdi_lower", "min"),
            upper=("hdi_upper", "max"),
            mean=("predictive_mean", "mean"),
            n=("observed", "size"),
        )
        .sort_values("mean")
    )
    position = pd.Series(np.arange(len(by_group)), index=by_group.index)
    many = len(by_group) > LABEL_LIMIT
    width = options.get("wide_figsize", (12, 4.5))[0]
    fig, ax = plt.subplots(figsize=(max(width, 2 + 0.13 * min(len(by_group), LABEL_LIMIT)), 6.5 if not many else 5))
    fig.set_layout_engine("constrained")
    ax.vlines(
        position,
        by_group["lower"],
        by_group["upper"],
        color="C0",
        lw=2.5 if not many else 0.6,
        alpha=0.5,
        label="95% predictive HDI of a row",
    )
    x = position[table["site"]].to_numpy() + np.random.default_rng(0).uniform(-0.25, 0.25, len(table))
    inside = table["inside"].to_numpy(bool)
    size = 6 if not many else 1
    ax.scatter(
        x[inside], table["observed"][inside], s=size, color="0.3", label="observed, inside", rasterized=True, zorder=3
    )
    ax.scatter(
        x[~inside],
        table["observed"][~inside],
        s=size * 1.5,
        color="crimson",
        label="observed, outside",
        rasterized=True,
        zorder=4,
    )
    note = group_labels(ax, position.to_numpy(), list(by_group.index), by_group["n"].to_numpy(), axis="x")
    ax.set_xlim(-1, len(by_group))
    ax.grid(axis="x", visible=False)
    ax.set_ylabel(outcome)
    ax.set_title(f"{headline}\ngroups sorted by predictive mean ({note})", fontsize="medium")
    legend_beside(ax)
    return fig


def forest(summaries: dict[str, pd.DataFrame], counts: pd.Series, title: str, options: dict, population=None):
    """Site means under each model: 94% HDI (thin), 50% HDI (thick) and mean. `summaries`: model label ->
    rows per site (or one row for a model without site means) with mean, hdi94/hdi50 lower and upper.
    Up to FEW sites in the given order, past that sorted by the last model's mean."""
    per_site = {label: s for label, s in summaries.items() if len(s) > 1 or len(counts) == 1}
    order = list(counts.index)
    if len(order) > FEW and per_site:
        order = list(list(per_site.values())[-1]["mean"].reindex(counts.index).sort_values(na_position="first").index)
    position = pd.Series(np.arange(len(order))[::-1], index=order)
    fig, ax = figure(options, groups=len(order), legend=True)
    many = len(order) > LABEL_LIMIT
    if FEW < len(order) <= LABEL_LIMIT:  # labelled rows: room for each series beside the others
        fig.set_figheight(fig.get_figheight() * max(1.0, len(per_site) / 3))
    offsets = np.linspace(-0.22, 0.22, len(per_site)) if len(per_site) > 1 and not many else np.zeros(len(per_site))
    others = [label for label in summaries if not any(label.startswith(m.label) for m in models.MODELS.values())]
    for (label, rows), offset in zip(per_site.items(), offsets):
        colour = _colour_of(label, others)
        y = position[rows.index].to_numpy() + offset
        ax.hlines(y, rows["hdi94_lower"], rows["hdi94_upper"], color=colour, lw=0.8 if not many else 0.3, alpha=0.8)
        ax.hlines(y, rows["hdi50_lower"], rows["hdi50_upper"], color=colour, lw=2.5 if not many else 0.8, alpha=0.9)
        ax.scatter(rows["mean"], y, color=colour, s=14 if not many else 2, zorder=3, label=label, rasterized=many)
    for label, rows in summaries.items():
        if label not in per_site:
            row = rows.iloc[0]
            ax.axvspan(
                row["hdi94_lower"],
                row["hdi94_upper"],
                color=_colour_of(label, others),
                alpha=0.15,
                label=f"{label} (one mean, 94% HDI)",
            )
    if population is not None:
        ax.axvline(population, color="0.2", ls="--", lw=1, label="population mean (partial pooling)")
    note = group_labels(ax, position[order].to_numpy(), order, counts[order].to_numpy(), axis="y")
    ax.set_ylim(-1, len(order))
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("site mean mu (posterior mean, 50% and 94% HDI)")
    ax.set_title(f"{title}\n{note}", fontsize="medium")
    legend_beside(ax)
    return fig


FORMULA_COLOURS = (
    "C4",
    "C5",
    "C6",
    "C8",
    "C9",
)  # the models have C0 to C2; C3 (red) is close to the small-group labels


def _colour_of(label: str, others: list[str]):
    """A model's own colour; other series (formulas) one each from FORMULA_COLOURS, in order."""
    for model in models.MODELS.values():
        if label.startswith(model.label):
            return model.colour
    return FORMULA_COLOURS[others.index(label) % len(FORMULA_COLOURS)]


def shrinkage(table: pd.DataFrame, outcome: str, title: str, options: dict, population=None):
    """Each site's mean against its size: no pooling (its own data) moved to partial pooling (pulled
    towards the population), with complete pooling's single mean; small sites move most."""
    fig, ax = figure(options, legend=True)
    many = len(table) > LABEL_LIMIT
    n = table["n"].to_numpy()
    if {"no_pooling_mean", "partial_pooling_mean"} <= set(table.columns):
        ax.vlines(n, table["no_pooling_mean"], table["partial_pooling_mean"], color="0.6", lw=0.6, zorder=1)
    for name, marker in (("no_pooling", "o"), ("partial_pooling", "o")):
        column = f"{name}_mean"
        if column in table:
            filled = name == "partial_pooling"
            ax.scatter(
                n,
                table[column],
                s=8 if many else 22,
                marker=marker,
                zorder=3,
                rasterized=many,
                facecolors=models.get(name).colour if filled else "none",
                edgecolors=models.get(name).colour,
                label=models.get(name).label,
            )
    if "complete_pooling_mean" in table:
        ax.axhline(
            table["complete_pooling_mean"].iloc[0],
            color=models.get("complete_pooling").colour,
            lw=1.2,
            label=models.get("complete_pooling").label,
        )
    if population is not None:
        ax.axhline(population, color="0.2", ls="--", lw=1, label="population mean")
    size_axis(ax, n)
    ax.set_xlabel("rows in the site (log scale)")
    ax.set_ylabel(f"posterior mean of the site mean of {outcome}")
    ax.set_title(title, fontsize="medium")
    legend_beside(ax)
    return fig


KDE_DRAWS = 1_000_000  # a new site's rows x draws can be a hundred million: ArviZ's KDE of all takes GBs


def density_with_interval(draws: np.ndarray, lower: float, upper: float, label: str, ax, colour="C0"):
    """A KDE of `draws` (ArviZ's, over the draws' range; of every k-th draw where there are more than
    KDE_DRAWS, a curve no eye can tell apart) with its interval shaded and its mean marked."""
    from arviz_stats import kde

    draws = np.asarray(draws, float).ravel()
    xs, ys, _ = kde(draws[:: -(-draws.size // KDE_DRAWS)])
    ax.plot(xs, ys, color=colour, lw=1.8, label=label)
    ax.set_ylabel("Density")
    grid = np.linspace(lower, upper, 200)
    ax.fill_between(grid, 0, np.interp(grid, xs, ys), color=colour, alpha=0.2)
    ax.axvline(draws.mean(), color=colour, ls="--", lw=1)


def trace_figure(posterior, title: str, options: dict):
    """The lecture's trace plot (ArviZ's densities and draws per chain) of every variable of `posterior`."""
    import arviz_plots as azp

    pc = azp.plot_trace_dist(
        posterior,
        compact=True,
        backend="matplotlib",
        figure_kwargs={
            "figsize": (options["wide_figsize"][0], 1.6 + 2.2 * len(posterior.data_vars)),
            "layout": "constrained",
        },
    )
    fig = pc.viz["figure"].item()
    fig.suptitle(title, fontsize="medium")
    return fig


def new_site_figure(tree, coverage, site: str, source: str, outcome: str, options: dict):
    """Predictive density of a new site's rows (its `coverage` row's HDI shaded) over its observed rows;
    `source`: what predicted it (the selection, and the formula if one)."""
    draws = tree["predictions"]["y_est"].values.ravel()
    observed = tree["observed_data"]["y_est"].values
    fig, ax = figure(options, legend=True)
    label = "posterior predictive (95% HDI shaded)"
    density_with_interval(draws, coverage["hdi_lower"], coverage["hdi_upper"], label, ax)
    ax.hist(observed, bins="auto", density=True, color="0.6", alpha=0.5, label=f"observed {site} (n={observed.size})")
    ax.plot(observed, np.zeros(observed.size), "|", color="0.2", ms=10)
    ax.set_xlabel(outcome)
    ax.set_title(
        f"{site}, predicted from {source}:\n{coverage['coverage']:.0%} of rows inside the 95% HDI", fontsize="medium"
    )
    legend_beside(ax)
    return fig


def held_out_sites(folds: pd.DataFrame, outcome: str, title: str, options: dict):
    """Each site's observed mean (black) against the 95% predictive interval of its mean under each
    model fitted without it, one panel per model (each on its own scale: one model's intervals may be
    many times wider than another's), named with the formulas its fits scored too; sites ordered by
    size, the largest at the top."""
    counts = folds.drop_duplicates("site").set_index("site")["n"].sort_values(kind="stable")
    position = pd.Series(np.arange(len(counts)), index=counts.index)
    scored_by = folds.drop_duplicates("model").set_index("model")["scored_by"]
    names = [name for name, fit in scored_by.items() if fit == name]
    fig, axes = figure(options, groups=len(counts), wide=True, panels=len(names))
    many = len(counts) > LABEL_LIMIT
    for ax, name in zip(axes, names):
        rows = folds[folds["model"] == name]
        y = position[rows["site"]].to_numpy()
        colour = _colour_of(model_label(name), [model_label(other) for other in names])
        ax.hlines(y, rows["mean_lower"], rows["mean_upper"], color=colour, lw=2 if not many else 0.5, alpha=0.8)
        ax.scatter(rows["observed_mean"], y, color="black", s=14 if not many else 2, zorder=3, rasterized=many)
        outside = ((rows["observed_mean"] < rows["mean_lower"]) | (rows["observed_mean"] > rows["mean_upper"])).sum()
        failed = (~rows["passed"].astype(bool)).sum()
        verdict = f"\n{failed} folds FAILED the convergence gate" if failed else ""
        same = "".join(f" = {other}" for other, fit in scored_by.items() if fit == name and other != name)
        ax.set_title(f"{model_label(name)}{same}\n{outside} of {len(rows)} outside{verdict}", fontsize="small")
        ax.grid(axis="y", visible=False)
    note = group_labels(axes[0], position.to_numpy(), list(counts.index), counts.to_numpy(), axis="y")
    axes[0].set_ylim(-1, len(counts))
    axes[0].set_ylabel("sites by size, largest at the top")
    fig.supxlabel(f"mean {outcome} of the site's rows: observed (black), 95% predictive interval from the other sites")
    fig.suptitle(f"{title}\n{note}", fontsize="medium")
    return fig


def prior_predictive(draws: dict, observed: np.ndarray, table: pd.DataFrame, title: str, outcome: str, options: dict):
    """Per model (one panel each) the prior predictive distribution of one row, central 99% shown,
    against the observed rows; `table`: per model its quantiles and the share of rows inside."""
    fig, axes = plt.subplots(1, len(draws), figsize=options["wide_figsize"], layout="constrained", squeeze=False)
    for ax, (name, values) in zip(axes[0], draws.items()):
        row = table.loc[name]
        central = values[(values >= row["q01"]) & (values <= row["q99"])]
        bins = np.linspace(min(row["q01"], observed.min()), max(row["q99"], observed.max()), 80)
        ax.hist(central, bins=bins, density=True, color=models.MODELS[name].colour, alpha=0.6, label="prior predictive")
        ax.hist(observed, bins=bins, density=True, color="0.2", alpha=0.5, label="observed")
        ax.set_yticks([])
        ax.set_xlabel(outcome)
        verdict = "CONFLICT: " if row["conflict"] else ""
        ax.set_title(
            f"{models.MODELS[name].label}\n{verdict}{row['data_inside_99']:.0%} of rows inside its 99%",
            fontsize="small",
        )
    fig.suptitle(title, fontsize="medium")
    legend_beside(axes[0, -1])
    return fig
