"""The convergence gate over the whole run, after every other step: under `on_failure: stop` a run with
a fit that failed the gate ends here, non-zero, naming each failed model, selection, parameter, value
and likely cause; everything else, the findings included, has been written by then. Where the
findings flag anything, they are repeated here, so a run ends with them."""

from pathlib import Path

from hbm import gate, io
from hbm.errors import ConvergenceError


def convergence_gate(tables: list, out_path, on_failure: str, findings_path=None, log_path=None):
    """`tables`: (selection, its convergence.csv or formula_convergence.csv); writes the verdict to
    `out_path` unless it stops. `findings_path`: the run's findings (results/findings.txt)."""
    log = io.setup_logging(log_path)
    findings = Path(findings_path).read_text(encoding="utf-8") if findings_path else ""
    if any(line.startswith("  ") for line in findings.splitlines()):  # each finding is an indented line
        log.warning("findings of this run (results/findings.txt):\n%s", findings.rstrip())
    lines = gate.failed_fits(tables)
    if lines and on_failure == "stop":
        raise ConvergenceError(
            f"{len(lines)} fit(s) failed the convergence gate (every other result was written; "
            "set convergence.on_failure: warn to accept them):\n  " + "\n  ".join(lines)
        )
    verdict = "\n".join(["failed the convergence gate (on_failure: warn):", *lines]) if lines else "every fit passed"
    with io.atomic_path(out_path) as tmp:
        tmp.write_text(verdict + "\n", encoding="utf-8")


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821
    io.run_step(
        convergence_gate,
        list(zip(sm.params.selections, sm.input.tables)),
        sm.output[0],
        sm.params.on_failure,
        sm.input.findings,
        sm.log[0],
    )
