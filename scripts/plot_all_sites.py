"""Every group of the data: box plots sorted by median, or group means by size past the label limit."""

from hbm import data as hdata
from hbm import io, plotting


def plot_all_sites(data_path, out_path, settings: dict, log_path=None):
    """Box plots of the outcome for every group in the data, in order of median."""
    log = io.setup_logging(log_path)
    outcome, group, options = settings["outcome"], settings["group"], settings["plots"]
    plotting.style(options)
    frame = hdata.read_table(data_path, outcome, group, settings.get("reading")).dropna(subset=[outcome])
    fig = all_groups(frame, outcome, group, options)
    plotting.save(fig, out_path)
    log.info("plotted %d groups", frame[group].nunique())


def all_groups(frame, outcome: str, group: str, options: dict):
    """Box plots by group sorted by median, or group means by size past the label limit."""
    order = frame.groupby(group)[outcome].median().sort_values().index.tolist()
    title = f"{outcome} by {group}, all {len(order):,} groups ({len(frame):,} rows)"
    if len(order) > plotting.LABEL_LIMIT:
        fig, ax = plotting.figure(options, wide=True)
        plotting.group_means_by_size(ax, frame, outcome, group)
        ax.set_title(f"{title}:\ngroup means by group size", fontsize="medium")
        return fig
    fig, ax = plotting.figure(options, groups=len(order), wide=len(order) <= plotting.FEW)
    note = plotting.boxes_by_group(ax, frame, outcome, group, order)
    ax.set_title(f"{title}, sorted by median\n{note}", fontsize="medium")
    return fig


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821
    io.run_step(plot_all_sites, sm.input.data, sm.output[0], sm.params.settings, sm.log[0])
