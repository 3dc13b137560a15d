"""LOO-PIT calibration: a model whose predictive distribution matches the data's is not flagged; one
whose predictive sd is half the data's is."""

import numpy as np
import pytest
import xarray as xr

from calibration import loo_pit, summary

ROWS, DRAWS = 400, 1000


def fitted(predictive_sd: float) -> tuple[xr.DataTree, xr.DataTree]:
    """y ~ N(0, 1); posterior of the mean given a known sd (conjugate, flat prior), predictions and
    log-likelihood with sd `predictive_sd`."""
    rng = np.random.default_rng(11)
    y = rng.standard_normal(ROWS)
    mu = y.mean() + rng.standard_normal((2, DRAWS)) * predictive_sd / np.sqrt(ROWS)
    coords = {"chain": [0, 1], "draw": np.arange(DRAWS), "obs_id": np.arange(ROWS)}
    log_lik = -0.5 * np.log(2 * np.pi * predictive_sd**2) - (y - mu[..., None]) ** 2 / (2 * predictive_sd**2)
    replicated = mu[..., None] + predictive_sd * rng.standard_normal((2, DRAWS, ROWS))
    tree = xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset({"mu": (("chain", "draw"), mu)}, coords=coords),
            "log_likelihood": xr.Dataset({"y_est": (("chain", "draw", "obs_id"), log_lik)}, coords=coords),
            "observed_data": xr.Dataset({"y_est": ("obs_id", y)}, coords={"obs_id": coords["obs_id"]}),
        }
    )
    tree.attrs.update(pointwise_level="rows", convergence_failures="[]")  # as a fit records them
    predictive = xr.DataTree.from_dict(
        {"posterior_predictive": xr.Dataset({"y_est": (("chain", "draw", "obs_id"), replicated)}, coords=coords)}
    )
    return tree, predictive


def test_a_calibrated_model_is_not_flagged():
    row = summary("m", *loo_pit(*fitted(1.0)))
    assert row["uniformity_p"] > 0.01
    assert row["pit_mean"] == pytest.approx(0.5, abs=0.05)  # sd of a mean of 400 uniforms: 0.014
    assert row["outside_95%"] == pytest.approx(0.05, abs=0.035)  # binomial sd 0.011


def test_too_narrow_predictions_are_flagged():
    row = summary("m", *loo_pit(*fitted(0.5)))
    assert row["uniformity_p"] < 0.01
    assert row["outside_95%"] == pytest.approx(0.327, abs=0.094)  # P(|N(0, 1)| > 0.98); 4 binomial sds


def test_thinned_predictions_are_not_tested():
    tree, predictive = fitted(1.0)
    predictive.attrs["thinning"] = "2"
    row = summary("m", *loo_pit(tree, predictive))
    assert "thinned" in row["note"] and "uniformity_p" not in row


def test_a_model_that_failed_the_gate_is_tested_and_marked():
    tree, predictive = fitted(1.0)
    tree.attrs["convergence_failures"] = '["sigma: ess_bulk 12 < 400"]'
    row = summary("m", *loo_pit(tree, predictive))
    assert "FAILED the convergence gate" in row["note"] and row["uniformity_p"] > 0.01
