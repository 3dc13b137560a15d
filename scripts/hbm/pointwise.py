"""Per-row quantities computed from posterior draws after sampling: log-likelihood and predictions."""

from __future__ import annotations

import numpy as np
import xarray as xr

from hbm import models
from hbm.data import Grouped

LOG_2PI = float(np.log(2 * np.pi))


def site_parameters(posterior, name: str, data: Grouped) -> tuple[np.ndarray, np.ndarray]:
    """Per-draw, per-site mean and sd of y under model `name`: arrays (chain, draw, site)."""
    shape = (posterior.sizes["chain"], posterior.sizes["draw"], len(data.sites))
    return tuple(np.broadcast_to(values, shape) for values in models.get(name).site_parameters(posterior))


def row_parameters(posterior, name: str, data: Grouped) -> tuple[np.ndarray, np.ndarray]:
    """Per-draw, per-row mean and sd of y under model `name`: arrays (chain, draw, obs_id)."""
    mean, sd = site_parameters(posterior, name, data)
    return mean[..., data.site_idx], sd[..., data.site_idx]


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
        site_mean, site_sd = site_parameters(posterior, name, data)
        values = -data.n * (0.5 * LOG_2PI + np.log(site_sd)) - (data.ss + data.n * (data.ybar - site_mean) ** 2) / (
            2 * site_sd**2
        )
        dims = ("chain", "draw", "site")
    return xr.Dataset({"y_est": (dims, values)}, coords=posterior.coords)


def posterior_predictive(posterior: xr.Dataset, name: str, data: Grouped, rng, max_values: int) -> xr.Dataset:
    """Replicated y per draw and row; draws are thinned evenly when chains x draws x rows > max_values."""
    posterior, step = thinned(posterior, len(data.y), max_values)
    mean, sd = site_parameters(posterior, name, data)
    values = rng.standard_normal((*mean.shape[:2], len(data.y)))
    for chain in range(values.shape[0]):  # mean + sd * values in place, one chain's rows at a time
        values[chain] *= sd[chain][..., data.site_idx]
        values[chain] += mean[chain][..., data.site_idx]
    return (
        xr.Dataset({"y_est": (("chain", "draw", "obs_id"), values)}, coords=posterior.coords)
        .assign_coords(obs_id=data.obs_id)
        .assign_attrs(thinning=step)
    )


def thinned(posterior: xr.Dataset, rows: int, max_values: int) -> tuple[xr.Dataset, int]:
    """The posterior thinned evenly so that draws x `rows` stays within `max_values`, and the step."""
    step = max(1, int(np.ceil(posterior.sizes["chain"] * posterior.sizes["draw"] * rows / max_values)))
    return posterior.isel(draw=slice(None, None, step)), step


def new_site_predictive(posterior: xr.Dataset, name: str, obs_id: np.ndarray, rng, max_values: int) -> xr.Dataset:
    """Predictive draws for an unseen site under model `name`: a new site mean from the population,
    then its rows; draws are thinned evenly when draws x rows > max_values (the step is in attribute
    `thinning`)."""
    posterior, step = thinned(posterior, len(obs_id), max_values)
    mean, between, within = models.get(name).new_site(posterior)
    new_mu = mean + between * rng.standard_normal(mean.shape)
    y = new_mu[..., None] + np.asarray(within)[..., None] * rng.standard_normal(mean.shape + (len(obs_id),))
    return xr.Dataset(
        {"new_mu": (("chain", "draw"), new_mu), "y_est": (("chain", "draw", "obs_id"), y)},
        coords={"chain": posterior["chain"], "draw": posterior["draw"], "obs_id": obs_id},
        attrs={"thinning": step},
    )


def new_site_log_density(posterior: xr.Dataset, name: str, y: np.ndarray) -> np.ndarray:
    """log p(y | parameters) per draw (chain, draw) for all rows `y` of one unseen site together under
    model `name`: every row's mean the population's, and the rows share the site's effect
    ~ N(0, between²), so they are jointly Normal with compound-symmetric covariance
    within² I + between² 11ᵀ (`grouped_normal_log_density` with one effect, Z = 1)."""
    mean, between, within = models.get(name).new_site(posterior)
    y = np.asarray(y, float)
    residuals = y - np.asarray(mean)[..., None]
    return grouped_normal_log_density(residuals, np.ones((y.size, 1)), np.asarray(between)[..., None], within)


