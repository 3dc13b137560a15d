"""Model criticism: each site predicted as a new site by the models fitted without it (leave one
site out), and the comparison of models by it."""

from __future__ import annotations

import logging

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
    "scored_by",
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
COMPARISON_COLUMNS = [
    "model",
    "scored_by",
    "sites",
    "rows",
    "elpd_logo",
    "se",
    "elpd_diff",
    "diff_se",
    "mcse",
    "failed_folds",
]


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
    from hbm import sampling

    spec = config["models"][name]
    settings = sampling_settings(config, name)
    parameterization = models.parameterization_of(name, spec)
    model = models.build(name, rest, spec["priors"], parameterization)
    rng = io.rng_for(settings["seed"], selection, "leave_one_site_out", site, name)
    tree, posterior, drawn_after = sampling.posterior_of(model, name, rest, spec, parameterization, settings, 1, rng)
    divergences = int(tree["sample_stats"]["diverging"].sum())
    failures = sampling.gate_failures(posterior.drop_vars(drawn_after), divergences, config["convergence"])
    log_p = pointwise.new_site_log_density(posterior, name, held_out)
    draws = pointwise.new_site_predictive(
        posterior, name, np.arange(held_out.size), rng, config["storage"]["max_values"]
    )
    return fold_row(name, site, held_out, log_p, draws["y_est"].values, divergences, failures)


def formula_fold(name: str, source, rows: pd.DataFrame, site: str, selection: str, config: dict) -> dict:
    """`fold` for formula `name` (config["formulas"][name], one with `formulas.has_new_site_density`):
    fitted with bambi to `rows` (obs_id, group, outcome) without `site`, the columns the formula uses
    besides read from the data file `source`. The fixed part of each held-out row's mean is bambi's
    prediction without the effects the site's rows share (`formulas.new_site`: the site's intercept
    and slopes, and those of levels of other groupings the fit never saw); those effects, each ~ N(0,
    its term's sigma), are integrated out of the density (`formulas.new_site_log_density`) and drawn
    once per posterior draw for the predictions (`formulas.new_site_draws`)."""
    from hbm import formulas, sampling

    outcome, group, spec = config["outcome"], config["group"], config["formulas"][name]
    frame, dropped = formulas.frame_for(source, rows, spec["formula"], outcome, group, config.get("reading"))
    for column, count in dropped.items():
        logging.getLogger("hbm").info(
            "%s: dropped %d rows with a missing %r, a column of the formula", name, count, column
        )
    at_site = frame[group] == site
    rest, held = frame[~at_site].reset_index(drop=True), frame[at_site].reset_index(drop=True)
    model = formulas.build(spec, rest, config["formula_priors"], group)
    sampled = sampling.sample(model.backend.model, spec["sampling"], 1, formulas.stored_variables(model))
    posterior = formulas.reported(sampled["posterior"].to_dataset())
    divergences = int(sampled["sample_stats"]["diverging"].sum())
    failures = sampling.gate_failures(posterior, divergences, config["convergence"])
    y = held[outcome].to_numpy(float)
    if not y.size:
        return fold_row(name, site, y, None, None, divergences, failures)
    thinned, _ = pointwise.thinned(posterior, len(held), config["storage"]["max_values"])
    means, design, scales = formulas.new_site(model, thinned, held, group)
    log_p = formulas.new_site_log_density(spec, y - means, design, scales, thinned)
    rng = io.rng_for(spec["sampling"]["seed"], selection, "leave_one_site_out", site, name)
    draws = formulas.new_site_draws(spec, means, design, scales, thinned, rng)
    return fold_row(name, site, y, log_p, draws, divergences, failures)


def fold_row(name: str, site: str, y: np.ndarray, log_p, draws: np.ndarray, divergences: int, failures) -> dict:
    """A fold's row of the table: `log_p` the joint log density of the site's rows `y` per posterior draw,
    `draws` (chain, draw, row) predictions of those rows as a new site's."""
    from hbm import tables

    verdict = {"divergences": divergences, "failures": "; ".join(failures) or "none", "passed": not failures}
    if not y.size:  # a formula's columns missing in every row of the site: nothing to predict, p = 1
        nothing = dict.fromkeys(["coverage_95", "observed_mean", "mean_lower", "mean_upper"], float("nan"))
        return {
            "site": site,
            "n": 0,
            "model": name,
            "scored_by": name,
            "lpd": 0.0,
            "lpd_mcse": 0.0,
            **nothing,
            **verdict,
        }
    lpd, lpd_mcse = lpd_with_mcse(log_p)
    obs_id = np.arange(y.size)
    predicted = xr.Dataset({"y_est": (("chain", "draw", "obs_id"), draws)}, coords={"obs_id": obs_id})
    coverage = tables.new_site_coverage(site, io.draws_with_observed("predictions", predicted, y, obs_id, {}))
    lower, upper = tables.hdi_bounds(predicted["y_est"].mean("obs_id"), 0.95)
    return {
        "site": site,
        "n": y.size,
        "model": name,
        "scored_by": name,
        "lpd": lpd,
        "lpd_mcse": lpd_mcse,
        "coverage_95": float(coverage["coverage"].iloc[0]),
        "observed_mean": float(y.mean()),
        "mean_lower": float(lower),
        "mean_upper": float(upper),
        **verdict,
    }


def comparison(folds: pd.DataFrame) -> pd.DataFrame:
    """Per model: whose fits scored it (`scored_by`: its own, or for a formula that is a model, the
    model's); elpd_logo, the sum of its sites' lpd; its standard error across sites; the difference
    to the best model (highest elpd_logo) and that difference's standard error across sites; the
    Monte Carlo error of elpd_logo; and how many folds failed the convergence gate. Only models scored
    on the same rows are compared: a formula that drops rows with missing values in its columns has
    fewer (`rows`) and no difference. Best model first, then those on fewer rows."""
    lpd = folds.pivot(index="site", columns="model", values="lpd")
    rows = folds.groupby("model")["n"].sum()
    comparable = rows[rows == rows.max()].index
    sites = len(lpd)
    best = lpd[comparable].sum().idxmax()
    table = []
    for name in lpd.columns:
        diff = lpd[name] - lpd[best] if name in comparable else pd.Series(np.nan, index=lpd.index)
        model_folds = folds[folds["model"] == name]
        table.append(
            {
                "model": name,
                "scored_by": model_folds["scored_by"].iloc[0],
                "sites": sites,
                "rows": int(rows[name]),
                "elpd_logo": float(lpd[name].sum()),
                "se": float(np.sqrt(sites * lpd[name].var(ddof=1))) if sites > 1 else float("nan"),
                "elpd_diff": float(diff.sum(skipna=False)),
                "diff_se": float(np.sqrt(sites * diff.var(ddof=1))) if sites > 1 else float("nan"),
                "mcse": float(np.sqrt((model_folds["lpd_mcse"] ** 2).sum())),
                "failed_folds": int((~model_folds["passed"].astype(bool)).sum()),
            }
        )
    order = pd.DataFrame(table, columns=COMPARISON_COLUMNS)
    order["_fewer_rows"] = ~order["model"].isin(comparable)
    return order.sort_values(["_fewer_rows", "elpd_logo"], ascending=[True, False], ignore_index=True).drop(
        columns="_fewer_rows"
    )


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
