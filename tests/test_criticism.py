"""Leave one site out: each site's rows predicted as a new site by the models fitted without it."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
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


def assert_exact(data, table: pd.DataFrame) -> None:
    """Each fold's lpd within 4 of its MCSE of numerical integration against the exact posterior of the
    other sites (partial pooling under the lecture's priors), its fit passed the gate, its n right."""
    groups = {site: data.y[data.site_idx == i] for i, site in enumerate(data.sites)}
    for row in table.itertuples():
        others = [rows for site, rows in groups.items() if site != row.site]
        exact = partial_pooling_new_site_lpd(others, groups[row.site], m0=40, s0=20, rate_within=1, rate_between=1)
        assert row.passed, row.failures
        assert row.n == groups[row.site].size
        assert abs(row.lpd - exact) <= TOLERANCE_MCSE * row.lpd_mcse, (
            f"{row.site}: lpd {row.lpd:.4f}, exact {exact:.4f}, MCSE {row.lpd_mcse:.4f}"
        )


def test_leave_one_site_out_is_exact(folds):
    """Partial pooling on the lecture's five sites, each left out in turn: the joint lpd of its rows
    agrees with numerical integration against the exact posterior of the other four."""
    assert_exact(*folds)


@pytest.fixture(scope="module")
def formula_folds(first5_csv, data_path):
    """partial_pooling_bambi (the lecture's bambi formula with partial pooling's priors) left out site
    by site, as the fold step runs it; with four sites bambi's sampler needs smaller steps than the
    default's to avoid divergences (the models integrate the site means out and need none)."""
    config = load_config("config/config.yaml")
    spec = config["formulas"]["partial_pooling_bambi"]
    sampling = config["sampling"] | spec["sampling"] | {"target_accept": 0.99}
    config["formulas"] = {"partial_pooling_bambi": spec | {"sampling": sampling}}
    config["formula_priors"] = config["models"]
    rows = first5_csv[1][["obs_id", "Site", "scontrol"]]
    return pd.DataFrame(
        [criticism.formula_fold("partial_pooling_bambi", data_path, rows, site, "first5", config) for site in FIRST5]
    )


@pytest.mark.slow
def test_a_formula_left_out_site_by_site_is_exact(first5_csv, formula_folds):
    """The same model written as a bambi formula: its joint lpd of each left-out site's rows agrees with
    numerical integration too (its site effect integrated out around bambi's prediction without it)."""
    assert_exact(io.read_grouped(first5_csv[0], "scontrol", "Site"), formula_folds)
    assert formula_folds["coverage_95"].between(0.5, 1).all()


def formula_fold_on(tmp_path, source: pd.DataFrame, formula: str, site: str, **sampling) -> dict:
    """The fold of `formula` fitted to `source` (group g, outcome y, covariates) without `site`."""
    source.to_csv(tmp_path / "data.csv", index=False)
    rows = source[["g", "y"]].assign(obs_id=np.arange(len(source)))
    config = load_config("config/config.yaml")
    spec = {"formula": formula, "sampling": config["sampling"] | sampling}
    config |= {"outcome": "y", "group": "g", "formulas": {"f": spec}, "formula_priors": {}}
    return criticism.formula_fold("f", tmp_path / "data.csv", rows, site, "sim", config)


def test_a_site_without_the_formulas_columns_has_nothing_to_predict(tmp_path):
    """A covariate missing in every row of the left-out site: lpd 0 (p of no rows is 1) on 0 rows, so the
    comparison scores the formula on fewer rows."""
    rng = np.random.default_rng(5)
    source = pd.DataFrame({"g": np.repeat(["a", "b", "c"], 6), "x": rng.normal(size=18)})
    source["y"] = 1 + source["x"] + rng.normal(size=18)
    source.loc[source["g"] == "c", "x"] = np.nan
    row = formula_fold_on(tmp_path, source, "y ~ 1 + x + (1|g)", "c", draws=100, tune=100)
    assert row["n"] == 0 and row["lpd"] == 0.0 and np.isnan(row["coverage_95"])


def test_which_formulas_have_a_joint_density_for_a_new_site():
    from hbm.formulas import has_new_site_density

    assert has_new_site_density({"formula": "y ~ 1 + x + (1|Site)"}, "Site")
    assert has_new_site_density({"formula": "y ~ 0 + (1|Site)"}, "Site")
    assert has_new_site_density({"formula": "y ~ 1 + (1|Site)", "family": "t"}, "Site")
    assert has_new_site_density({"formula": "y ~ 1 + x + (x|Site)"}, "Site")
    assert has_new_site_density({"formula": "y ~ 1 + (1|Site) + (0 + scale(x)|Site)"}, "Site")
    assert not has_new_site_density({"formula": "y ~ 1 + (x|Site)", "family": "t"}, "Site")
    assert has_new_site_density({"formula": "y ~ 1 + (1|Site) + (1|Region)"}, "Site")
    assert has_new_site_density({"formula": "y ~ 1 + (x|Site) + (1|Class)"}, "Site")
    assert not has_new_site_density({"formula": "y ~ 1 + (1|Site) + (1|Region)", "family": "t"}, "Site")
    assert not has_new_site_density({"formula": "y ~ 1 + (1|Region)"}, "Site")
    assert not has_new_site_density({"formula": "y ~ 1 + (1|Site) + (1|C(Region))"}, "Site")
    assert not has_new_site_density({"formula": "y ~ 1 + (1|Site:Region)"}, "Site")
    assert not has_new_site_density({"formula": "y ~ 1 + C(Site)"}, "Site")


@pytest.mark.parametrize(
    ("rows", "scales"),
    [
        (1, [0.5, 2.0]),  # one row
        (9, [1.5, 0.3, 0.8]),  # an intercept and two slopes
        (40, [0.0, 0.7]),  # an effect with no spread
    ],
)
def test_a_new_sites_rows_with_slopes_are_jointly_normal(rows, scales):
    """Rows sharing a new site's intercept and slopes b ~ N(0, diag(scales²)) through their design Z:
    the multivariate Normal with covariance within² I + Z diag(scales²) Zᵀ (scipy's), per draw."""
    rng = np.random.default_rng(rows)
    design = np.column_stack([np.ones(rows), rng.normal(3, 2, (rows, len(scales) - 1))])
    scales = np.array([scales, [2 * s for s in scales]])  # two draws
    within = np.array([1.3, 0.6])
    residuals = rng.normal(0, 2, (2, rows))
    expected = [
        multivariate_normal(np.zeros(rows), w**2 * np.eye(rows) + design @ np.diag(s**2) @ design.T).logpdf(r)
        for r, s, w in zip(residuals, scales, within)
    ]
    assert pointwise.grouped_normal_log_density(residuals, design, scales, within) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    ("formula", "columns"),
    [
        ("y ~ 1 + x + (x|g)", lambda fit, new: [np.ones(len(new)), new["x"]]),
        (  # the transform as fitted: centred and scaled by the fitted rows' mean and sd
            "y ~ 1 + (1|g) + (0 + scale(x)|g)",
            lambda fit, new: [np.ones(len(new)), (new["x"] - fit["x"].mean()) / fit["x"].std(ddof=0)],
        ),
        ("y ~ 1 + (C(k)|g)", lambda fit, new: [np.ones(len(new)), new["k"] == "m"]),  # f the reference level
    ],
)
def test_the_design_of_a_new_sites_effects_is_the_formulas(formula, columns):
    """`formulas.new_site` of rows of a site bambi never saw: one column per effect, as the formula
    reads on those rows, each effect's sd its term's sigma, and the mean bambi's own prediction
    without the group-specific terms."""
    from hbm import formulas

    rng = np.random.default_rng(2)
    frame = pd.DataFrame(
        {"g": rng.choice(list("abcde"), 60), "x": rng.normal(30, 5, 60), "k": rng.choice(["f", "m"], 60)}
    )
    frame["y"] = rng.normal(size=60)
    fit, new = frame[frame["g"] != "e"].reset_index(drop=True), frame[frame["g"] == "e"].reset_index(drop=True)
    model = formulas.build({"formula": formula}, fit, {}, "g")
    draws = formulas.reported(model.prior_predictive(draws=3, random_seed=1)["prior"].to_dataset())
    mean, design, scales = formulas.new_site(model, draws, new, "g")
    np.testing.assert_allclose(design, np.column_stack(columns(fit, new)).astype(float), atol=1e-12)
    tree = xr.DataTree.from_dict({"posterior": draws})
    common = model.predict(tree, kind="response_params", data=new, inplace=False, include_group_specific=False)
    np.testing.assert_allclose(mean, common["posterior"]["mu"].transpose("chain", "draw", ...).values, atol=1e-9)
    names = sorted(
        (name for name in draws.data_vars if name.endswith("|g_sigma")), key=lambda name: name != "1|g_sigma"
    )
    sigmas = [draws[name].values.reshape(1, 3, -1) for name in names]  # the intercept's first, as in `columns`
    np.testing.assert_array_equal(scales, np.concatenate(sigmas, axis=-1))


