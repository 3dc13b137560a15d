"""The tables' vectorised HDI equals ArviZ's, for any number of other dimensions, whole or in blocks."""

import numpy as np
import pytest
import xarray as xr
from arviz_stats import hdi

from hbm.tables import hdi_bounds


@pytest.mark.parametrize("shape", [(4, 250), (2, 300, 7), (3, 101, 4, 5)])
@pytest.mark.parametrize("prob", [0.5, 0.94, 0.95])
@pytest.mark.parametrize("block", [65536, 3])
def test_vectorised_hdi_equals_arviz(shape, prob, block):
    rng = np.random.default_rng(len(shape))
    dims = ["chain", "draw", "obs_id", "site"][: len(shape)]
    draws = xr.DataArray(rng.gamma(2.0, 1.5, shape).round(2), dims=dims)  # rounding makes ties
    lower, upper = hdi_bounds(draws, prob, block)  # block 3: sorted a few columns at a time
    expected = hdi(draws, prob=prob, dim=["chain", "draw"])
    assert np.array_equal(lower, expected.sel(ci_bound="lower").values)
    assert np.array_equal(upper, expected.sel(ci_bound="upper").values)
