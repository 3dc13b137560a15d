"""The convergence gate over the whole run, after every other step: each model that failed it, in
every selection, with the parameter, value and likely cause. Under `on_failure: stop` the run then
ends non-zero; everything else has been written by then. Models whose priors disagree with the data
are named too, as warnings."""

import pandas as pd

from hbm import criticism, io
from hbm.errors import ConvergenceError


def convergence_gate(tables: list, out_path, on_failure: str, priors=(), outcome="", log_path=None):
    """`tables`: (selection, its convergence.csv or formula_convergence.csv); `priors`: (selection, its
    prior_predictive.csv, its prior_sensitivity.csv); writes the verdict to `out_path` unless it stops."""
    log = io.setup_logging(log_path)
    cautions = prior_cautions(priors, outcome)
    for line in cautions:
        log.warning("%s", line)
    lines = []
    for selection, path in tables:
        table = pd.read_csv(path, keep_default_na=False)
        for row in table[~table["passed"]].itertuples():
            cause = f"\n    likely cause: {row.likely_cause}" if row.likely_cause else ""
            lines.append(f"{row.model} on {selection}: {row.failures}{cause}")
    if lines and on_failure == "stop":
        raise ConvergenceError(
            f"{len(lines)} fit(s) failed the convergence gate (every other result was written; "
            "set convergence.on_failure: warn to accept them):\n  " + "\n  ".join(lines)
        )
    verdict = "\n".join(["failed the convergence gate (on_failure: warn):", *lines]) if lines else "every fit passed"
    for line in lines:
        log.warning("%s", line)
    if cautions:
        verdict += "\n\npriors that disagree with the data (see tables/prior_*.csv):\n" + "\n".join(cautions)
    with io.atomic_path(out_path) as tmp:
        tmp.write_text(verdict + "\n", encoding="utf-8")


def prior_cautions(priors, outcome: str) -> list[str]:
    """Every selection's prior warnings (`criticism.prior_warnings`), each line naming the selection."""
    lines = []
    for selection, predictive, sensitivity in priors:
        found = criticism.prior_warnings(pd.read_csv(predictive), pd.read_csv(sensitivity), outcome)
        lines += [f"{selection}: {line}" for line in found]
    return lines


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821
    io.run_step(
        convergence_gate,
        list(zip(sm.params.selections, sm.input.tables)),
        sm.output[0],
        sm.params.on_failure,
        list(zip(sm.params.selections_with_priors, sm.input.prior_predictive, sm.input.prior_sensitivity)),
        sm.params.outcome,
        sm.log[0],
    )
