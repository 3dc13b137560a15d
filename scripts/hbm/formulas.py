"""Formula models: bambi formulas on the data's columns (config `formulas`), fitted with the workflow's
sampler. A formula whose `priors` names a model is that model written as a formula: the registry
entry gives the formula it must have and which bambi term takes each of its priors, so the two fits
are the same model and must agree (the cross-check)."""

from __future__ import annotations

import logging
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hbm import models
from hbm.data import reading
from hbm.errors import InputError

if TYPE_CHECKING:
    import xarray as xr

log = logging.getLogger(__name__)
ROW_DIM = "__obs__"  # bambi's dimension of the data rows
SITE_MEAN = "site_mean"  # derived: each site's mean (Intercept + 1|site[j], or C(site)[j]) in the model's terms
# The functions of a predictor that bambi adds to a formula's namespace (`bambi.transformations.
# transformations_namespace`; tests/test_formulas.py checks they are still bambi's), and numpy as `np`.
FUNCTIONS = {"log": np.log, "log2": np.log2, "log10": np.log10, "exp": np.exp, "exp2": np.exp2, "abs": np.abs}
NAMESPACE = {"np": np}


def _call(function, args, kwargs):
    return function(*args, **kwargs)


# `_call` with no globals: formulae looks a formula's functions up in its caller's frame before the namespace
# it is given, so called from here this module's own names (its logger is `log`) would shadow bambi's.
_bare_call = types.FunctionType(_call.__code__, {"__builtins__": {}})


@cache
def describe(formula: str):
    """formulae's description of `formula`; a malformed one is an InputError saying why."""
    import formulae

    try:
        return formulae.model_description(formula)
    except Exception as error:  # formulae raises its own parse and scan errors
        raise InputError(f"malformed formula {formula!r}: {error}") from None


def variables(formula: str) -> set[str]:
    """The data columns a formula uses (response included); formulae names a number (`I(x / 10)`) ''."""
    return {name for name in describe(formula).var_names if name}


def group_factors(formula: str) -> set[str]:
    """The columns a formula's group-specific terms are grouped by, e.g. {'Site'} for (1|Site)."""
    return {name for term in describe(formula).terms if hasattr(term, "factor") for name in term.factor.var_names}


def terms(formula: str) -> set[str]:
    """The formula's terms, in formulae's canonical spelling (order-free)."""
    return {str(term) for term in describe(formula).terms}


def predicts_new_sites(formula: str, group: str) -> bool:
    """A formula with a term grouped by the data's group predicts sites it never saw."""
    return group in group_factors(formula)


def group_terms(formula: str) -> list:
    """formulae's group-specific terms of a formula, e.g. (1|Site) and (x|Site) for (x|Site)."""
    return [term for term in describe(formula).terms if type(term).__name__ == "GroupSpecificTerm"]


def has_new_site_density(spec: dict, group: str) -> bool:
    """Whether the workflow has the joint density of a new site's rows under a formula: a term grouped by
    the site, every group-specific term grouped by one plain column (the site or another, such as
    `(1|Region)` or classes within sites), and a family that integrates the shared effects out
    (`Family.slopes`: Normal rows with any such terms, as they are jointly Normal; Student t rows with
    one site intercept and no other group-specific term, by quadrature over that one effect)."""
    grouped = group_terms(spec["formula"])
    factors = [term.factor.name for term in grouped]
    if group not in factors or any(term.factor.name not in term.factor.var_names for term in grouped):
        return False
    intercept_only = len(grouped) == 1 and type(grouped[0].expr).__name__ == "Intercept"
    return FAMILIES[spec.get("family", "gaussian")].slopes or intercept_only


def translated_model(spec: dict, model_names) -> str | None:
    """The model of `model_names` that formula `spec` is, or None: its `priors` name the model, which
    `check` allows only for that model's own formula and likelihood."""
    priors = spec.get("priors", "default")
    return priors if priors in model_names else None


def has_site_means(formula: str, outcome: str, group: str) -> bool:
    """Whether each site has its own mean to compare with the models' site means: the formula uses the
    group and no column but it and the outcome."""
    return variables(formula) == {outcome, group}