def grouped_normal_log_density(residuals: np.ndarray, design: np.ndarray, scales, within) -> np.ndarray:
    """log density of one unseen site's rows given the parameters, per draw. The rows' `residuals`
    (..., n), the rows less their means without the site's effects, share the effects
    b ~ N(0, diag(`scales`²)) (scales (..., k)) through their `design` Z (n, k), so they are jointly
    Normal with covariance within² I + Z diag(scales²) Zᵀ. By the matrix determinant lemma and
    Woodbury's identity, with M = I + S ZᵀZ S / within² and u = S Zᵀ r (S = diag(scales)):
    log p = -½ (n log 2π + n log within² + log det M + r·r / within² - |L⁻¹u|² / within⁴),
    L the Cholesky factor of M."""
    r = np.asarray(residuals, float)
    z = np.asarray(design, float)
    s = np.asarray(scales, float)
    w2 = np.asarray(within, float) ** 2
    n, k = z.shape
    m = np.eye(k) + s[..., :, None] * (z.T @ z) * s[..., None, :] / w2[..., None, None]
    factor = np.linalg.cholesky(m)
    v = np.linalg.solve(factor, (s * (r @ z))[..., None])[..., 0]
    log_det = n * np.log(w2) + 2 * np.log(np.diagonal(factor, axis1=-2, axis2=-1)).sum(axis=-1)
    quadratic = (r**2).sum(axis=-1) / w2 - (v**2).sum(axis=-1) / w2**2
    return -0.5 * (n * LOG_2PI + log_det + quadratic)


