"""PSIS-LOO with its reliability: Pareto k by band, and an exact remedy where PSIS cannot be trusted.

Each site mean is integrated out analytically before importance sampling (`pointwise.loo_log_likelihood`),
which leaves far smaller Pareto k for small sites. Where k still exceeds ArviZ's threshold under
complete or no pooling with a Normal prior on mu, the leave-one-out density is computed exactly
instead: given the sd the mean integrates out in closed form, so p(y_i | y_-i) is a ratio of two
one-dimensional integrals, done by quadrature. Rows left above the threshold (partial pooling, other
priors) are counted and the result is marked unreliable.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats import compare, loo
from scipy.special import logsumexp

from hbm import models, pointwise
from hbm.data import Grouped
from hbm.priors import distribution

GRID = 4001  # points of the log-sd grid for the exact integral


def model_loo(tree: xr.DataTree, name: str, data: Grouped, priors: dict, level: str, keep=None):
    """ArviZ's ELPD data of one model, remedied where it can be, and a row of reliability facts.
    `data`: the rows the model was fitted to; `keep`: the rows (obs_id), or sites where the
    log-likelihood is stored per site, to compare on (all of them if None)."""
    posterior = tree["posterior"].to_dataset()
    labels = data.obs_id if level == "rows" else np.asarray(data.sites)
    integrated = pointwise.loo_log_likelihood(posterior, name, data, priors, level)
    integrated, index = _kept(integrated.assign_coords({_observations(integrated): labels}), keep)
    result = loo(xr.DataTree.from_dict({"posterior": posterior, "log_likelihood": integrated}))
    k = result.pareto_k.values
    bad = np.flatnonzero(~(k <= result.good_k))
    facts = {
        "model": name,
        "left_out": "one row" if level == "rows" else "one site",
        "site_means_integrated": pointwise.integrates_site_means(name, priors),
        "k_threshold": result.good_k,
        "k_good": int((k <= result.good_k).sum()),
        "k_bad": int(((k > result.good_k) & (k <= 1)).sum()),
        "k_very_bad": int((k > 1).sum()),
        "exact": 0,
        "compared_on": _compared_on(len(index), len(labels), "rows" if level == "rows" else "sites"),
    }
    single_normal = models.get(name).single_normal
    if len(bad) and single_normal and priors["mu"]["dist"] == "Normal":
        exact = _exact_single_normal(data, priors, index[bad], level, pooled=single_normal == "pooled")
        _replace(result, bad, exact)
        facts["exact"] = len(bad)
    facts["unreliable"] = len(bad) - facts["exact"]
    facts["remedy"] = _remedy(facts)
    return result, facts


def formula_loo(tree: xr.DataTree, name: str, integrated=None, keep=None):
    """ArviZ's PSIS-LOO of a formula model (one row left out at a time), and its row of reliability facts.
    `integrated`, where the formula has one: positions -> those rows' log-likelihoods with their site's
    effects integrated out (chain, draw, row); rows with k above the threshold are then importance
    sampled again with them, as the models' rows are from the start. `keep`: the rows (obs_id) to
    compare on (all if None)."""
    posterior = tree["posterior"]
    log_likelihood = tree["log_likelihood"].to_dataset()
    kept, index = _kept(log_likelihood, keep)
    result = loo(xr.DataTree.from_dict({"posterior": posterior, "log_likelihood": kept}))
    k = result.pareto_k.values
    bad = np.flatnonzero(~(k <= result.good_k))
    again = 0
    if len(bad) and integrated is not None:
        rows = xr.Dataset(
            {"y_est": (("chain", "draw", "obs_id"), integrated(index[bad]))},
            coords={"obs_id": result.pareto_k["obs_id"].values[bad]},
        )
        second = loo(xr.DataTree.from_dict({"posterior": posterior, "log_likelihood": rows}))
        _replace(result, bad, second.elpd_i.values, second.pareto_k.values)
        again = len(bad)
        bad = bad[~(second.pareto_k.values <= result.good_k)]
    facts = {
        "model": name,
        "left_out": "one row",
        "site_means_integrated": False,
        "k_threshold": result.good_k,
        "k_good": int((k <= result.good_k).sum()),
        "k_bad": int(((k > result.good_k) & (k <= 1)).sum()),
        "k_very_bad": int((k > 1).sum()),
        "exact": 0,
        "compared_on": _compared_on(len(index), log_likelihood.sizes["obs_id"], "rows"),
        "unreliable": len(bad),
    }
    facts["remedy"] = _remedy(facts, again)
    return result, facts


def _observations(log_likelihood: xr.Dataset) -> str:
    """The dimension of a log-likelihood's rows or sites."""
    (dim,) = set(log_likelihood["y_est"].dims) - {"chain", "draw"}
    return dim


