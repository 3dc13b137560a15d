"""The workflow's tables: summaries, predictive checks, comparisons, variance split, shrinkage."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats import compare, summary

from hbm import io
from hbm.data import Grouped
from hbm.models import SCALE_PARAMETERS
from hbm.variance import variance_draws

SUMMARY_COLUMNS = [
    "parameter",
    "mean",
    "sd",
    "hdi_3%",
    "hdi_97%",
    "mcse_mean",
    "mcse_sd",
    "ess_bulk",
    "ess_tail",
    "r_hat",
]
SAMPLE = ("chain", "draw")


def reported_parameters(posterior) -> list[str]:
    """The model's parameters in the lecture's names (the non-centered offsets are left out)."""
    return [name for name in posterior.data_vars if name != "mu_offset"]


def posterior_summary(posterior: xr.Dataset, data: Grouped) -> pd.DataFrame:
    """The lecture's table: mean, sd, 94% HDI, MCSE, bulk and tail ESS, r-hat for every parameter,
    and what identifies it: a site's own sd is learnt from the spread of its rows, so with one row
    it is identified by its prior alone."""
    table = summary(posterior[reported_parameters(posterior)], ci_kind="hdi", ci_prob=0.94, round_to="none")
    table = table.rename(columns={"hdi94_lb": "hdi_3%", "hdi94_ub": "hdi_97%"})
    table = table.rename_axis("parameter").reset_index()[SUMMARY_COLUMNS]
    single = [site for site, n in zip(data.sites, data.n) if n == 1]
    prior_only = {
        f"{name}[{site}]"
        for name in SCALE_PARAMETERS
        if name in posterior and "site" in posterior[name].dims
        for site in single
    }
    table["identified_by"] = np.where(table["parameter"].isin(prior_only), "prior only (1 row)", "data")
    return table


def hdi_bounds(draws: xr.DataArray, prob: float, budget: int = 2**22) -> tuple[np.ndarray, np.ndarray]:
    """ArviZ's default HDI (`arviz_stats.hdi`, method "nearest", `_hdi_linear_nearest_common`: the
    narrowest pair of sorted draws floor(prob * n) apart), for every other coordinate at once:
    ArviZ loops over them in Python, which takes minutes for a million rows. Lower and upper bounds
    over the dims other than chain and draw, in their order; tests/test_tables.py keeps it equal to
    ArviZ's."""
    values = draws.transpose(*SAMPLE, ...).values
    lower, upper = sample_hdi(values.reshape(values.shape[0] * values.shape[1], -1), prob, budget)
    return lower.reshape(values.shape[2:]), upper.reshape(values.shape[2:])


