"""Figures shared by the plotting steps: one palette per site, one way to save."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from hbm.io import atomic_path  # noqa: E402

MODEL_LABELS = {
    "complete_pooling": "complete pooling",
    "no_pooling": "no pooling",
    "partial_pooling": "partial pooling",
}


def style(options: dict) -> None:
    sns.set_theme(style=options.get("style", "whitegrid"), context="notebook")
    plt.rcParams["figure.dpi"] = options.get("dpi", 110)


def palette(sites: list[str], options: dict) -> dict[str, tuple]:
    """The same colour for a site in every figure."""
    return dict(zip(sites, sns.color_palette(options.get("palette", "tab10"), len(sites))))


def save(fig, path: str | Path) -> None:
    """Save a figure atomically, with metadata that names the software only."""
    with atomic_path(path) as tmp:
        fig.savefig(
            tmp, format="png", bbox_inches="tight", metadata={"Software": f"matplotlib {matplotlib.__version__}"}
        )
    plt.close(fig)


def site_ticks(ax, sites: np.ndarray) -> None:
    """Label the x axis of a per-observation plot (rows grouped by site) with site names."""
    codes, labels = pd.factorize(sites)
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    ends = np.r_[starts[1:], len(codes)]
    ax.set_xticks(
        (starts + ends - 1) / 2,
        labels,
        rotation=45 if len(labels) > 6 else 0,
        ha="right" if len(labels) > 6 else "center",
    )
    for boundary in starts[1:]:
        ax.axvline(boundary - 0.5, color="0.8", lw=0.8, zorder=0)
    ax.set_xlim(-0.5, len(codes) - 0.5)
    ax.grid(axis="x", visible=False)


def ppc_intervals(table: pd.DataFrame, outcome: str, title: str, colours: dict, options: dict):
    """Per-observation 95% predictive HDIs coloured by site, observed points marked inside/outside."""
    fig, ax = plt.subplots(figsize=options.get("wide_figsize", (12, 4.5)))
    x = np.arange(len(table))
    ax.vlines(x, table["hdi_lower"], table["hdi_upper"], colors=[colours[s] for s in table["site"]], lw=1.2, alpha=0.7)
    ax.scatter(
        x, table["predictive_mean"], marker="_", color="0.15", s=25, lw=1, label="posterior predictive mean", zorder=3
    )
    inside = table["inside"].to_numpy(bool)
    ax.scatter(x[inside], table["observed"][inside], s=9, color="0.35", label="observed, inside 95% HDI", zorder=4)
    ax.scatter(
        x[~inside], table["observed"][~inside], s=14, color="crimson", label="observed, outside 95% HDI", zorder=5
    )
    site_ticks(ax, table["site"].to_numpy())
    ax.set_ylabel(outcome)
    ax.set_title(f"{title}: {inside.mean():.1%} of observations inside their 95% predictive HDI", pad=24)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize="small", ncol=3, frameon=False)
    return fig


def shrinkage(data: pd.DataFrame, means: dict[str, np.ndarray], outcome: str, group: str, options: dict):
    """Posterior predictive mean per observation under each model, with each site's observed mean."""
    fig, ax = plt.subplots(figsize=options.get("wide_figsize", (12, 4.5)))
    x = np.arange(len(data))
    markers = {"complete_pooling": "s", "no_pooling": "^", "partial_pooling": "o"}
    for name, mean in means.items():
        ax.scatter(x, mean, s=8, marker=markers[name], label=MODEL_LABELS[name], zorder=3, alpha=0.8)
    site_mean = data.groupby(group, sort=False)[outcome].transform("mean").to_numpy()
    ax.plot(x, site_mean, color="0.1", lw=1.5, drawstyle="steps-mid", label="observed site mean", zorder=4)
    site_ticks(ax, data[group].to_numpy())
    ax.set_ylabel(f"posterior predictive mean of {outcome}")
    ax.set_title("Shrinkage: partial pooling pulls site means towards the population mean, small sites most", pad=24)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize="small", ncol=4, frameon=False)
    return fig


def density_with_interval(draws: np.ndarray, lower: float, upper: float, label: str, ax, colour="C0"):
    """A KDE of `draws` with its interval shaded and its mean marked."""
    sns.kdeplot(x=draws, ax=ax, color=colour, fill=False, lw=1.8, label=label, cut=0)
    grid = np.linspace(lower, upper, 200)
    line = ax.get_lines()[-1]
    xs, ys = line.get_data()
    ax.fill_between(grid, 0, np.interp(grid, xs, ys), color=colour, alpha=0.2)
    ax.axvline(draws.mean(), color=colour, ls="--", lw=1)
