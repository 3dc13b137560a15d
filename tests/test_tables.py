"""The tables' vectorised HDI equals ArviZ's, for any number of other dimensions, whole or in blocks,
and for a new site's rows pooled."""

import numpy as np
import pytest
import xarray as xr
from arviz_stats import hdi

from hbm.tables import hdi_bounds, new_site_coverage


@pytest.mark.parametrize("shape", [(4, 250), (2, 300, 7), (3, 101, 4, 5)])
@pytest.mark.parametrize("prob", [0.5, 0.94, 0.95])
@pytest.mark.parametrize("budget", [2**22, 10])
def test_vectorised_hdi_equals_arviz(shape, prob, budget):
    rng = np.random.default_rng(len(shape))
    dims = ["chain", "draw", "obs_id", "site"][: len(shape)]
    draws = xr.DataArray(rng.gamma(2.0, 1.5, shape).round(2), dims=dims)  # rounding makes ties
    lower, upper = hdi_bounds(draws, prob, budget)  # budget 10: one column, ten rows' widths at a time
    expected = hdi(draws, prob=prob, dim=["chain", "draw"])
    assert np.array_equal(lower, expected.sel(ci_bound="lower").values)
    assert np.array_equal(upper, expected.sel(ci_bound="upper").values)


def test_new_site_coverage_pools_every_rows_draws_as_arviz():
    rng = np.random.default_rng(3)
    draws = xr.DataArray(rng.normal(0, 1, (2, 300, 9)).round(2), dims=["chain", "draw", "obs_id"])
    observed = xr.DataArray(rng.normal(0, 1.3, 9), dims=["obs_id"])
    tree = xr.DataTree.from_dict(
        {"predictions": xr.Dataset({"y_est": draws}), "observed_data": xr.Dataset({"y_est": observed})}
    )
    row = new_site_coverage("s", tree, 0.9).iloc[0]
    expected = hdi(draws.stack(sample=["chain", "draw", "obs_id"]), prob=0.9, dim="sample")
    assert (row["hdi_lower"], row["hdi_upper"]) == tuple(expected.values)
    assert row["coverage"] == ((observed >= row["hdi_lower"]) & (observed <= row["hdi_upper"])).mean()
