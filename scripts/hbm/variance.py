"""The split of variance into between- and within-site parts, draw by draw."""

import xarray as xr


def variance_draws(posterior: xr.Dataset) -> dict[str, xr.DataArray]:
    """Per-draw between- and within-site variances, their shares, and the ICC (= between share)."""
    between = posterior["between_variability"] ** 2
    within = posterior["within_variability"] ** 2
    icc = between / (between + within)
    return {
        "between_variance": between,
        "within_variance": within,
        "between_share": icc,
        "within_share": 1 - icc,
        "icc": icc,
    }
