"""Every figure stays readable from a few groups to thousands: no text overlaps other text or leaves
the figure, and no legend covers plotted data. Rendered from synthetic inputs shaped like the
workflow's (tables, posteriors) at 5, 15, 85, 400 and 2,000 groups."""

import itertools

import matplotlib.collections
import matplotlib.lines
import matplotlib.text
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from hbm import plotting
from plot_all_sites import all_groups
from plot_checks import _icc_figure
from plot_fits import site_mean_summary, trace
from plot_selection import _by_site, _histogram

SIZES = [5, 15, 85, 400, 2000]
OPTIONS = {"figsize": [7, 4.5], "wide_figsize": [12, 4.5], "dpi": 110, "palette": "tab10", "style": "whitegrid"}


def layout_problems(fig) -> list[str]:
    """Text boxes that overlap each other or leave the figure, and legends that cover data points."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = drawn_texts(fig)
    boxes = [t.get_window_extent(renderer) for t in texts]
    edge = fig.bbox
    problems = [
        f"text {t.get_text()!r} leaves the figure"
        for t, box in zip(texts, boxes)
        if box.x0 < edge.x0 - 1 or box.y0 < edge.y0 - 1 or box.x1 > edge.x1 + 1 or box.y1 > edge.y1 + 1
    ]
    for (a, box_a), (b, box_b) in itertools.combinations(zip(texts, boxes), 2):
        if (
            min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0) > 1
            and min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0) > 1
        ):
            problems.append(f"texts {a.get_text()!r} and {b.get_text()!r} overlap")
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        box = legend.get_window_extent(renderer)
        points = _data_points(ax)
        inside = (points[:, 0] > box.x0) & (points[:, 0] < box.x1) & (points[:, 1] > box.y0) & (points[:, 1] < box.y1)
        if inside.any():
            problems.append(f"a legend covers {inside.sum()} plotted data points")
    return problems


def drawn_texts(fig) -> list:
    """Every text matplotlib draws: titles, labels, legend entries, and the tick labels of ticks
    inside each axis's view (matplotlib makes labels for ticks outside it too, but does not draw them)."""
    ticks, drawn = set(), []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            span = (high - low) * 1e-9
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                labels = (tick.label1, tick.label2)
                ticks.update(map(id, labels))
                if low - span <= tick.get_loc() <= high + span:
                    drawn += [label for label in labels if label.get_visible() and label.get_text().strip()]
    others = [
        t for t in fig.findobj(matplotlib.text.Text) if id(t) not in ticks and t.get_visible() and t.get_text().strip()
    ]
    return drawn + others


def _data_points(ax) -> np.ndarray:
    points = [np.empty((0, 2))]
    for artist in ax.get_children():
        if isinstance(artist, matplotlib.lines.Line2D) and artist.get_visible():
            xy = artist.get_xydata()
        elif isinstance(artist, matplotlib.collections.PathCollection):
            xy = artist.get_offsets()
        else:
            continue
        xy = np.asarray(xy, float)
        if xy.size:
            points.append(ax.transData.transform(xy[np.isfinite(xy).all(axis=1)]))
    return np.concatenate(points)


def groups(count, seed=0):
    """Rows of `count` groups with heavy-tailed sizes (many with one or two rows)."""
    rng = np.random.default_rng(seed)
    sizes = np.minimum(rng.zipf(1.8, count), 400)
    names = [f"Group {j} ä" if j % 7 else f"county {j:05d}" for j in range(count)]
    group = np.repeat(names, sizes)
    y = np.repeat(rng.normal(0, 1, count), sizes) + rng.normal(0, 0.8, group.size)
    return pd.DataFrame({"obs_id": np.arange(group.size), "g": group, "y": y}), names, sizes


def posterior(names, seed=0):
    rng = np.random.default_rng(seed)
    shape = (2, 100, len(names))
    return xr.Dataset(
        {
            "mu": (("chain", "draw", "site"), rng.normal(0, 1, shape)),
            "sigma": (("chain", "draw", "site"), rng.gamma(5, 0.2, shape)),
        },
        coords={"site": names},
    )


def ppc_table(frame):
    mean = frame.groupby("g")["y"].transform("mean").to_numpy()
    return pd.DataFrame(
        {
            "site": frame["g"],
            "observed": frame["y"],
            "predictive_mean": mean,
            "hdi_lower": mean - 1.6,
            "hdi_upper": mean + 1.6,
            "inside": (frame["y"] - mean).abs() < 1.6,
        }
    )


