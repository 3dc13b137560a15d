"""What a reader should check before trusting the run's numbers, on the report's front page: each fit
that failed the convergence gate (with its likely cause), each fit that left sites out, each model
whose priors disagree with the data, each model whose predictions are not calibrated, and each model
comparison that cannot be trusted as it stands. Written whatever the gate's verdict."""

import textwrap

import pandas as pd

from hbm import criticism, gate, io

CALIBRATION_LEVEL = 0.05  # LOO-PIT uniformity p-values below it are flagged


def findings(tables: list, out_path, priors=(), calibration=(), loo=(), logo=(), outcome="", log_path=None):
    """`tables`: (selection, its convergence.csv or formula_convergence.csv); `priors`: (selection, its
    prior_predictive.csv, its prior_sensitivity.csv); `calibration`: (selection, its loo_pit.csv);
    `loo`: (selection, its loo_comparison.csv); `logo`: (selection, its leave_one_site_out_comparison.csv).
    Empty `priors`, `calibration` or `logo`: that check was not run. Each finding is logged as a warning and
    written as an indented line (the gate step repeats the file at the end of the run where it has one)."""
    log = io.setup_logging(log_path)
    failed = gate.failed_fits(tables)
    left_out = gate.sites_left_out(tables)
    cautions = prior_cautions(priors, outcome)
    uncalibrated = calibration_cautions(calibration)
    checked, unchecked = calibration_coverage(calibration)
    untrusted = comparison_cautions(loo, logo)
    for line in failed + left_out + cautions + uncalibrated + untrusted:
        log.warning("%s", line)
    sections = [
        section(
            "Convergence gate (tables/convergence.csv, tables/formula_convergence.csv)",
            failed,
            "every fit passed",
            "FAILED, marked as failed wherever their results appear",
        ),
        section(
            "Sites left out of a model (tables/convergence.csv)",
            left_out,
            "every model was fitted to every site of its selection",
            "left sites out; models are compared on the rows they all were fitted to",
        ),
        section(
            "Priors (tables/prior_predictive.csv, tables/prior_sensitivity.csv)",
            cautions,
            f"no model's priors ({named(priors)}) disagree with the data; formulas' priors are not checked"
            if priors
            else "not checked (criticism.prior_checks: false)",
            "disagree with the data; formulas' priors are not checked",
        ),
        section(
            "Calibration (tables/loo_pit.csv, figures/loo_pit.png)",
            uncalibrated + unchecked,
            f"the LOO-PIT of every model ({checked}) is uniform (p >= {CALIBRATION_LEVEL}); formulas are not tested"
            if calibration
            else "not checked (criticism.calibration: false)",
            f"LOO-PIT departs from uniform (p < {CALIBRATION_LEVEL}) or was not tested; formulas are not tested",
        ),
        section(
            "Model comparison (tables/loo_comparison.csv, tables/leave_one_site_out_comparison.csv)",
            untrusted,
            f"every PSIS-LOO estimate ({named(loo)}) is reliable"
            + (
                f" and every leave-one-site-out fold ({named(logo)}) passed the gate"
                if logo
                else " (leave one site out not run)"
            ),
            "need care",
        ),
    ]
    sections.append(software())
    with io.atomic_path(out_path) as tmp:
        tmp.write_text("\n\n".join(sections) + "\n", encoding="utf-8")


def named(pairs, position: int = 0) -> str:
    """The models (and formulas) a check covered, from (selection, its table, ...) pairs: the table at
    `position` among the files, with a `model` column ('data' rows aside): "all: a, b; first5: a"."""
    covered = []
    for selection, *paths in pairs:
        names = pd.read_csv(paths[position], keep_default_na=False)["model"]
        covered.append(f"{selection}: {', '.join(dict.fromkeys(name for name in names if name != 'data'))}")
    return "; ".join(covered) or "none"


def software() -> str:
    """One line naming the workflow's version and the library versions that produced the run."""
    found = io.versions()
    libraries = ", ".join(f"{name} {version}" for name, version in found.items() if name != "workflow")
    return f"Produced by {io.project()['name']} {found['workflow']} ({libraries})."


def section(title: str, lines: list[str], if_none: str, if_any: str) -> str:
    if not lines:
        return f"{title}: {if_none}."
    return f"{title}: {if_any} ({len(lines)}):\n" + textwrap.indent("\n".join(lines), "  ")


def prior_cautions(priors, outcome: str) -> list[str]:
    """Every selection's prior warnings (`criticism.prior_warnings`), each line naming the selection."""
    lines = []
    for selection, predictive, sensitivity in priors:
        found = criticism.prior_warnings(pd.read_csv(predictive), pd.read_csv(sensitivity), outcome)
        lines += [f"{selection}: {line}" for line in found]
    return lines


def calibration_cautions(calibration) -> list[str]:
    """Each model of each selection whose LOO-PIT uniformity test has p below `CALIBRATION_LEVEL`."""
    lines = []
    for selection, path in calibration:
        table = pd.read_csv(path, keep_default_na=False)
        p = pd.to_numeric(table["uniformity_p"], errors="coerce")
        for row, value in zip(table[p < CALIBRATION_LEVEL].itertuples(), p[p < CALIBRATION_LEVEL], strict=True):
            note = f" ({row.note})" if row.note else ""
            lines.append(f"{selection}: {row.model}: p = {value:.2g}{note}")
    return lines


def calibration_coverage(calibration) -> tuple[str, list[str]]:
    """The models whose LOO-PIT was tested (selection: models), and a line for each model it was not, with why."""
    checked, unchecked = [], []
    for selection, path in calibration:
        table = pd.read_csv(path, keep_default_na=False)
        tested = pd.to_numeric(table["uniformity_p"], errors="coerce").notna()
        checked.append(f"{selection}: {', '.join(table.loc[tested, 'model'])}" if tested.any() else "")
        unchecked += [f"{selection}: {row.model}: not tested ({row.note})" for row in table[~tested].itertuples()]
    return "; ".join(filter(None, checked)) or "none", unchecked


def comparison_cautions(loo, logo) -> list[str]:
    """Each model whose PSIS-LOO estimate is not reliable (Pareto k above ArviZ's threshold even after
    the remedy) and each model with leave-one-site-out folds that failed the convergence gate."""
    lines = []
    for selection, path in loo:
        table = pd.read_csv(path, keep_default_na=False)
        for row in table[table["reliable"].astype(str).str.lower() != "true"].itertuples():
            lines.append(
                f"{selection}: {row.model}: PSIS-LOO not reliable ({row.unreliable} rows with Pareto k above "
                f"{row.k_threshold} after the remedy: {row.remedy})"
            )
    for selection, path in logo:
        table = pd.read_csv(path)
        for row in table[table["failed_folds"] > 0].itertuples():
            lines.append(
                f"{selection}: {row.model}: {row.failed_folds} of {row.sites} leave-one-site-out folds failed "
                "the convergence gate (tables/leave_one_site_out.csv)"
            )
    return lines


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821
    io.run_step(
        findings,
        list(zip(sm.params.tables_of, sm.input.tables)),
        sm.output[0],
        list(zip(sm.params.selections_with_priors, sm.input.prior_predictive, sm.input.prior_sensitivity)),
        list(zip(sm.params.selections_with_calibration, sm.input.calibration)),
        list(zip(sm.params.selections, sm.input.loo)),
        list(zip(sm.params.selections_leaving_sites_out, sm.input.logo)),
        sm.params.outcome,
        sm.log[0],
    )
