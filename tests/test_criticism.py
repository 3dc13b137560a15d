"""Leave one site out: each site's rows predicted as a new site by the models fitted without it."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import multivariate_normal

from exact import partial_pooling_new_site_lpd
from hbm import criticism, io, pointwise
from helpers import FIRST5, load_config

TOLERANCE_MCSE = 4  # a correct estimator fails one comparison with probability about 6e-5


def test_lpd_of_a_known_mean_is_within_its_mcse():
    """log p ~ N(m, s) gives E[p] = exp(m + s²/2): the estimate lies within 4 of its MCSE of it."""
    rng = np.random.default_rng(3)
    m, s = -40.0, 0.8
    lpd, error = criticism.lpd_with_mcse(m + s * rng.standard_normal((4, 1000)))
    assert abs(lpd - (m + s**2 / 2)) <= TOLERANCE_MCSE * error
    assert 0.005 < error < 0.05  # sd(p)/mean(p)/sqrt(4000) is 0.016 for these draws


def test_joint_density_of_a_new_site_is_compound_symmetric():
    """Rows sharing an unknown site mean: the multivariate Normal with covariance w² I + b² 11ᵀ."""
    y = np.array([31.0, 44.0, 38.5, 40.0])
    posterior = (
        pd.DataFrame({"hyper_mu": [39.0, 41.5], "between_variability": [1.5, 3.0], "within_variability": [6.0, 7.5]})
        .to_xarray()
        .rename(index="draw")
        .expand_dims(chain=1)
    )
    computed = pointwise.new_site_log_density(posterior, "partial_pooling", y)
    for draw in range(2):
        h, b, w = (
            float(posterior[name][0, draw]) for name in ("hyper_mu", "between_variability", "within_variability")
        )
        covariance = w**2 * np.eye(y.size) + b**2 * np.ones((y.size, y.size))
        assert computed[0, draw] == pytest.approx(multivariate_normal(np.full(y.size, h), covariance).logpdf(y))


@pytest.fixture(scope="module")
def folds(first5_csv):
    data = io.read_grouped(first5_csv[0], "scontrol", "Site")
    config = load_config("config/config.yaml")
    rows = []
    for site in FIRST5:
        rest, held_out = data.without(site)
        rows.append(criticism.fold("partial_pooling", rest, held_out, site, "first5", config))
    return data, pd.DataFrame(rows)


def test_leave_one_site_out_is_exact(folds):
    """Partial pooling on the lecture's five sites, each left out in turn: the joint lpd of its rows
    agrees with numerical integration against the exact posterior of the other four."""
    data, table = folds
    groups = {site: data.y[data.site_idx == i] for i, site in enumerate(data.sites)}
    for row in table.itertuples():
        others = [rows for site, rows in groups.items() if site != row.site]
        exact = partial_pooling_new_site_lpd(others, groups[row.site], m0=40, s0=20, rate_within=1, rate_between=1)
        assert row.passed, row.failures
        assert abs(row.lpd - exact) <= TOLERANCE_MCSE * row.lpd_mcse, (
            f"{row.site}: lpd {row.lpd:.4f}, exact {exact:.4f}, MCSE {row.lpd_mcse:.4f}"
        )


def test_folds_report_coverage_and_the_interval_of_the_mean(folds):
    data, table = folds
    assert list(table["n"]) == [int(n) for n in data.n]
    assert table["coverage_95"].between(0.5, 1).all()
    assert (table["mean_lower"] < table["mean_upper"]).all()


def test_comparison_sums_folds_and_ranks_models():
    folds = pd.DataFrame(
        {
            "site": ["a", "b", "c"] * 2,
            "model": ["complete_pooling"] * 3 + ["partial_pooling"] * 3,
            "lpd": [-10.0, -20.0, -30.0, -9.0, -21.0, -27.0],
            "lpd_mcse": [0.1, 0.2, 0.2, 0.1, 0.1, 0.1],
            "passed": [True, True, True, True, False, True],
        }
    )
    table = criticism.comparison(folds).set_index("model")
    assert list(table.index) == ["partial_pooling", "complete_pooling"]
    assert table.loc["partial_pooling", "elpd_logo"] == -57.0
    assert table.loc["partial_pooling", "elpd_diff"] == 0.0
    assert table.loc["complete_pooling", "elpd_diff"] == -3.0
    assert table.loc["complete_pooling", "diff_se"] == pytest.approx(np.sqrt(3 * np.var([-1.0, 1.0, -3.0], ddof=1)))
    assert table.loc["complete_pooling", "se"] == pytest.approx(np.sqrt(3 * 100.0))
    assert table.loc["complete_pooling", "mcse"] == pytest.approx(0.3)
    assert table.loc["partial_pooling", "failed_folds"] == 1