def student_t_site_log_density(residuals: np.ndarray, between, within, nu, nodes: int = 32) -> np.ndarray:
    """`new_site_log_density` for a Student t likelihood: each row ~ t_nu(effect + mean,
    within) given the site's effect ~ N(0, between²). There is no closed form, so the effect is
    integrated out by adaptive Gauss–Hermite quadrature: `nodes` points, re-centred on the integrand's
    mean and sd; where `2 * nodes` points do not agree within 1e-8 (an integrand with two modes: rows
    far apart under heavy tails), by the trapezoid rule on a fine grid from the prior's ±8 between to
    8 within past the farthest rows."""
    residuals = np.asarray(residuals, float)
    shape = residuals.shape[:-1]
    r = residuals.reshape(-1, residuals.shape[-1])
    tau, sigma, nu = (np.broadcast_to(np.asarray(v, float), shape).reshape(-1, 1) for v in (between, within, nu))
    out, n = np.empty(len(r)), r.shape[-1]
    for part in np.array_split(np.arange(len(r)), max(1, len(r) // 256)):
        log_h = _t_site_integrand(r[part], tau[part], sigma[part], nu[part])
        precision = n / sigma[part] ** 2 + 1 / tau[part] ** 2
        center = (n / sigma[part] ** 2) * np.median(r[part], axis=-1, keepdims=True) / precision
        scale = 1 / np.sqrt(precision)
        for _ in range(4):
            center, scale, _ = _gauss_hermite(log_h, center, scale, nodes)
        coarse = _gauss_hermite(log_h, center, scale, nodes)[2]
        fine = _gauss_hermite(log_h, center, scale, 2 * nodes)[2]
        out[part] = fine
        for i in np.flatnonzero(~(np.abs(fine - coarse) <= 1e-8)):
            one = _t_site_integrand(r[part][i : i + 1], tau[part][i], sigma[part][i], nu[part][i])
            low = min(-8 * tau[part][i, 0], r[part][i].min() - 8 * sigma[part][i, 0])
            high = max(8 * tau[part][i, 0], r[part][i].max() + 8 * sigma[part][i, 0])
            grid = np.linspace(low, high, 16_001)[None]
            out[part[i]] = _log_trapezoid(one(grid)[0], grid[0])
    return out.reshape(shape)


def _t_site_integrand(r, tau, sigma, nu):
    """log of the Student t rows' density times the Normal density of the site's effect, as a
    function of effects b (draws, points)."""
    from scipy.special import gammaln

    const = r.shape[-1] * (gammaln((nu + 1) / 2) - gammaln(nu / 2) - 0.5 * np.log(nu * np.pi) - np.log(sigma))

    def log_h(b):
        z2 = ((r[:, None, :] - b[..., None]) / sigma[..., None]) ** 2
        rows = const - ((nu + 1) / 2) * np.log1p(z2 / nu[..., None]).sum(-1)
        return rows - 0.5 * LOG_2PI - np.log(tau) - b**2 / (2 * tau**2)

    return log_h


def _gauss_hermite(log_h, center, scale, nodes: int):
    """∫ exp(log_h(b)) db by Gauss–Hermite around `center` with `scale` (draws, 1): the integrand's mean
    and sd under these points, and the log integral (draws,)."""
    from scipy.special import logsumexp

    x, w = np.polynomial.hermite.hermgauss(nodes)
    b = center + np.sqrt(2) * scale * x
    terms = np.log(w) + x**2 + np.log(np.sqrt(2) * scale) + log_h(b)
    total = logsumexp(terms, axis=-1, keepdims=True)
    weights = np.exp(terms - total)
    mean = (weights * b).sum(-1, keepdims=True)
    return mean, np.sqrt((weights * (b - mean) ** 2).sum(-1, keepdims=True)), total[:, 0]


def _log_trapezoid(log_f: np.ndarray, grid: np.ndarray) -> float:
    """log ∫ f on `grid` (uniform) by the trapezoid rule, from log f."""
    from scipy.special import logsumexp

    weights = np.full(grid.size, grid[1] - grid[0])
    weights[[0, -1]] /= 2
    return float(logsumexp(log_f, b=weights))


def loo_log_likelihood(posterior: xr.Dataset, name: str, data: Grouped, priors: dict, level: str) -> xr.Dataset:
    """What PSIS-LOO weighs, with each site mean integrated out analytically where its prior is Normal:
    per row log p(y_i | y of the rest of its site, φ), per site log p(y_j | φ), where φ are the other
    parameters (no pooling: the site's sd; partial pooling: hyper_mu and both scales). By
    p(y_i | y_-i) = ∫ p(y_i | y_-i, φ) p(φ | y_-i) dφ this estimates the same elpd as the per-row
    log-likelihood, but its importance ratios vary far less when a site has few rows (smaller Pareto k).
    Complete pooling, and no pooling with a non-Normal prior on mu, keep the per-row log-likelihood."""
    if not integrates_site_means(name, priors):
        return log_likelihood(posterior, name, data, level)
    prior_mean, prior_sd, sd = models.get(name).site_mean_prior(posterior, priors)
    if level == "sites":
        values = site_log_evidence(sd, data.n, data.ybar, data.ss, prior_mean, prior_sd)
        return xr.Dataset({"y_est": (("chain", "draw", "site"), values)}, coords=posterior.coords)
    idx = data.site_idx
    rest_n = (data.n - 1)[idx]
    rest_sum = (data.n * data.ybar)[idx] - data.y
    sd, prior_mean, prior_sd = (
        v[..., idx] if np.ndim(v) and np.shape(v)[-1] > 1 else v for v in (sd, prior_mean, prior_sd)
    )
    precision = 1 / prior_sd**2 + rest_n / sd**2
    mean = (prior_mean / prior_sd**2 + rest_sum / sd**2) / precision
    variance = 1 / precision + sd**2
    values = -0.5 * (LOG_2PI + np.log(variance)) - (data.y - mean) ** 2 / (2 * variance)
    return xr.Dataset({"y_est": (("chain", "draw", "obs_id"), values)}, coords=posterior.coords).assign_coords(
        obs_id=data.obs_id
    )


def site_log_evidence(sd, n, ybar, ss, prior_mean, prior_sd):
    """log p(the n rows of a site | sd) with the site mean integrated out against N(prior_mean, prior_sd),
    from the rows' mean and sum of squared deviations (n >= 1)."""
    total_sd = np.sqrt(prior_sd**2 + sd**2 / n)
    return (
        -(n - 1) * (0.5 * LOG_2PI + np.log(sd))
        - ss / (2 * sd**2)
        - 0.5 * np.log(n)
        - 0.5 * LOG_2PI
        - np.log(total_sd)
        - (ybar - prior_mean) ** 2 / (2 * total_sd**2)
    )


def integrates_site_means(name: str, priors: dict) -> bool:
    """Whether `loo_log_likelihood` integrates the site means out: they need a Normal prior."""
    return models.get(name).integrates_site_means(priors)
