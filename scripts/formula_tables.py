"""Tables of one selection's formula models: per formula its summary and PPC intervals, then each
formula's convergence verdict, the cross-check of every formula against the model it translates, and
the coverage of the new sites the formulas predict, beside the population model's."""

import pandas as pd

from hbm import formulas, io
from hbm import tables as t
from hbm.data import Grouped

CROSSCHECK_COLUMNS = ["formula", "quantity", "model", "formula_mean", "model_mean", "difference", "mcse", "z", "passed"]
Z_LIMIT = 4  # |z| above this: the two fits of one model disagree beyond Monte Carlo error


def formula_tables(
    posteriors: dict,
    predictives: dict,
    model_posteriors: dict,
    outputs: dict,
    settings: dict,
    predictions: dict | None = None,
    log_path=None,
):
    """`posteriors`/`predictives`: formula -> NetCDF; `model_posteriors`: model -> NetCDF; `predictions`:
    (model or formula, new site) -> NetCDF of its predictions, the population model's first; `outputs`:
    the rule's named outputs (summary_{formula}, ppc_{formula}, crosscheck, convergence and, with
    predictions, new_site_coverage)."""
    log = io.setup_logging(log_path)
    group = settings["group"]
    trees = {
        name: io.read_tree(path, ["posterior", "observed_data", "constant_data"]) for name, path in posteriors.items()
    }
    tables, checks = {}, []
    for name, tree in trees.items():
        rows = _grouped(tree)
        tables[f"summary_{name}"] = t.posterior_summary(tree["posterior"].to_dataset(), rows)
        predictive = io.read_tree(predictives[name], ["posterior_predictive"])["posterior_predictive"]["y_est"]
        tables[f"ppc_{name}"] = t.ppc_intervals(predictive, rows)
        model = settings["formulas"][name].get("priors", "default")
        if model in model_posteriors:
            ours = io.read_tree(model_posteriors[model], ["posterior"])["posterior"].to_dataset()
            checks.append(formulas.crosscheck(name, tree["posterior"].to_dataset(), model, ours, group))
    crosscheck = pd.concat(checks, ignore_index=True) if checks else pd.DataFrame(columns=CROSSCHECK_COLUMNS[:-1])
    crosscheck["passed"] = crosscheck["z"].abs() <= Z_LIMIT
    tables["crosscheck"] = crosscheck
    tables["convergence"] = t.convergence(trees, crosscheck_failures(crosscheck))
    if predictions:
        tables["new_site_coverage"] = new_site_coverage(predictions)
    io.write_outputs(tables.items(), outputs, io.write_csv)
    for row in crosscheck[~crosscheck["passed"]].itertuples():
        log.warning("%s disagrees with %s on %s: z = %.1f", row.formula, row.model, row.quantity, row.z)
    log.info("wrote the tables of %d formulas; %d cross-checked quantities", len(trees), len(crosscheck))
    return tables


def new_site_coverage(predictions: dict) -> pd.DataFrame:
    """`new_site_coverage` per (model or formula, new site), one row each, named in column `model`."""
    rows = [t.new_site_coverage(site, io.read_tree(path)) for (_, site), path in predictions.items()]
    return pd.concat(rows, ignore_index=True).assign(model=[name for name, _ in predictions])[
        ["model", *t.COVERAGE_COLUMNS]
    ]


def _grouped(tree) -> Grouped:
    """The rows a formula was fitted to (its observed and constant data)."""
    constant = tree["constant_data"]
    return Grouped(
        y=tree["observed_data"]["y_est"].values,
        site_idx=constant["site_idx"].values,
        sites=[str(site) for site in constant["site"].values],
        obs_id=constant["obs_id"].values,
    )


def crosscheck_failures(crosscheck: pd.DataFrame) -> dict[str, list[str]]:
    """Each formula's failed cross-checks, as failures of the convergence gate."""
    failed = {}
    for row in crosscheck[~crosscheck["passed"]].itertuples():
        failed.setdefault(row.formula, []).append(f"cross-check with {row.model}: {row.quantity} z = {row.z:.1f}")
    return failed


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821
    io.run_step(
        formula_tables,
        dict(zip(sm.params.formulas, sm.input.posteriors)),
        dict(zip(sm.params.formulas, sm.input.predictives)),
        dict(zip(sm.params.models, sm.input.models)),
        dict(sm.output.items()),
        sm.params.settings,
        {(sm.params.population, site): path for site, path in zip(sm.params.new_sites, sm.input.population_predictions)}
        | {tuple(key.split("/")): path for key, path in zip(sm.params.predictions, sm.input.predictions)},
        sm.log[0],
    )
