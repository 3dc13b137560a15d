"""Formula models (bambi): exact against numerical integration, in agreement with the model whose priors
they take, right on simulated data with a covariate, and checked before any job.

Tolerances are 4 Monte Carlo standard errors (a correct sampler fails one comparison with probability
about 6e-5); the cross-check's MCSE combines both fits' errors.
"""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from arviz_stats import hdi, mcse
from scipy.special import logsumexp
from scipy.stats import t as student_t

from exact import partial_pooling, partial_pooling_new_site_mean, single_normal
from fit import fit
from fit_formula import fit_formula
from hbm import formulas, io
from hbm.errors import InputError
from helpers import FIRST5, changed

TOLERANCE_MCSE = 4
GATE = {"max_rhat": 1.01, "min_ess": 400, "max_divergences": 0}


def settings_for(config: dict, spec: dict, **sampling) -> dict:
    """What the fit_formula rule passes its step."""
    return {
        "outcome": config["outcome"],
        "group": config["group"],
        "storage": {"max_values": 50_000_000},
        "models": config["models"],
        "formula": spec,
        "sampling": config["sampling"] | spec.get("sampling", {}) | sampling,
        "convergence": GATE,
        "data": "data.csv",
    }


def assert_close(draws, exact: float, what: str):
    mean, error = float(draws.mean()), float(mcse(draws, method="mean"))
    assert abs(mean - exact) <= TOLERANCE_MCSE * error, f"{what}: mean {mean:.4f}, exact {exact:.4f}, MCSE {error:.4f}"


def test_complete_pooling_formula_is_exact_and_agrees_with_the_model(first5_csv, data_path, tmp_path, default_config):
    path, rows = first5_csv
    spec = default_config["formulas"]["complete_pooling_bambi"]
    settings = settings_for(default_config, spec, draws=2000)
    tree = fit_formula(data_path, path, tmp_path / "f.nc", "complete_pooling_bambi", "first5", settings, 2)
    posterior = tree["posterior"].to_dataset()
    exact = single_normal(rows["scontrol"], m0=0, s0=50, rate=1)
    assert_close(posterior["Intercept"], exact["mu"], "Intercept")
    assert_close(posterior["sigma"], exact["sigma"], "sigma")
    model = fit(
        path, tmp_path / "m.nc", "complete_pooling", "first5", changed(default_config, "sampling", "draws", 2000), 2
    )
    check = formulas.crosscheck("f", posterior, "complete_pooling", model["posterior"].to_dataset(), "Site")
    assert set(check["quantity"]) == {"population mean", "within-site sd"}
    assert (check["z"].abs() <= TOLERANCE_MCSE).all(), check


def test_partial_pooling_formula_is_exact_and_agrees_with_the_model(first5_csv, data_path, tmp_path, default_config):
    path, rows = first5_csv
    spec = default_config["formulas"]["partial_pooling_bambi"]
    tree = fit_formula(data_path, path, tmp_path / "f.nc", "pp", "first5", settings_for(default_config, spec), 2)
    posterior = tree["posterior"].to_dataset()
    assert tree.attrs["convergence_failures"] == "[]", tree.attrs["convergence_failures"]
    groups = [rows.loc[rows["Site"] == site, "scontrol"].to_numpy() for site in FIRST5]
    exact = partial_pooling(groups, m0=40, s0=20, rate_within=1, rate_between=1)
    assert_close(posterior["Intercept"], exact["hyper_mu"], "Intercept")
    assert_close(posterior["sigma"], exact["within_variability"], "sigma")
    assert_close(posterior["1|Site_sigma"], exact["between_variability"], "1|Site_sigma")
    for site, value in zip(FIRST5, exact["mu"]):
        assert_close(posterior["site_mean"].sel(site=site), value, f"site_mean[{site}]")
    model = fit(path, tmp_path / "m.nc", "partial_pooling", "first5", default_config, 2)
    check = formulas.crosscheck("pp", posterior, "partial_pooling", model["posterior"].to_dataset(), "Site")
    assert len(check) == 3 + len(FIRST5)
    assert (check["z"].abs() <= TOLERANCE_MCSE).all(), check


def test_partial_pooling_formulas_new_site_is_drawn_from_the_population(
    first5_csv, data_path, tmp_path, default_config
):
    """Zurich's predicted rows under the formula: their average has the exact mean and variance of a new
    site's under partial pooling (its effect drawn from N(0, 1|Site_sigma), not taken from a fitted site)."""
    path, rows = first5_csv
    spec = default_config["formulas"]["partial_pooling_bambi"]
    out = tmp_path / "zurich.nc"
    fit_formula(
        data_path,
        path,
        tmp_path / "f.nc",
        "pp",
        "first5",
        settings_for(default_config, spec),
        2,
        None,
        None,
        {"Zurich": out},
    )
    with xr.open_datatree(out) as tree:
        predicted = tree["predictions"]["y_est"].load()
    average = predicted.mean("obs_id")
    groups = [rows.loc[rows["Site"] == site, "scontrol"].to_numpy() for site in FIRST5]
    mean, variance = partial_pooling_new_site_mean(groups, predicted.sizes["obs_id"], 40, 20, 1, 1)
    assert_close(average, mean, "mean of Zurich's predicted average")
    assert_close((average - mean) ** 2, variance, "variance of Zurich's predicted average")