def model_formula(model: str, outcome: str, group: str) -> str:
    """The formula of model `model` (its registry entry's `formula`, on the data's columns)."""
    return models.get(model).formula.format(outcome=outcome, group=group)


def check(name: str, spec: dict, config: dict, columns: list[str]) -> None:
    """Refuse a formula that cannot run: malformed, another response, a column not in the data, or
    `priors` naming a model that is not configured or that the formula is not."""
    where = f"config key 'formulas.{name}'"
    outcome, group = config["outcome"], config["group"]
    formula = spec["formula"]
    try:
        description = describe(formula)
    except InputError as error:
        raise InputError(f"{where}: {error}") from None
    response = description.response
    if response is None or response.term.var_names != {outcome}:
        raise InputError(f"{where}: formula {formula!r} must model the outcome: write it as '{outcome} ~ ...'")
    if response.term.name != outcome:
        raise InputError(
            f"{where}: formula {formula!r} transforms the outcome ({response.term.name}), but its results are "
            f"compared with the models' on {outcome!r} as it is: put the transformed outcome in a column of its "
            f"own and make it the outcome, or write '{outcome} ~ ...'"
        )
    missing = sorted(variables(formula) - set(columns))
    if missing:
        raise InputError(f"{where}: formula {formula!r} uses column(s) {', '.join(map(repr, missing))} not in the data")
    priors = spec.get("priors", "default")
    if priors == "default":
        return
    model = models.MODELS.get(priors)
    if model is None or model.formula is None:
        translatable = [m.name for m in models.MODELS.values() if m.formula]
        why = "its per-site sds need a formula for sigma" if priors == "no_pooling" else "it is not a known model"
        raise InputError(
            f"{where}: priors {priors!r} cannot be translated to a formula ({why}); "
            f"use 'default' or one of {', '.join(translatable)}"
        )
    if priors not in config["models"]:
        raise InputError(f"{where}: priors {priors!r} names a model that is not in config key 'models'")
    expected = model_formula(priors, outcome, group)
    if terms(formula) != terms(expected) or spec.get("family", "gaussian") != "gaussian":
        raise InputError(
            f"{where}: priors {priors!r} translate only to the formula {expected!r} with family gaussian "
            f"(got {formula!r}, family {spec.get('family', 'gaussian')}); use priors: default for other formulas"
        )


def check_on_data(name: str, spec: dict, frame: pd.DataFrame, group: str) -> None:
    """Refuse a formula formulae cannot evaluate on the data (an unknown function, text in arithmetic), or
    whose columns other than the `group` hold numbers written with decimal commas."""
    import formulae

    used = frame[sorted(variables(spec["formula"]))].dropna()
    for column in used.columns:
        if column != group and not pd.api.types.is_numeric_dtype(used[column]):
            _check_decimal_commas(name, column, frame[column])
    if used.empty:
        raise InputError(f"config key 'formulas.{name}': no row has a value in every column the formula uses")
    try:
        _bare_call(formulae.design_matrices, (spec["formula"], used), {"extra_namespace": FUNCTIONS | NAMESPACE})
    except KeyError as error:  # a name that is neither a column nor a function it knows
        known = ", ".join(["C", "I", "center", "scale", "standardize", *FUNCTIONS, "np.<function>"])
        problem = f"formula {spec['formula']!r} cannot be evaluated: {error} is not a column or a known function"
        raise InputError(f"config key 'formulas.{name}': {problem} ({known})") from None
    except Exception as error:  # formulae raises many kinds, all meaning the formula cannot be evaluated
        problem = f"formula {spec['formula']!r} cannot be evaluated: {error}"
        raise InputError(f"config key 'formulas.{name}': {problem}") from None


