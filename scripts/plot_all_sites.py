"""Boxplot of the outcome for every group in the data."""

import matplotlib.pyplot as plt
import seaborn as sns

from hbm import data as hdata
from hbm import io, plotting


def plot_all_sites(data_path, out_path, config: dict, log_path=None):
    """Boxplot of the outcome for every group in the data, in order of median."""
    log = io.setup_logging(log_path)
    outcome, group, options = config["outcome"], config["group"], config["plots"]
    plotting.style(options)
    frame = hdata.read_table(data_path, outcome, group).dropna(subset=[outcome])
    order = frame.groupby(group)[outcome].median().sort_values().index.tolist()
    fig, ax = plt.subplots(figsize=options["wide_figsize"])
    sns.boxplot(data=frame, x=group, y=outcome, order=order, ax=ax, color="C0", fliersize=2)
    counts = frame[group].value_counts()
    ax.set_xticks(range(len(order)), [f"{site}\n(n={counts[site]})" for site in order], rotation=45, ha="right")
    ax.set_title(f"{outcome} by {group}, all {len(order)} groups ({len(frame)} rows)")
    plotting.save(fig, out_path)
    log.info("plotted %d groups", len(order))


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821
    io.run_step(plot_all_sites, sm.input.data, sm.output[0], sm.config, sm.log[0])
