"""Tables of one selection's formula models: per formula its summary and PPC intervals, then each
formula's convergence verdict and the cross-check of every formula against the model it translates."""

import pandas as pd

from hbm import formulas, io
from hbm import tables as t
from hbm.data import Grouped

CROSSCHECK_COLUMNS = ["formula", "quantity", "model", "formula_mean", "model_mean", "difference", "mcse", "z", "passed"]
Z_LIMIT = 4  # |z| above this: the two fits of one model disagree beyond Monte Carlo error


def formula_tables(
    posteriors: dict, predictives: dict, model_posteriors: dict, outputs: dict, settings: dict, log_path=None
):
    """`posteriors`/`predictives`: formula -> NetCDF; `model_posteriors`: model -> NetCDF; `outputs`: the
    rule's named outputs (summary_{formula}, ppc_{formula}, crosscheck, convergence)."""
    log = io.setup_logging(log_path)
    group = settings["group"]
    trees = {name: io.read_tree(path) for name, path in posteriors.items()}
    tables, checks = {}, []
    for name, tree in trees.items():
        rows = _grouped(tree)
        tables[f"summary_{name}"] = t.posterior_summary(tree["posterior"].to_dataset(), rows)
        predictive = io.read_tree(predictives[name])["posterior_predictive"]["y_est"]
        tables[f"ppc_{name}"] = t.ppc_intervals(predictive, rows)
        model = settings["formulas"][name].get("priors", "default")
        if model in model_posteriors:
            ours = io.read_tree(model_posteriors[model])["posterior"].to_dataset()
            checks.append(formulas.crosscheck(name, tree["posterior"].to_dataset(), model, ours, group))
    crosscheck = pd.concat(checks, ignore_index=True) if checks else pd.DataFrame(columns=CROSSCHECK_COLUMNS[:-1])
    crosscheck["passed"] = crosscheck["z"].abs() <= Z_LIMIT
    tables["crosscheck"] = crosscheck
    tables["convergence"] = t.convergence(trees, crosscheck_failures(crosscheck))
    io.write_outputs(tables.items(), outputs, io.write_csv)
    for row in crosscheck[~crosscheck["passed"]].itertuples():
        log.warning("%s disagrees with %s on %s: z = %.1f", row.formula, row.model, row.quantity, row.z)
    log.info("wrote the tables of %d formulas; %d cross-checked quantities", len(trees), len(crosscheck))
    return tables


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
        sm.log[0],
    )