def sample_hdi(samples: np.ndarray, prob: float, budget: int = 2**22) -> tuple[np.ndarray, np.ndarray]:
    """`hdi_bounds` of each column of a (samples, columns) array, in memory of about `budget` values
    beside the input: columns are sorted a block at a time, and interval widths compared a block of
    rows at a time (a million rows' predictive draws never need a sorted copy of all of them)."""
    n, m = samples.shape
    lower, upper = np.empty(m, samples.dtype), np.empty(m, samples.dtype)
    width = max(1, budget // n)
    for first in range(0, m, width):
        columns = slice(first, first + width)
        lower[columns], upper[columns] = _narrowest(np.sort(samples[:, columns], axis=0), prob, budget)
    return lower, upper


def _narrowest(ordered: np.ndarray, prob: float, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Per column of sorted draws, the narrowest pair floor(prob * n) apart (the first, where tied)."""
    n, m = ordered.shape
    step = min(int(np.floor(prob * n)), n - 1)
    starts, columns = n - step, np.arange(m)
    best, start = np.full(m, np.inf), np.zeros(m, dtype=int)
    rows = max(1, budget // m)
    for first in range(0, starts, rows):
        last = min(first + rows, starts)
        widths = ordered[first + step : last + step] - ordered[first:last]
        local = np.argmin(widths, axis=0)
        narrowest = widths[local, columns]
        narrower = narrowest < best
        best[narrower], start[narrower] = narrowest[narrower], first + local[narrower]
    return ordered[start, columns], ordered[start + step, columns]


def ppc_intervals(predictive: xr.DataArray, data: Grouped, prob: float = 0.95) -> pd.DataFrame:
    """Per observation: the observed value, the predictive mean and HDI, and whether it lies inside (means
    with skipna=False: xarray would otherwise copy all rows x draws to mask NaNs)."""
    lower, upper = hdi_bounds(predictive, prob)
    return pd.DataFrame(
        {
            "obs_id": data.obs_id,
            "site": np.asarray(data.sites)[data.site_idx],
            "observed": data.y,
            "predictive_mean": predictive.mean(SAMPLE, skipna=False).values,
            "hdi_lower": lower,
            "hdi_upper": upper,
            "inside": (data.y >= lower) & (data.y <= upper),
        }
    )


def _describe(draws: xr.DataArray, prob: float = 0.94) -> dict:
    lower, upper = hdi_bounds(draws, prob)
    return {"mean": float(draws.mean()), "sd": float(draws.std()), "hdi_3%": float(lower), "hdi_97%": float(upper)}


def mu_comparison(posteriors: dict[str, xr.Dataset], sites: list[str]) -> pd.DataFrame:
    """Every site's mean under each model (complete pooling's single mu stands for every site; a model
    fitted to fewer sites has rows for its own)."""
    frames = []
    for name, posterior in posteriors.items():
        mu = posterior["mu"]
        if "site" not in mu.dims:
            mu = mu.expand_dims(site=sites)
        lower, upper = hdi_bounds(mu, 0.94)
        frames.append(
            pd.DataFrame(
                {
                    "site": mu["site"].values,
                    "model": name,
                    "mean": mu.mean(SAMPLE).values,
                    "sd": mu.std(SAMPLE).values,
                    "hdi_3%": lower,
                    "hdi_97%": upper,
                }
            )
        )
        if "hyper_mu" in posterior:
            frames.append(pd.DataFrame([{"site": "(population)", "model": name, **_describe(posterior["hyper_mu"])}]))
    return pd.concat(frames, ignore_index=True)


def variance_decomposition(posterior: xr.Dataset) -> pd.DataFrame:
    """Posterior mean, sd and 94% HDI of each variance quantity (not ratios of posterior means)."""
    return pd.DataFrame([{"quantity": key, **_describe(draws)} for key, draws in variance_draws(posterior).items()])


def shrinkage(posteriors: dict[str, xr.Dataset], data: Grouped, population: str) -> pd.DataFrame:
    """Per site: the pooling weight n σ_μ² / (σ_y² + n σ_μ²) of the `population` model as a posterior,
    and every model's site means (empty for a site a model leaves out)."""
    partial = posteriors[population]
    n = xr.DataArray(data.n, coords={"site": data.sites}, dims="site")
    between, within = partial["between_variability"] ** 2, partial["within_variability"] ** 2
    weight = n * between / (within + n * between)
    lower, upper = hdi_bounds(weight, 0.94)
    table = pd.DataFrame(
        {
            "site": data.sites,
            "n": data.n.astype(int),
            "observed_mean": data.ybar,
            "weight_mean": weight.mean(SAMPLE).values,
            "weight_hdi_3%": lower,
            "weight_hdi_97%": upper,
        }
    )
    for name, posterior in posteriors.items():
        mu = posterior["mu"].mean(SAMPLE)
        table[f"{name}_mean"] = mu.reindex(site=data.sites).values if "site" in mu.dims else float(mu)
    return table


def loo_comparison(trees: dict[str, xr.DataTree]) -> pd.DataFrame:
    """PSIS-LOO comparison of the models, best first (ArviZ's columns)."""
    table = compare(trees, round_to="none")
    return table.rename_axis("model").reset_index()


COVERAGE_COLUMNS = ["site", "n", "observed_mean", "predictive_mean", "hdi_lower", "hdi_upper", "coverage", "nominal"]


def new_sites_coverage(predictions: dict, prob: float = 0.95) -> pd.DataFrame:
    """`new_site_coverage` of every new site (site -> its predictions' NetCDF file, read one at a time),
    one row each; no rows if none."""
    rows = [new_site_coverage(site, io.read_tree(path), prob) for site, path in predictions.items()]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=COVERAGE_COLUMNS)


def new_site_coverage(site: str, predictions: xr.DataTree, prob: float = 0.95) -> pd.DataFrame:
    """Share of the new site's observations inside the central predictive HDI of one of its rows (the
    HDI of all its rows' draws pooled, as ArviZ's `hdi` over them)."""
    draws = predictions["predictions"]["y_est"]
    observed = predictions["observed_data"]["y_est"].values
    lower, upper = (float(bound[0]) for bound in sample_hdi(draws.values.reshape(-1, 1), prob))
    inside = (observed >= lower) & (observed <= upper)
    values = [site, observed.size, observed.mean(), float(draws.mean(skipna=False)), lower, upper, inside.mean(), prob]
    return pd.DataFrame([dict(zip(COVERAGE_COLUMNS, values))])


def convergence(trees: dict, more_failures: dict | None = None) -> pd.DataFrame:
    """Each fit's verdict of the convergence gate, as recorded by its fit, with `more_failures`
    (name -> list of failures found later, e.g. a failed cross-check)."""
    rows = []
    for name, tree in trees.items():
        failures = io.recorded_failures(tree) + (more_failures or {}).get(name, [])
        rows.append(
            {
                "model": name,
                "divergences": int(tree.attrs["divergences"]),
                "failures": "; ".join(failures) or "none",
                "likely_cause": "; ".join(json.loads(tree.attrs["likely_causes"])),
                "passed": not failures,
                "sites_left_out": json.dumps(io.sites_left_out(tree), ensure_ascii=False),
            }
        )
    return pd.DataFrame(rows)
