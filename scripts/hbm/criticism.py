"""Model criticism: each site predicted as a new site by the models fitted without it (leave one
site out), and the comparison of models by it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from hbm import io, models, pointwise
from hbm.config import sampling_settings
from hbm.data import Grouped

FOLD_COLUMNS = [
    "site",
    "n",
    "model",
    "lpd",
    "lpd_mcse",
    "coverage_95",
    "observed_mean",
    "mean_lower",
    "mean_upper",
    "divergences",
    "failures",
    "passed",
]
COMPARISON_COLUMNS = ["model", "sites", "elpd_logo", "se", "elpd_diff", "diff_se", "mcse", "failed_folds"]


def lpd_with_mcse(log_p: np.ndarray) -> tuple[float, float]:
    """log of the posterior mean of p = exp(`log_p`) over draws (chain, draw), and its Monte Carlo
    standard error: ArviZ's MCSE of the mean of p (autocorrelation within chains accounted for),
    carried to the log scale (delta method: mcse / mean)."""
    top = float(np.max(log_p))
    ratio = xr.DataArray(np.exp(log_p - top), dims=("chain", "draw"))
    from arviz_stats import mcse

    mean = float(ratio.mean())
    return top + float(np.log(mean)), float(mcse(ratio, method="mean")) / mean


def fold(name: str, rest: Grouped, held_out: np.ndarray, site: str, selection: str, config: dict) -> dict:
    """Fit model `name` to `rest` and predict the rows `held_out` of `site` as a new site: the joint
    log predictive density of those rows, with its MCSE, the share of them inside the 95% HDI of a
    new site's row, and the 95% HDI of the mean of a new site's rows of that size."""
    from hbm import sampling, tables

    spec = config["models"][name]
    settings = sampling_settings(config, name)
    parameterization = models.parameterization_of(name, spec)
    model = models.build(name, rest, spec["priors"], parameterization)
    rng = io.rng_for(settings["seed"], selection, "leave_one_site_out", site, name)
    tree, posterior, drawn_after = sampling.posterior_of(model, name, rest, spec, parameterization, settings, 1, rng)
    divergences = int(tree["sample_stats"]["diverging"].sum())
    failures = sampling.gate_failures(posterior.drop_vars(drawn_after), divergences, config["convergence"])
    lpd, lpd_mcse = lpd_with_mcse(pointwise.new_site_log_density(posterior, name, held_out))
    obs_id = np.arange(held_out.size)
    draws = pointwise.new_site_predictive(posterior, name, obs_id, rng, config["storage"]["max_values"])
    coverage = tables.new_site_coverage(site, io.draws_with_observed("predictions", draws, held_out, obs_id, {}))
    lower, upper = tables.hdi_bounds(draws["y_est"].mean("obs_id"), 0.95)
    return {
        "site": site,
        "n": held_out.size,
        "model": name,
        "lpd": lpd,
        "lpd_mcse": lpd_mcse,
        "coverage_95": float(coverage["coverage"].iloc[0]),
        "observed_mean": float(held_out.mean()),
        "mean_lower": float(lower),
        "mean_upper": float(upper),
        "divergences": divergences,
        "failures": "; ".join(failures) or "none",
        "passed": not failures,
    }


def comparison(folds: pd.DataFrame) -> pd.DataFrame:
    """Per model: elpd_logo, the sum of its sites' lpd; its standard error across sites; the difference
    to the best model (highest elpd_logo) and that difference's standard error across sites; the
    Monte Carlo error of elpd_logo; and how many folds failed the convergence gate. Best model first."""
    lpd = folds.pivot(index="site", columns="model", values="lpd")
    sites = len(lpd)
    best = lpd.sum().idxmax()
    rows = []
    for name in lpd.columns:
        diff = lpd[name] - lpd[best]
        model_folds = folds[folds["model"] == name]
        rows.append(
            {
                "model": name,
                "sites": sites,
                "elpd_logo": float(lpd[name].sum()),
                "se": float(np.sqrt(sites * lpd[name].var(ddof=1))) if sites > 1 else float("nan"),
                "elpd_diff": float(diff.sum()),
                "diff_se": float(np.sqrt(sites * diff.var(ddof=1))) if sites > 1 else float("nan"),
                "mcse": float(np.sqrt((model_folds["lpd_mcse"] ** 2).sum())),
                "failed_folds": int((~model_folds["passed"].astype(bool)).sum()),
            }
        )
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS).sort_values("elpd_logo", ascending=False, ignore_index=True)


def prior_warnings(predictive: pd.DataFrame, sensitivity: pd.DataFrame, outcome: str) -> list[str]:
    """One line per model whose priors disagree with the data."""
    lines = [
        f"{row.model}: only {row.data_inside_99:.0%} of the observed {outcome} lie inside the central 99% of its "
        f"prior predictive distribution ({row.q01:.4g} to {row.q99:.4g}); its priors do not fit the data's scale"
        for row in predictive[predictive["conflict"].astype(str).str.lower() == "true"].itertuples()
    ]
    flagged = sensitivity[sensitivity["diagnosis"].str.startswith("potential")]  # psense_summary's problems
    for (model, diagnosis), rows in flagged.groupby(["model", "diagnosis"], sort=False):
        shown = ", ".join(rows["parameter"][:5]) + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")
        failed = "" if str(rows["fit_passed"].iloc[0]).lower() == "true" else "; its fit FAILED the convergence gate"
        lines.append(f"{model}: {diagnosis} for {shown} (power-scaling sensitivity above 0.05{failed})")
    return lines