def _kept(log_likelihood: xr.Dataset, keep) -> tuple[xr.Dataset, np.ndarray]:
    """The log-likelihood of the observations `keep` (labels of its rows or sites; all if None), and
    their positions among all. PSIS-LOO of an observation uses its own draws alone, so this is the
    LOO of those observations."""
    dim = _observations(log_likelihood)
    labels = log_likelihood[dim].values
    index = np.arange(labels.size) if keep is None else np.flatnonzero(pd.Index(labels).isin(keep))
    return (log_likelihood if keep is None else log_likelihood.isel({dim: index})), index


def _compared_on(kept: int, total: int, unit: str) -> str:
    """What a model's ELPD sums over: all its rows (or sites), or those every model was fitted to."""
    if kept == total:
        return f"all {total:,} {unit}"
    return f"{kept:,} of its {total:,} {unit}: those every model was fitted to"


def comparison(results: dict, facts: list[dict]) -> pd.DataFrame:
    """ArviZ's comparison, best first, beside each model's Pareto k bands and remedy."""
    table = compare(results, round_to="none").rename_axis("model").reset_index()
    table = table.merge(pd.DataFrame(facts), on="model")
    table["reliable"] = table["unreliable"] == 0
    return table


def _remedy(facts, again: int = 0) -> str:
    steps = ["site means integrated out before PSIS"] if facts["site_means_integrated"] else ["PSIS"]
    if again:
        steps.append(
            f"{again} with k above {facts['k_threshold']:.2f} sampled again with the site's effects integrated out"
        )
    if facts["exact"]:
        steps.append(f"{facts['exact']} with k above {facts['k_threshold']:.2f} computed exactly by quadrature")
    if facts["unreliable"]:
        steps.append(f"{facts['unreliable']} with k above {facts['k_threshold']:.2f} left: NOT reliable")
    return "; ".join(steps)


def _replace(result, positions, better, k_new=0.0) -> None:
    """Put better pointwise values into ArviZ's result and update its totals; `k_new`: their Pareto k
    (0 where they are exact: no importance sampling left)."""
    before = result.elpd
    values = result.elpd_i.values.copy()
    values[positions] = better
    result.elpd_i = result.elpd_i.copy(data=values)
    result.elpd = float(values.sum())
    result.se = float(np.sqrt(values.size * values.var(ddof=1)))  # as ArviZ's `_summary`
    result.p = result.p + before - result.elpd
    k = result.pareto_k.values.copy()
    k[positions] = k_new
    result.pareto_k = result.pareto_k.copy(data=k)
    result.warning = bool((k > result.good_k).any())


def _exact_single_normal(data: Grouped, priors: dict, positions, level: str, pooled: bool) -> np.ndarray:
    """Exact log p(left-out rows | the rest) where the rows share one Normal with mean ~ N(m0, s0) and
    sd ~ its prior: every row (complete pooling, `pooled`) or each site's rows (no pooling, where
    sites are independent). The mean integrates out in closed form, which leaves the log of the ratio
    of two one-dimensional integrals over the sd, on one log grid."""
    m0, s0 = float(priors["mu"]["mu"]), float(priors["mu"]["sigma"])
    scale = float(np.std(data.y)) + s0
    log_sd = np.linspace(math.log(scale * 1e-6), math.log(scale * 1e3), GRID)
    sd = np.exp(log_sd)
    weight = distribution(priors["sigma"]).logpdf(sd) + log_sd  # prior density on the log-sd grid

    def log_marginal(n, ybar, ss):  # no rows: the prior's own mass on the grid
        return logsumexp(weight + (pointwise.site_log_evidence(sd, n, ybar, ss, m0, s0) if n else 0.0))

    if pooled:
        n_all, ybar_all = float(data.n.sum()), float(data.y.mean())
        ss_all = float(((data.y - ybar_all) ** 2).sum())
    out = []
    for position in positions:
        if level == "sites":
            part = data.n[position], data.ybar[position], data.ss[position]
        else:
            part = 1.0, data.y[position], 0.0
        j = position if level == "sites" else data.site_idx[position]
        whole = (n_all, ybar_all, ss_all) if pooled else (data.n[j], data.ybar[j], data.ss[j])
        out.append(log_marginal(*whole) - log_marginal(*_without(whole, part)))
    return np.array(out)


def _without(whole, part):
    """(n, mean, sum of squared deviations) of a set of rows after removing a subset of them."""
    (n, ybar, ss), (k, kbar, kss) = whole, part
    rest = n - k
    if rest <= 0:
        return 0.0, 0.0, 0.0
    rest_bar = (n * ybar - k * kbar) / rest
    return rest, rest_bar, max(ss - kss - rest * k / n * (rest_bar - kbar) ** 2, 0.0)
