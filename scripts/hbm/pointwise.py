"""Per-row quantities computed from posterior draws after sampling: log-likelihood and predictions."""

from __future__ import annotations

import numpy as np
import xarray as xr

from hbm.data import Grouped

LOG_2PI = float(np.log(2 * np.pi))


def row_parameters(posterior, name: str, data: Grouped) -> tuple[np.ndarray, np.ndarray]:
    """Per-draw, per-row mean and sd of y under model `name`: arrays (chain, draw, obs_id)."""
    mu = posterior["mu"].values
    if name == "complete_pooling":
        sigma = posterior["sigma"].values
        return np.broadcast_to(mu[..., None], mu.shape + (len(data.y),)), np.broadcast_to(
            sigma[..., None], sigma.shape + (len(data.y),)
        )
    if name == "no_pooling":
        return mu[..., data.site_idx], posterior["sigma"].values[..., data.site_idx]
    within = posterior["within_variability"].values[..., None]
    return mu[..., data.site_idx], np.broadcast_to(within, mu.shape[:2] + (len(data.y),))


def pointwise_level(config: dict, n_draws: int, n_rows: int) -> str:
    """'rows' or 'sites': the level at which the log-likelihood is stored (config `storage`)."""
    choice = config["storage"]["pointwise"]
    if choice != "auto":
        return choice
    return "rows" if n_draws * n_rows <= config["storage"]["max_values"] else "sites"


def log_likelihood(posterior: xr.Dataset, name: str, data: Grouped, level: str) -> xr.Dataset:
    """log p(y_i | parameters) per draw, per row (`obs_id`) or summed within each `site`."""
    if level == "rows":
        mean, sd = row_parameters(posterior, name, data)
        values = -0.5 * LOG_2PI - np.log(sd) - (data.y - mean) ** 2 / (2 * sd**2)
        dims = ("chain", "draw", "obs_id")
    else:
        site_mean, site_sd = _site_parameters(posterior, name, data)
        values = -data.n * (0.5 * LOG_2PI + np.log(site_sd)) - (data.ss + data.n * (data.ybar - site_mean) ** 2) / (
            2 * site_sd**2
        )
        dims = ("chain", "draw", "site")
    return xr.Dataset({"y_est": (dims, values)}, coords=posterior.coords)


def _site_parameters(posterior, name, data):
    mu = posterior["mu"].values
    if name == "complete_pooling":
        return mu[..., None], posterior["sigma"].values[..., None]
    sigma = posterior["sigma"].values if name == "no_pooling" else posterior["within_variability"].values[..., None]
    return mu, sigma


def posterior_predictive(posterior: xr.Dataset, name: str, data: Grouped, rng, max_values: int) -> xr.Dataset:
    """Replicated y per draw and row; draws are thinned evenly when chains x draws x rows > max_values."""
    step = max(1, int(np.ceil(posterior.sizes["chain"] * posterior.sizes["draw"] * len(data.y) / max_values)))
    posterior = posterior.isel(draw=slice(None, None, step))
    mean, sd = row_parameters(posterior, name, data)
    values = mean + sd * rng.standard_normal(mean.shape)
    return (
        xr.Dataset({"y_est": (("chain", "draw", "obs_id"), values)}, coords=posterior.coords)
        .assign_coords(obs_id=data.obs_id)
        .assign_attrs(thinning=step)
    )


def new_site_predictive(posterior: xr.Dataset, obs_id: np.ndarray, rng) -> xr.Dataset:
    """Predictive draws for an unseen site: a new site mean from the population, then its rows."""
    hyper_mu = posterior["hyper_mu"].values
    between = posterior["between_variability"].values
    within = posterior["within_variability"].values
    new_mu = hyper_mu + between * rng.standard_normal(hyper_mu.shape)
    y = new_mu[..., None] + within[..., None] * rng.standard_normal(hyper_mu.shape + (len(obs_id),))
    return xr.Dataset(
        {"new_mu": (("chain", "draw"), new_mu), "y_est": (("chain", "draw", "obs_id"), y)},
        coords={"chain": posterior["chain"], "draw": posterior["draw"], "obs_id": obs_id},
    )