def check_design(name: str, spec: dict, rows: pd.DataFrame, selection: str) -> None:
    """Refuse a formula whose design cannot be fitted on the rows of `selection` it would fit (`rows`: the
    selection's rows with an outcome, every column the formula uses): no such row, a term that is not
    finite (np.log of a negative value, scale() of a constant), or common effects that are linearly
    dependent (a covariate constant in the selection, an interaction with an empty cell)."""
    import formulae

    where = f"config key 'formulas.{name}' on selection {selection!r}"
    used = rows[sorted(variables(spec["formula"]))].dropna()
    if used.empty:
        columns = ", ".join(map(repr, sorted(variables(spec["formula"]))))
        raise InputError(f"{where}: no row of the selection has a value in every column the formula uses ({columns})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the non-finite values are named below
        design = _bare_call(
            formulae.design_matrices, (spec["formula"], used), {"extra_namespace": FUNCTIONS | NAMESPACE}
        )
    common = design.common.as_dataframe() if design.common is not None else pd.DataFrame(index=used.index)
    parts = [common] + ([pd.DataFrame(np.asarray(design.group), index=used.index)] if design.group is not None else [])
    for part in parts:
        bad = ~np.isfinite(part.to_numpy(float))
        if bad.any():
            column = part.columns[bad.any(axis=0)][0]
            term = column if part is common else "a group term"
            raise InputError(
                f"{where}: {term} is not finite on {int(bad.any(axis=1).sum())} of its {len(used)} rows "
                f"(first in row {used.index[bad.any(axis=1)][0] + 2} of the file): change the term or the selection"
            )
    dependent = _dependent_column(common)
    if dependent:
        raise InputError(
            f"{where}: the formula's common effects are linearly dependent on the selection's rows ({dependent} "
            "is a combination of the others: a covariate constant in the selection, or an interaction with an "
            "empty cell); drop the term or change the selection"
        )


def _dependent_column(design: pd.DataFrame) -> str | None:
    """The first column of `design` that is a linear combination of the columns before it, or None."""
    values = design.to_numpy(float)
    for stop in range(1, values.shape[1] + 1):
        if np.linalg.matrix_rank(values[:, :stop]) < stop:
            return design.columns[stop - 1]
    return None


def _check_decimal_commas(name: str, column: str, values: pd.Series) -> None:
    """Refuse a column of numbers written with decimal commas ('1,78'), which would be read as text: a
    factor with a level per value."""
    text = values.dropna().astype(str).str.strip()
    commas = text.str.fullmatch(r"[+-]?\d+,\d+")
    if commas.any() and text.str.fullmatch(r"[+-]?(\d+(,\d+)?|\d*\.\d+)").all():
        row = commas.idxmax()
        raise InputError(
            f"config key 'formulas.{name}': column {column!r} holds numbers written with decimal commas "
            f"({text[row]!r} in row {row + 2} of the file), which would be read as text, a factor of "
            f"{text.nunique()} levels; set data.decimal: ',' in the config, or write them with decimal points"
        )


def read_columns(path, columns, group: str, options: dict | None = None) -> pd.DataFrame:
    """The data file's `columns` (group labels as text, other columns numeric where they are numbers);
    `options`: how the file is written (`hbm.data.reading`)."""
    options = reading(options)
    return pd.read_csv(
        path,
        usecols=sorted(columns),
        dtype={group: str},
        sep=options["sep"],
        decimal=options["decimal"],
        na_values={column: options["na_values"] for column in columns if column != group},
        keep_default_na=False,
    )


def read_rows(path, group: str) -> pd.DataFrame:
    """A selection's rows as its data.csv holds them (obs_id, group, outcome; labels as text)."""
    return pd.read_csv(path, dtype={group: str}, keep_default_na=False)


def frame_for(
    data_path, rows: pd.DataFrame, formula: str, outcome: str, group: str, options: dict | None = None
) -> tuple[pd.DataFrame, dict]:
    """`rows` (obs_id, group, outcome) with every other column the formula uses, from the data file
    (`options`: how it is written); rows with a missing value in any of them are dropped: also the count
    dropped per column."""
    extra = variables(formula) - {outcome, group}
    frame = rows.reset_index(drop=True)
    if extra:
        columns = read_columns(data_path, extra, group, options)
        frame = frame.join(columns.iloc[frame["obs_id"].to_numpy()].reset_index(drop=True))
    missing = frame[sorted(extra)].isna()
    dropped = {column: int(count) for column, count in missing.sum().items() if count}
    return frame[~missing.any(axis=1)].reset_index(drop=True), dropped


def bambi_priors(spec: dict, model_specs: dict, group: str) -> dict | None:
    """The bambi priors of a formula: None for bambi's defaults, else the named model's configured priors
    on the formula's terms (`Model.formula_priors`: model parameter -> bambi term; a group term's prior is
    a Normal(0, sd) whose sd takes the model's prior)."""
    import bambi as bmb

    name = spec.get("priors", "default")
    if name == "default":
        return None
    configured = model_specs[name]["priors"]
    priors = {}
    for parameter, term in models.get(name).formula_priors.items():
        prior = bmb.Prior(configured[parameter]["dist"], **_arguments(configured[parameter]))
        if "|" in term:
            prior = bmb.Prior("Normal", mu=0, sigma=prior)
        priors[term.format(group=group)] = prior
    return priors


def _arguments(prior: dict) -> dict:
    return {key: value for key, value in prior.items() if key != "dist"}


def build(spec: dict, frame: pd.DataFrame, model_specs: dict, group: str):
    """The bambi model of a formula on `frame`, built (its PyMC model is `.backend.model`)."""
    import bambi as bmb

    arguments = {
        "family": spec.get("family", "gaussian"),
        "priors": bambi_priors(spec, model_specs, group),
        "noncentered": spec.get("noncentered", True),
        "center_predictors": False,  # Intercept is the mean where every covariate is 0, as the formula reads
        "extra_namespace": NAMESPACE,
    }
    model = _bare_call(bmb.Model, (spec["formula"], frame), arguments)
    model.build()
    return model


def stored_variables(model) -> list[str]:
    """What a fit stores: every free variable and deterministic but the likelihood's per-row parameters
    (as bambi's own `fit` leaves them out: they take rows x draws of memory)."""
    pm_model = model.backend.model
    likelihood = set(model.family.likelihood.params)
    return [rv.name for rv in pm_model.free_RVs] + [
        var.name for var in pm_model.deterministics if var.name not in likelihood
    ]


def reported(posterior: xr.Dataset) -> xr.Dataset:
    """bambi's parameters as its own `Model.fit` reports them: without the non-centered offsets it
    samples (`*_offset`) and without the per-row response parameters (dim `__obs__`, kept by bambi
    only with `include_response_params`)."""
    kept = [
        name for name in posterior.data_vars if not name.endswith("_offset") and ROW_DIM not in posterior[name].dims
    ]
    return posterior[kept].drop_dims(ROW_DIM, errors="ignore")


def site_means(model, tree: xr.DataTree, sites: list[str], group: str) -> xr.DataArray:
    """Each site's mean under the formula, (chain, draw, site): bambi's `predict` of the mean (`mu`)
    for one row per site, with every group-specific term included."""
    frame = pd.DataFrame({group: pd.Categorical(sites, categories=sorted(sites))})
    predicted = model.predict(tree, kind="response_params", data=frame, inplace=False)
    mu = predicted["posterior"]["mu"]
    row = next(dim for dim in mu.dims if dim not in ("chain", "draw"))
    return mu.drop_vars(row).rename({row: "site"}).assign_coords(site=sites)


def response_draws(model, posterior: xr.Dataset, rng) -> np.ndarray:
    """Posterior predictive draws of the rows the formula was fitted to, (chain, draw, row), from
    `posterior` as sampled (offsets included): PyMC's `vectorize_over_posterior` turns bambi's
    response into one draw over all chains and draws. bambi's `predict` gives the same draws from the
    same generator but multiplies its group design matrix as a `sparse` array, several times slower."""
    import pymc as pm

    pm_model = model.backend.model
    [response] = pm.vectorize_over_posterior([pm_model[model.response_term.name]], posterior, pm_model.free_RVs)
    return pm.draw(response, random_seed=rng)


def new_site(model, posterior: xr.Dataset, frame: pd.DataFrame, group: str) -> tuple:
    """`frame`'s rows, all of one site, as rows of a site the formula never saw, for a formula with
    `has_new_site_density`: the mean of each row without the effects it shares with its site's other
    rows, (chain, draw, row); those effects' design Z (row, effect); and their population sds (chain,
    draw, effect), each its term's `_sigma`. The shared effects are the site's own (every term grouped
    by the site) and those of levels of other grouping columns the fit never saw (e.g. classes within
    the site), one set per level; levels it saw keep their fitted effects in the mean.

    Read off bambi's `predict` of the mean, with the rows of each unseen level relabelled as a fitted
    level's: with every parameter 0 but one of that level's effects, 1, the prediction less the one
    with all 0 is that effect's column, with the term's transforms as fitted; the mean is the
    prediction under `posterior` less the relabelled level's effects."""
    terms = list(model.parameters[model.family.likelihood.parent].group_specific_terms)
    sigmas = {name: posterior[f"{name}_sigma"].transpose("chain", "draw", ...) for name in terms}
    effects = [
        (name, dict(zip(sigma.dims[2:], index)))
        for name, sigma in sigmas.items()
        for index in np.ndindex(sigma.shape[2:])
    ]
    unseen = {
        f: np.full(len(frame), f == group) | ~frame[f].isin(model.data[f]).to_numpy() for f in map(_factor, terms)
    }
    stand_in = {f: _fitted_level(model, posterior, f) for f in unseen}
    relabelled = frame.assign(**{f: frame[f].mask(rows, stand_in[f][0]) for f, rows in unseen.items()})
    at = [{f"{_factor(name)}__factor_dim": stand_in[_factor(name)][1]} | expr for name, expr in effects]
    unit = _unit_effects(model, posterior, relabelled, effects, at)
    mean = _predicted_mean(model, posterior, relabelled)
    design, scales = [], []
    for column, (name, expr) in enumerate(effects):
        rows = unseen[_factor(name)]
        effect = posterior[name].transpose("chain", "draw", ...).isel(at[column]).values
        mean = mean - effect[..., None] * np.where(rows, unit[:, column], 0.0)
        for level in pd.unique(frame.loc[rows, _factor(name)]):
            design.append(np.where(rows & (frame[_factor(name)] == level).to_numpy(), unit[:, column], 0.0))
            scales.append(sigmas[name].isel(expr).values)
    return mean, np.column_stack(design), np.stack(scales, axis=-1)


def _unit_effects(model, posterior: xr.Dataset, frame: pd.DataFrame, effects: list, at: list) -> np.ndarray:
    """Each of `effects` (term, expression index) at its level `at`'s contribution to the mean of
    `frame`'s rows per unit of it, (row, effect): bambi's `predict` with every parameter 0 but that
    effect, 1, less the prediction with all 0."""
    import xarray as xr

    zero = posterior.isel(chain=[0], draw=np.zeros(len(effects) + 1, int)).assign_coords(
        draw=np.arange(len(effects) + 1)
    )
    fake = {name: xr.zeros_like(value) for name, value in zero.data_vars.items()}
    for column, (name, _) in enumerate(effects):
        fake[name][{"chain": 0, "draw": column, **at[column]}] = 1.0
    mean = _predicted_mean(model, xr.Dataset(fake), frame)[0]
    return (mean[:-1] - mean[-1]).T


def _factor(term: str) -> str:
    """The column bambi's group-specific term `term` (e.g. '1|Site') is grouped by."""
    return term.split("|")[1]


def _fitted_level(model, posterior: xr.Dataset, factor: str) -> tuple:
    """A level of `factor` the fit saw, as the data spell it, and its position among the posterior's
    levels of it."""
    level = model.data[factor].iloc[0]
    levels = [str(value) for value in posterior[f"{factor}__factor_dim"].values]
    return level, levels.index(str(level))


def _predicted_mean(model, posterior: xr.Dataset, frame: pd.DataFrame) -> np.ndarray:
    """bambi's `predict` of the likelihood's mean for `frame`'s rows, (chain, draw, row)."""
    import xarray as xr

    predicted = model.predict(
        xr.DataTree.from_dict({"posterior": posterior}), kind="response_params", data=frame, inplace=False
    )
    return predicted["posterior"][model.family.likelihood.parent].transpose("chain", "draw", ...).values


def new_site_log_density(spec: dict, residuals: np.ndarray, design, scales, posterior: xr.Dataset) -> np.ndarray:
    """log p of one new site's rows per posterior draw, (chain, draw), for a formula with
    `has_new_site_density`; `residuals` (chain, draw, row): the rows minus their fixed means;
    `design`, `scales`: the site's effects (both from `new_site`)."""
    return FAMILIES[spec.get("family", "gaussian")].log_density(residuals, design, scales, posterior)


def new_site_draws(spec: dict, means: np.ndarray, design, scales, posterior: xr.Dataset, rng) -> np.ndarray:
    """Draws of the rows of one site the formula never saw, (chain, draw, row), for a formula with
    `has_new_site_density`, given their fixed means and the site's effects (from `new_site`): per
    posterior draw the site's effects from their population N(0, scales²), shared by its rows, then
    each row from the likelihood around its mean plus the effects (as partial pooling's new site)."""
    effects = scales * rng.standard_normal(scales.shape)
    noise = FAMILIES[spec.get("family", "gaussian")].noise(posterior, rng, means.shape)
    return means + effects @ np.asarray(design).T + posterior["sigma"].values[..., None] * noise


def loo_log_likelihood(model, spec: dict, posterior: xr.Dataset, frame: pd.DataFrame, positions, outcome, group):
    """log p(y_i | parameters, the other rows of its site) per posterior draw, (chain, draw, row), for the
    rows of `frame` at `positions`, for a formula with `has_new_site_density`: the site's effects
    integrated out of the joint density of the site's rows (`new_site_log_density`), with row i less
    that without it. These are the rows' log-likelihoods once the effects are integrated out, which
    importance sampling handles far better where a site has few rows."""
    values, sites = [], {}
    for position in positions:
        site = frame[group].iat[position]
        if site not in sites:
            rows = np.flatnonzero(frame[group].to_numpy() == site)
            part = frame.iloc[rows]
            means, design, scales = new_site(model, posterior, part, group)
            residuals = part[outcome].to_numpy(float) - means
            whole = new_site_log_density(spec, residuals, design, scales, posterior)
            sites[site] = rows, residuals, design, scales, whole
        rows, residuals, design, scales, whole = sites[site]
        keep = rows != position
        rest = new_site_log_density(spec, residuals[..., keep], design[keep], scales, posterior) if keep.any() else 0
        values.append(whole - rest)
    return np.stack(values, axis=-1)


@dataclass(frozen=True)
class Family:
    """A likelihood family of the schema: its words in `meaning`, the joint log density of a new site's
    rows given their residuals and the site's effects, standard noise draws around a row's mean, and
    whether its density integrates out slopes too (else only one site intercept)."""

    words: str
    log_density: Callable
    noise: Callable
    slopes: bool


def _normal_log_density(residuals, design, scales, posterior):
    from hbm import pointwise

    return pointwise.grouped_normal_log_density(residuals, design, scales, posterior["sigma"].values)


def _t_log_density(residuals, design, scales, posterior):
    from hbm import pointwise

    within, nu = posterior["sigma"].values, posterior["nu"].values
    return pointwise.student_t_site_log_density(residuals, scales[..., 0], within, nu)  # one intercept: Z = 1


FAMILIES = {
    "gaussian": Family(
        "a Normal", _normal_log_density, lambda posterior, rng, shape: rng.standard_normal(shape), slopes=True
    ),
    "t": Family(
        "a Student t",
        _t_log_density,
        lambda posterior, rng, shape: rng.standard_t(posterior["nu"].values[..., None], shape),
        slopes=False,
    ),
}


def new_group_draws(model, tree: xr.DataTree, frame: pd.DataFrame, rng) -> np.ndarray:
    """Draws of `frame`'s rows, (chain, draw, row), from bambi's `predict`, for formulas without
    `has_new_site_density`: rows of a group it never saw get, per posterior draw, the group
    effects of one fitted group picked at random (bambi's `sample_new_groups`; narrower than the
    population's where few groups were fitted)."""
    with warnings.catch_warnings():
        # bambi 0.21 marks `sample_new_groups` deprecated, yet refuses new groups without it
        warnings.filterwarnings("ignore", message=".*sample_new_groups.*", category=FutureWarning)
        predicted = model.predict(
            tree, kind="response", data=frame, inplace=False, sample_new_groups=True, random_seed=rng
        )
    return predicted["posterior_predictive"][model.response_term.name].values


def crosscheck(
    formula: str, posterior: xr.Dataset, model: str, model_posterior: xr.Dataset, group: str
) -> pd.DataFrame:
    """Each quantity a formula shares with the model it translates: posterior means, their difference,
    the combined Monte Carlo standard error and z = difference / mcse."""
    from arviz_stats import mcse

    pairs = [
        (quantity, parameter, term.format(group=group))
        for quantity, (parameter, term) in models.get(model).formula_quantities.items()
    ]
    rows = []
    for quantity, parameter, term in pairs:
        ours, theirs = model_posterior[parameter], posterior[term]
        for label, a, b in _aligned(quantity, ours, theirs):
            error = np.hypot(float(mcse(a, method="mean")), float(mcse(b, method="mean")))
            difference = float(b.mean()) - float(a.mean())
            rows.append(
                {
                    "formula": formula,
                    "quantity": label,
                    "model": model,
                    "formula_mean": float(b.mean()),
                    "model_mean": float(a.mean()),
                    "difference": difference,
                    "mcse": error,
                    "z": difference / error,
                }
            )
    return pd.DataFrame(rows)


def _aligned(quantity: str, ours: xr.DataArray, theirs: xr.DataArray):
    """(label, model draws, formula draws) per site for a site quantity, else once."""
    if "site" not in ours.dims:
        yield quantity, ours, theirs
        return
    for site in ours["site"].values:
        yield f"{quantity}[{site}]", ours.sel(site=site), theirs.sel(site=site)


def meaning(spec: dict, outcome: str, group: str) -> str:
    """What a formula says in the lecture's notation (mu_j, sigma, hyper_mu, between_variability), one
    sentence per term."""
    description = describe(spec["formula"])
    intercept = any(type(term).__name__ == "Intercept" for term in description.terms)
    family = FAMILIES[spec.get("family", "gaussian")].words
    parts = [
        f"y = {outcome} ~ {family} around its site's mean mu_j, with one sd sigma (within_variability) for all sites."
    ]
    for term in description.terms:
        kind = type(term).__name__
        if kind == "Intercept":
            parts.append("Intercept: the common mean (mu of complete pooling, hyper_mu of partial pooling).")
        elif kind == "GroupSpecificTerm" and type(term.expr).__name__ == "Intercept":
            factor = "".join(term.factor.var_names)
            parts.append(
                f"(1|{factor}): site offsets ~ N(0, 1|{factor}_sigma), so 1|{factor}_sigma is between_variability and "
                + (
                    f"mu_j = Intercept + (1|{factor})[j]: partial pooling."
                    if intercept
                    else f"mu_j = (1|{factor})[j]: the site means are pooled towards 0, not towards a mean learnt "
                    "from the data (the lecture's exercise)."
                )
            )
        elif kind == "GroupSpecificTerm":
            factor = "".join(term.factor.var_names)
            parts.append(f"({term.expr.name}|{factor}): each {factor} its own slope of {term.expr.name}, pooled.")
        elif term.var_names == {group}:
            parts.append(f"C({group}): mu_j, one independent mean per site (no pooling of means; sigma is shared).")
        else:
            parts.append(f"{term.name}: a covariate with one coefficient for all sites.")
    return " ".join(parts)
