"""Exact posterior means of the three Normal models by numerical integration.

Written from the model definitions alone, independently of the workflow's code. Given the scale
parameters, every location parameter integrates out in closed form (Normal-Normal conjugacy), which
leaves a one-dimensional grid over σ (complete and no pooling) or a two-dimensional grid over
(σ_y, σ_μ) (partial pooling). Priors: location N(m0, s0); scales Exponential(rate).
"""

import numpy as np
from scipy.special import logsumexp


def _scale_grid(log_density, lower, upper, points):
    """A grid fine enough where `log_density` holds its mass: coarse pass, then a fine one around the mass."""
    coarse = np.linspace(lower, upper, 4001)
    logp = log_density(coarse)
    weights = np.exp(logp - logsumexp(logp))
    mass = coarse[weights > 1e-14 * weights.max()]
    step = coarse[1] - coarse[0]
    return np.linspace(max(lower, mass.min() - 2 * step), mass.max() + 2 * step, points)


def _normal_model_given_sigma(y_n, y_bar, y_ss, m0, s0, sigma):
    """log p(y | σ) with μ ~ N(m0, s0) integrated out, and E[μ | σ, y]."""
    var_mean = sigma**2 / y_n
    log_evidence = (
        -(y_n - 1) * np.log(sigma)
        - y_ss / (2 * sigma**2)
        - 0.5 * np.log(s0**2 + var_mean)
        - (y_bar - m0) ** 2 / (2 * (s0**2 + var_mean))
    )
    precision = 1 / s0**2 + y_n / sigma**2
    mean = (m0 / s0**2 + y_n * y_bar / sigma**2) / precision
    return log_evidence, mean


def single_normal(y, m0, s0, rate, points=20001):
    """Posterior means of μ and σ for y ~ N(μ, σ), μ ~ N(m0, s0), σ ~ Exp(rate)."""
    y = np.asarray(y, float)
    n, ybar = y.size, y.mean()
    ss = ((y - ybar) ** 2).sum()

    def log_post(sigma):
        return _normal_model_given_sigma(n, ybar, ss, m0, s0, sigma)[0] - rate * sigma

    # up to where the prior's tail is negligible (e^-40), however little the rows say about σ
    sigma = _scale_grid(log_post, 1e-6, 10 * y.std() + 40 / rate, points)
    logp = log_post(sigma)
    logp[[0, -1]] -= np.log(2)  # trapezoid rule: with one row, σ's density does not vanish at 0
    w = np.exp(logp - logsumexp(logp))
    mean_mu = _normal_model_given_sigma(n, ybar, ss, m0, s0, sigma)[1]
    return {"mu": float(w @ mean_mu), "sigma": float(w @ sigma)}


def _partial_pooling_grid(groups, m0, s0, rate_within, rate_between, points):
    """The posterior of (σ_y, σ_μ) on a grid concentrated where it holds its mass: the grid, its
    normalized weights, and hyper_mu's conditional mean and precision at each point (hyper_mu and the
    site means integrated out in closed form)."""
    n = np.array([len(g) for g in groups], float)
    ybar = np.array([np.mean(g) for g in groups])
    ss = np.array([((np.asarray(g) - np.mean(g)) ** 2).sum() for g in groups])

    def log_post(within, between):
        within, between = within[..., None], between[..., None]
        var_j = between**2 + within**2 / n  # variance of ybar_j given hyper_mu
        precision = 1 / s0**2 + (1 / var_j).sum(-1)
        mean_h = (m0 / s0**2 + (ybar / var_j).sum(-1)) / precision
        quad = m0**2 / s0**2 + (ybar**2 / var_j).sum(-1) - precision * mean_h**2
        log_lik = (
            -((n - 1) * np.log(within)).sum(-1)
            - (ss / (2 * within**2)).sum(-1)
            - 0.5 * np.log(var_j).sum(-1)
            - 0.5 * np.log(precision)
            - 0.5 * quad
        )
        return log_lik - rate_within * within[..., 0] - rate_between * between[..., 0], mean_h, precision

    pooled_sd = np.sqrt(ss.sum() / max(n.sum() - len(n), 1))
    between_guess = max(np.std(ybar), 1e-3)
    within_axis = _scale_grid(
        lambda w: log_post(w, np.full_like(w, between_guess))[0], 1e-3, 5 * pooled_sd + 10, points[0]
    )
    within_mode = within_axis[np.argmax(log_post(within_axis, np.full_like(within_axis, between_guess))[0])]
    between_axis = _scale_grid(
        lambda b: log_post(np.full_like(b, within_mode), b)[0], 1e-6, np.ptp(ybar) * 4 + 10, points[1]
    )
    within, between = np.meshgrid(within_axis, between_axis, indexing="ij")
    logp, mean_h, precision = log_post(within, between)
    logp[:, [0, -1]] -= np.log(2)  # trapezoid rule: σ_μ's density need not vanish at 0, the grid's edge
    w = np.exp(logp - logsumexp(logp))
    assert w[:, -1].sum() < 1e-9 and w[[0, -1], :].sum() < 1e-9, "grid does not cover the posterior"
    return within, between, w, mean_h, precision