def test_a_new_sites_unseen_levels_of_another_grouping_are_integrated_out_and_seen_ones_kept():
    """`y ~ 1 + (1|g) + (1|h)` with a new site whose rows have h levels the fit saw (p, q) and one it
    did not (z): each row's mean is the Intercept plus its h level's effect where that level was
    fitted; the shared effects are the site's intercept (every row) and z's (its rows), with the sds
    of their terms."""
    from hbm import formulas

    rng = np.random.default_rng(4)
    fit = pd.DataFrame({"g": rng.choice(list("abcd"), 60), "h": rng.choice(["p", "q", "r"], 60)})
    fit["y"] = rng.normal(size=60)
    new = pd.DataFrame({"g": "e", "h": ["p", "z", "q", "z", "p"], "y": rng.normal(size=5)})
    model = formulas.build({"formula": "y ~ 1 + (1|g) + (1|h)"}, fit, {}, "g")
    draws = formulas.reported(model.prior_predictive(draws=3, random_seed=1)["prior"].to_dataset())
    mean, design, scales = formulas.new_site(model, draws, new, "g")
    h = draws["1|h"].transpose("chain", "draw", ...)
    seen = [list(h["h__factor_dim"].values).index(level) if level != "z" else None for level in new["h"]]
    expected = np.stack(
        [draws["Intercept"].values + (h.values[..., j] if j is not None else 0.0) for j in seen], axis=-1
    )
    np.testing.assert_allclose(mean, expected, atol=1e-9)
    np.testing.assert_array_equal(design, np.column_stack([np.ones(5), new["h"] == "z"]).astype(float))
    np.testing.assert_array_equal(scales, np.stack([draws["1|g_sigma"].values, draws["1|h_sigma"].values], -1))