def exact_linear(y, X, prior_mean, prior_sd, sigma_nu, sigma_scale, points=20001):
    """Posterior means of the coefficients of y ~ N(X beta, sigma), beta_k ~ N(m_k, s_k) independent,
    sigma ~ HalfStudentT(nu, scale): beta integrates out in closed form given sigma, sigma on a grid."""
    y, X = np.asarray(y, float), np.asarray(X, float)
    S0 = np.diag(np.asarray(prior_sd, float) ** 2)
    values, vectors = np.linalg.eigh(X @ S0 @ X.T)  # y | sigma ~ N(X m, sigma^2 I + X S0 X^T)
    residual = vectors.T @ (y - X @ prior_mean)
    sigma = np.linspace(1e-3, 10 * y.std(), points)
    variance = values[None, :] + sigma[:, None] ** 2
    log_evidence = -0.5 * (np.log(variance).sum(1) + (residual**2 / variance).sum(1))
    log_prior = student_t.logpdf(sigma / sigma_scale, sigma_nu)
    logp = log_evidence + log_prior
    weights = np.exp(logp - logsumexp(logp))
    precision = np.linalg.inv(S0)[None] + (X.T @ X)[None] / sigma[:, None, None] ** 2
    rhs = (np.linalg.inv(S0) @ prior_mean)[None] + (X.T @ y)[None] / sigma[:, None] ** 2
    means = np.linalg.solve(precision, rhs[..., None])[..., 0]
    return weights @ means


def test_covariate_formula_recovers_known_coefficients(tmp_path, default_config):
    """Simulated y = 3 + 1.5 x + noise (sd 1.2) in three groups: the coefficients' truth lies in their 94%
    HDI and their posterior means agree with the exact posterior under bambi's default priors."""
    rng = np.random.default_rng(20261127)
    x = rng.normal(0, 2, 90)
    y = 3 + 1.5 * x + rng.normal(0, 1.2, x.size)
    data = pd.DataFrame({"y": y, "x": x, "g": np.repeat(["a", "b", "c"], 30)})
    data.to_csv(tmp_path / "sim.csv", index=False)
    rows = data[["g", "y"]].assign(obs_id=np.arange(x.size))[["obs_id", "g", "y"]]
    io.write_csv(rows, tmp_path / "rows.csv")
    spec = {"formula": "y ~ 1 + x", "priors": "default"}
    config = default_config | {"outcome": "y", "group": "g"}
    tree = fit_formula(
        tmp_path / "sim.csv", tmp_path / "rows.csv", tmp_path / "f.nc", "f", "s", settings_for(config, spec), 2
    )
    posterior = tree["posterior"].to_dataset()
    model = formulas.build(spec, data, {}, "g")
    mu, sigma = model.parameters["mu"], model.parameters["sigma"].prior.args
    priors = [mu.intercept_term.prior.args, mu.common_terms["x"].prior.args]
    exact = exact_linear(
        y,
        np.column_stack([np.ones_like(x), x]),
        np.array([float(p["mu"]) for p in priors]),
        [float(p["sigma"]) for p in priors],
        float(sigma["nu"]),
        float(sigma["sigma"]),
    )
    for name, truth, value in (("Intercept", 3.0, exact[0]), ("x", 1.5, exact[1])):
        bounds = hdi(posterior[name], prob=0.94).values
        assert bounds[0] <= truth <= bounds[1], f"{name}: truth {truth} outside the 94% HDI {bounds}"
        assert_close(posterior[name], value, name)


def test_rows_missing_a_formula_column_are_dropped_and_counted(tmp_path, data_path, first5_csv):
    path, rows = first5_csv
    frame, dropped = formulas.frame_for(
        data_path, formulas.read_rows(path, "Site"), "scontrol ~ age", "scontrol", "Site"
    )
    ages = pd.read_csv(data_path, usecols=["age"])["age"].iloc[rows["obs_id"]]
    assert dropped == {"age": int(ages.isna().sum())} and dropped["age"] > 0
    assert len(frame) == len(rows) - dropped["age"] and frame["age"].notna().all()
    assert frame["obs_id"].tolist() == rows["obs_id"][ages.notna().to_numpy()].tolist()