def figures(count):
    frame, names, sizes = groups(count)
    plotting.style(OPTIONS)
    colours = plotting.palette(names, OPTIONS)
    draws = {"no pooling": posterior(names, 1), "partial pooling": posterior(names, 2)}
    pooled = xr.Dataset({"mu": (("chain", "draw"), np.random.default_rng(3).normal(0, 0.1, (2, 100)))})
    summaries = {"complete pooling": site_mean_summary(pooled["mu"])} | {
        k: site_mean_summary(v["mu"]) for k, v in draws.items()
    }
    counts = pd.Series(sizes, index=names)
    shrink = pd.DataFrame(
        {
            "site": names,
            "n": sizes,
            "no_pooling_mean": draws["no pooling"]["mu"].mean(("chain", "draw")),
            "partial_pooling_mean": draws["partial pooling"]["mu"].mean(("chain", "draw")),
            "complete_pooling_mean": 0.0,
        }
    )
    icc = pd.Series({"hdi_3%": 0.1, "hdi_97%": 0.5, "mean": 0.3})
    partial = xr.Dataset(
        {
            "between_variability": (("chain", "draw"), np.random.default_rng(4).gamma(4, 0.1, (2, 100))),
            "within_variability": (("chain", "draw"), np.random.default_rng(5).gamma(40, 0.02, (2, 100))),
        }
    )
    new_site = xr.DataTree.from_dict(
        {
            "predictions": xr.Dataset(
                {"y_est": (("chain", "draw", "obs_id"), np.random.default_rng(6).normal(0, 1.2, (2, 100, 30)))}
            ),
            "observed_data": xr.Dataset({"y_est": ("obs_id", np.random.default_rng(7).normal(0, 1, 30))}),
        }
    )
    coverage = pd.Series({"hdi_lower": -2.3, "hdi_upper": 2.3, "coverage": 0.97})
    yield "all groups", all_groups(frame, "y", "g", OPTIONS)
    yield "histogram", _histogram(frame, "y", f"y in selection sel ({len(frame):,} rows, {count:,} sites)", OPTIONS)
    yield "sites", _by_site(frame, names, "y", "g", OPTIONS)
    yield "new site", plotting.new_site_figure(new_site, coverage, "Zürich", "sel", "y", OPTIONS)
    yield "ppc", plotting.ppc_intervals(ppc_table(frame), "y", "partial pooling (sel)", colours, OPTIONS)
    yield "forest", plotting.forest(summaries, counts, "Site means under the models (sel)", OPTIONS, 0.0)
    yield (
        "shrinkage",
        plotting.shrinkage(
            shrink, "y", "Shrinkage (sel): partial pooling pulls site means\ntowards the population", OPTIONS, 0.0
        ),
    )
    summary = pd.DataFrame(
        {"parameter": [f"{p}[{n}]" for p in ("mu", "sigma") for n in names], "ess_bulk": np.arange(2 * count, 0, -1.0)}
    )
    yield "trace", trace(draws["no pooling"], summary, "no pooling (sel)", OPTIONS)
    yield "icc", _icc_figure(partial, icc, "sel", OPTIONS)
    yield "leave one site out", plotting.held_out_sites(folds(frame), "y", "Each site predicted (sel)", OPTIONS)
    yield "prior predictive", prior_predictive(frame["y"].to_numpy())


def folds(frame) -> pd.DataFrame:
    """Leave-one-site-out rows of two models and of a formula scored by one of them, shaped like the
    summary step's table."""
    means = frame.groupby("g", sort=False)["y"].agg(["size", "mean"])
    rows = []
    for model, scored_by, width in (
        ("complete_pooling", "complete_pooling", 1.0),
        ("partial_pooling", "partial_pooling", 2.0),
        ("partial_pooling_bambi", "partial_pooling", 2.0),
    ):
        rows.append(
            pd.DataFrame(
                {
                    "site": means.index,
                    "n": means["size"].to_numpy(),
                    "model": model,
                    "scored_by": scored_by,
                    "observed_mean": means["mean"].to_numpy(),
                    "mean_lower": -width,
                    "mean_upper": width,
                    "passed": True,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def prior_predictive(observed):
    rng = np.random.default_rng(9)
    draws = {name: rng.normal(0, 50, 2000) for name in ("complete_pooling", "no_pooling", "partial_pooling")}
    quantiles = {name: np.quantile(d, [0.01, 0.99]) for name, d in draws.items()}
    table = pd.DataFrame(
        {
            "q01": [q[0] for q in quantiles.values()],
            "q99": [q[1] for q in quantiles.values()],
            "data_inside_99": 1.0,
            "conflict": [False, False, True],
        },
        index=list(draws),
    )
    return plotting.prior_predictive(draws, observed, table, "Prior predictive distributions (sel)", "y", OPTIONS)


@pytest.mark.parametrize("count", SIZES)
def test_figures_are_readable(count):
    found = {}
    for name, fig in figures(count):
        problems = layout_problems(fig)
        if problems:
            found[name] = problems[:5]
        plotting.plt.close(fig)
    assert not found, found


@pytest.mark.parametrize("count", [15, 85])
def test_no_two_sites_share_a_colour(count):
    names = [f"s{j}" for j in range(count)]
    assert len(set(plotting.palette(names, OPTIONS).values())) == count