def test_a_formula_with_a_crossed_grouping_is_left_out_site_by_site(tmp_path):
    """A Normal formula with a site intercept and a crossed grouping (h, shared by the sites): each
    fold predicts the left-out site's rows with h's fitted effects and the site's intercept drawn
    from its population."""
    rng = np.random.default_rng(8)
    source = pd.DataFrame({"g": np.repeat(list("abcdef"), 12), "h": np.tile(["p", "q", "r"], 24)})
    sites = {"a": -0.5, "b": 0.3, "c": 0.0, "d": 0.6, "e": -0.3, "f": 0.1}  # f, left out, a typical site
    source["y"] = source["g"].map(sites) + source["h"].map({"p": -2.0, "q": 0.0, "r": 2.0}) + rng.normal(size=72)
    row = formula_fold_on(tmp_path, source, "y ~ 1 + (1|g) + (1|h)", "f", draws=200, tune=300)
    assert row["n"] == 12 and np.isfinite(row["lpd"]) and 0 < row["lpd_mcse"] < 0.5
    assert 0.5 <= row["coverage_95"] <= 1 and row["mean_lower"] < row["observed_mean"] < row["mean_upper"]


def test_new_site_draws_share_intercept_and_slopes_from_the_population():
    """Two rows of a new site with design Z under a Normal formula: their covariance matrix is
    Z diag(scales²) Zᵀ + within² I, within 4 Monte Carlo standard errors."""
    from hbm import formulas

    design, scales, within, draws = np.array([[1.0, -1.0], [1.0, 2.0]]), np.array([1.5, 0.5]), 0.8, 40_000
    posterior = xr.Dataset({"sigma": (("chain", "draw"), np.full((1, draws), within))})
    y = formulas.new_site_draws(
        {}, np.zeros((1, draws, 2)), design, np.broadcast_to(scales, (1, draws, 2)), posterior, np.random.default_rng(1)
    )[0]
    truth = design @ np.diag(scales**2) @ design.T + within**2 * np.eye(2)
    for i, j in [(0, 0), (1, 1), (0, 1)]:
        values = y[:, i] * y[:, j]
        assert abs(values.mean() - truth[i, j]) <= 4 * values.std() / np.sqrt(draws), (i, j, values.mean(), truth)


def test_a_formula_with_site_slopes_is_left_out_site_by_site(tmp_path):
    """A Normal formula with a site intercept and slope: each fold predicts the left-out site's rows from
    the population of both effects (an lpd with its MCSE, coverage of its rows)."""
    rng = np.random.default_rng(6)
    source = pd.DataFrame({"g": np.repeat(list("abcdef"), 12), "x": rng.normal(size=72)})
    slopes = dict(zip("abcdef", rng.normal(1, 0.5, 6)))
    source["y"] = 2 + source["g"].map(slopes) * source["x"] + rng.normal(size=72)
    row = formula_fold_on(tmp_path, source, "y ~ 1 + x + (x|g)", "f", draws=200, tune=300)
    assert row["n"] == 12 and np.isfinite(row["lpd"]) and 0 < row["lpd_mcse"] < 0.5
    assert 0.5 <= row["coverage_95"] <= 1 and row["mean_lower"] < row["observed_mean"] < row["mean_upper"]


