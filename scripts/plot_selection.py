"""Figures of one selection's data: histogram with KDE, mean and rug; boxplot and KDE by site."""

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from hbm import io, plotting


def plot_selection(data_path, histogram_path, sites_path, selection: str, config: dict, log_path=None):
    """Histogram with KDE, mean and rug; boxplot and KDE by site."""
    log = io.setup_logging(log_path)
    outcome, group, options = config["outcome"], config["group"], config["plots"]
    plotting.style(options)
    frame = pd.read_csv(data_path, dtype={group: str}, keep_default_na=False)
    sites = list(dict.fromkeys(frame[group]))
    colours = plotting.palette(sites, options)

    fig, ax = plt.subplots(figsize=options["figsize"])
    sns.histplot(frame[outcome], kde=True, stat="density", ax=ax, color="C0", alpha=0.4)
    sns.rugplot(frame[outcome], ax=ax, color="0.3", height=0.03)
    mean = frame[outcome].mean()
    ax.axvline(mean, color="crimson", ls="--", label=f"mean = {mean:.2f}")
    ax.set_title(f"{outcome} in selection {selection} ({len(frame)} rows, {len(sites)} sites)")
    ax.legend()
    plotting.save(fig, histogram_path)

    fig, (box, kde) = plt.subplots(1, 2, figsize=(options["figsize"][0] * 2, options["figsize"][1]))
    sns.boxplot(data=frame, x=group, y=outcome, hue=group, order=sites, palette=colours, ax=box, legend=False)
    box.set_xticks(
        range(len(sites)), sites, rotation=45 if len(sites) > 6 else 0, ha="right" if len(sites) > 6 else "center"
    )
    for site in sites:
        sns.kdeplot(frame.loc[frame[group] == site, outcome], ax=kde, color=colours[site], label=site)
    kde.legend(fontsize="small", ncol=2 if len(sites) > 8 else 1)
    box.set_title(f"{outcome} by site")
    kde.set_title("density by site")
    plotting.save(fig, sites_path)
    log.info("plotted selection %s", selection)


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821
    io.run_step(
        plot_selection,
        sm.input.data,
        sm.output.histogram,
        sm.output.sites,
        sm.wildcards.selection,
        sm.config,
        sm.log[0],
    )