def test_predictive_draws_are_those_of_bambis_predict(first5_csv, data_path, default_config):
    """The fit step's vectorized posterior predictive draws equal bambi's `predict` with the same
    generator, for a robust likelihood with a covariate and a group term."""
    from hbm import sampling

    path, _ = first5_csv
    spec = {"formula": "scontrol ~ 1 + scale(age) + (1|Site)", "priors": "default", "family": "t"}
    frame, _ = formulas.frame_for(data_path, formulas.read_rows(path, "Site"), spec["formula"], "scontrol", "Site")
    model = formulas.build(spec, frame, default_config["models"], "Site")
    quick = default_config["sampling"] | {"draws": 50, "tune": 200}
    posterior = sampling.sample(model.backend.model, quick, 2, formulas.stored_variables(model))["posterior"]
    ours = formulas.response_draws(model, posterior.to_dataset(), np.random.default_rng(7))
    bambis = model.predict(
        xr.DataTree.from_dict({"posterior": posterior.to_dataset()}),
        kind="response",
        inplace=False,
        random_seed=np.random.default_rng(7),
    )["posterior_predictive"]["scontrol"].values
    assert ours.shape == (quick["chains"], 50, len(frame))
    np.testing.assert_array_equal(ours, bambis)


def test_formulas_may_use_bambis_functions_of_a_predictor(data_path, default_config):
    """log, exp and the rest of bambi's namespace, numpy as np and numbers in I() evaluate as bambi reads
    them, whatever names the workflow's own modules hold (its logger is `log`); other names are refused."""
    import bambi

    for name, function in formulas.FUNCTIONS.items():
        assert bambi.transformations.transformations_namespace[name] is function, name
    frame = pd.read_csv(data_path, usecols=["scontrol", "Site", "stress"]).dropna()
    for formula in ("scontrol ~ 1 + log(stress) + exp(I(stress / 10))", "scontrol ~ 1 + np.log2(stress)"):
        formulas.check_on_data("f", {"formula": formula}, frame, "Site")
    spec = {"formula": "scontrol ~ 1 + log(stress) + (1|Site)"}
    design = formulas.build(spec, frame, default_config["models"], "Site").components["mu"].design
    np.testing.assert_allclose(design.common["log(stress)"].ravel(), np.log(frame["stress"]))
    for unknown in ("build", "describe", "nosuch"):
        with pytest.raises(InputError, match=f"'{unknown}' is not a column or a known function"):
            formulas.check_on_data("f", {"formula": f"scontrol ~ 1 + {unknown}(stress)"}, frame, "Site")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"formula": "scontrol ~ (1|"}, "malformed formula"),
        ({"formula": "age ~ 1"}, "must model the outcome"),
        ({"formula": "scontrol ~ wealth"}, "'wealth'"),
        ({"formula": "scontrol ~ 0 + C(Site)", "priors": "no_pooling"}, "cannot be translated"),
        ({"formula": "scontrol ~ 1 + age", "priors": "complete_pooling"}, "translate only to the formula"),
        ({"formula": "scontrol ~ 1", "priors": "complete_pooling", "family": "t"}, "family gaussian"),
    ],
)
def test_bad_formulas_are_refused_naming_the_key(spec, message, default_config):
    with pytest.raises(InputError, match=message) as error:
        formulas.check("f", spec, default_config, ["scontrol", "Site", "age"])
    assert "formulas.f" in str(error.value)


def test_translatable_formulas_pass_in_any_order_of_terms(default_config):
    for spec in (
        {"formula": "scontrol ~ (1|Site) + 1", "priors": "partial_pooling"},
        {"formula": "scontrol~1", "priors": "complete_pooling"},
    ):
        formulas.check("f", spec, default_config, ["scontrol", "Site"])


def test_meaning_names_the_lecture_parameters(default_config):
    specs = default_config["formulas"]
    assert "partial pooling" in formulas.meaning(specs["partial_pooling_bambi"], "scontrol", "Site")
    assert "towards 0" in formulas.meaning(specs["partial_pooling_bambi_exercise"], "scontrol", "Site")
    assert "no pooling" in formulas.meaning(specs["no_pooling_bambi"], "scontrol", "Site")


def test_a_failed_cross_check_fails_the_convergence_gate():
    import xarray as xr

    from formula_tables import crosscheck_failures
    from hbm.tables import convergence

    check = pd.DataFrame(
        {"formula": ["a", "a", "b"], "quantity": ["population mean", "within-site sd", "population mean"]}
        | {"model": ["partial_pooling"] * 3, "z": [0.5, -4.6, 3.9]}
    ).assign(passed=lambda frame: frame["z"].abs() <= 4)
    attrs = {"convergence_failures": "[]", "divergences": "0", "likely_causes": "[]"}
    trees = {name: xr.DataTree(dataset=xr.Dataset(attrs=attrs)) for name in ("a", "b")}
    verdict = convergence(trees, crosscheck_failures(check)).set_index("model")
    assert verdict.loc["a", "failures"] == "cross-check with partial_pooling: within-site sd z = -4.6"
    assert list(verdict["passed"]) == [False, True]