@pytest.mark.parametrize(
    ("residuals", "between", "within", "nu"),
    [
        ([0.7], 2.0, 1.0, 3.0),  # one row
        ([0.1, -0.4, 0.3, 12.0, 0.2], 0.3, 1.0, 2.5),  # an outlier, a narrow population
        (list(np.random.default_rng(3).normal(4, 7.5, 180)), 2.5, 7.5, 30.0),  # a lecture-sized site
        ([-20.0, 20.0], 30.0, 1.0, 1.0),  # two modes: rows far apart, Cauchy tails
        ([1.0, 2.0, 3.0, 50.0, 60.0], 20.0, 1.0, 1.0),
    ],
)
def test_student_t_new_site_density_is_the_integral_over_the_site_effect(residuals, between, within, nu):
    """Against scipy's adaptive quadrature of ∫ Π t_nu(r_i - b; within) N(b; 0, between) db."""
    from scipy import integrate, stats

    r = np.asarray(residuals)

    def log_h(b):
        return stats.t.logpdf(r - b, nu, scale=within).sum() + stats.norm.logpdf(b, 0, between)

    grid = np.linspace(min(-10 * between, r.min() - 40 * within), max(10 * between, r.max() + 40 * within), 20001)
    top = max(log_h(b) for b in grid)
    value, _ = integrate.quad(
        lambda b: np.exp(log_h(b) - top), grid[0], grid[-1], points=np.unique(r), limit=2000, epsabs=0, epsrel=1e-12
    )
    ours = pointwise.student_t_site_log_density(r[None], between, within, nu)[0]
    assert ours == pytest.approx(np.log(value) + top, abs=1e-7)


def test_student_t_new_site_draws_share_an_effect_from_the_population():
    """Two rows of a new site under a Student t formula: each varies by between² + within² nu/(nu-2),
    the two covary by between² (their shared effect); within 4 Monte Carlo standard errors."""
    from hbm import formulas

    between, within, nu, draws = 2.0, 1.0, 5.0, 40_000
    posterior = xr.Dataset(
        {
            name: (("chain", "draw"), np.full((1, draws), value))
            for name, value in {"1|Site_sigma": between, "sigma": within, "nu": nu}.items()
        }
    )
    y = formulas.new_site_draws(
        {"family": "t"},
        np.zeros((1, draws, 2)),
        np.ones((2, 1)),
        posterior["1|Site_sigma"].values[..., None],
        posterior,
        np.random.default_rng(0),
    )
    for values, truth in [(y[0] ** 2, between**2 + within**2 * nu / (nu - 2)), (y[0, :, 0] * y[0, :, 1], between**2)]:
        values = values.reshape(draws, -1)[:, 0]
        assert abs(values.mean() - truth) <= 4 * values.std() / np.sqrt(draws), (values.mean(), truth)


def test_folds_report_coverage_and_the_interval_of_the_mean(folds):
    data, table = folds
    assert list(table["n"]) == [int(n) for n in data.n]
    assert table["coverage_95"].between(0.5, 1).all()
    assert (table["mean_lower"] < table["mean_upper"]).all()


def test_comparison_sums_folds_and_ranks_models():
    folds = pd.DataFrame(
        {
            "site": ["a", "b", "c"] * 2,
            "n": [5, 7, 9] * 2,
            "model": ["complete_pooling"] * 3 + ["partial_pooling"] * 3,
            "scored_by": ["complete_pooling"] * 3 + ["partial_pooling"] * 3,
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


def test_comparison_leaves_out_differences_on_fewer_rows():
    """A formula that dropped rows (missing values in its columns) is scored on fewer rows: its
    elpd_logo is shown, but not as a difference to the models scored on all of them."""
    folds = pd.DataFrame(
        {
            "site": ["a", "b"] * 2,
            "n": [5, 7, 5, 6],
            "model": ["partial_pooling"] * 2 + ["with_age"] * 2,
            "scored_by": ["partial_pooling"] * 2 + ["with_age"] * 2,
            "lpd": [-10.0, -14.0, -9.0, -11.0],
            "lpd_mcse": [0.1] * 4,
            "passed": [True] * 4,
        }
    )
    table = criticism.comparison(folds)
    assert list(table["model"]) == ["partial_pooling", "with_age"] and list(table["rows"]) == [12, 11]
    assert table.loc[0, "elpd_diff"] == 0 and np.isnan(table.loc[1, "elpd_diff"]) and np.isnan(table.loc[1, "diff_se"])