def partial_pooling(groups, m0, s0, rate_within, rate_between, points=(801, 801), chunk=40):
    """Posterior means of hyper_mu, within_variability, between_variability and each site's mu.

    Rows of the grid are processed `chunk` at a time, so memory stays small for many sites."""
    n = np.array([len(g) for g in groups], float)
    ybar = np.array([np.mean(g) for g in groups])
    within, between, w, mean_h, _ = _partial_pooling_grid(groups, m0, s0, rate_within, rate_between, points)
    within_axis = within[:, 0]
    mu = np.zeros(len(n))
    for rows in np.array_split(np.arange(len(within_axis)), max(1, len(within_axis) // chunk)):
        wi, bi, hi = within[rows][..., None], between[rows][..., None], mean_h[rows][..., None]
        site_precision = n / wi**2 + 1 / bi**2
        mu += np.einsum("ij,ijk->k", w[rows], (n * ybar / wi**2 + hi / bi**2) / site_precision)
    return {
        "hyper_mu": float((w * mean_h).sum()),
        "within_variability": float((w * within).sum()),
        "between_variability": float((w * between).sum()),
        "mu": mu,
    }


def partial_pooling_new_site_lpd(groups, held_out, m0, s0, rate_within, rate_between, points=(801, 801)):
    """log p(held_out | groups): the joint density of a new site's rows under partial pooling fitted to
    `groups`. Given (σ_y, σ_μ, hyper_mu) the rows are jointly Normal with covariance
    σ_y² I + σ_μ² 11ᵀ; hyper_mu given the scales and `groups` is Normal, so it integrates out in closed
    form (the new site's mean is then N(E[hyper_mu], σ_μ² + Var[hyper_mu])), and the rest is a sum
    over the exact posterior grid of the two scales."""
    within, between, w, mean_h, precision = _partial_pooling_grid(groups, m0, s0, rate_within, rate_between, points)
    y = np.asarray(held_out, float)
    n, ybar = y.size, y.mean()
    ss = ((y - ybar) ** 2).sum()
    mean_var = between**2 + 1 / precision + within**2 / n  # variance of the rows' mean
    log_p = (
        -0.5 * (n - 1) * np.log(2 * np.pi)
        - (n - 1) * np.log(within)
        - ss / (2 * within**2)
        - 0.5 * np.log(n)
        - 0.5 * np.log(2 * np.pi * mean_var)
        - (ybar - mean_h) ** 2 / (2 * mean_var)
    )
    positive = w > 0
    return float(logsumexp(log_p[positive], b=w[positive]))


def partial_pooling_new_site_mean(groups, n, m0, s0, rate_within, rate_between, points=(801, 801)):
    """Mean and variance of the average of a new site's `n` predicted rows under partial pooling fitted
    to `groups`: given the scales it is Normal with mean E[hyper_mu] and variance
    σ_μ² + Var[hyper_mu] + σ_y²/n; the scales are summed over their exact posterior grid."""
    within, between, w, mean_h, precision = _partial_pooling_grid(groups, m0, s0, rate_within, rate_between, points)
    mean = float((w * mean_h).sum())
    variance = (w * (between**2 + 1 / precision + within**2 / n + (mean_h - mean) ** 2)).sum()
    return mean, float(variance)
