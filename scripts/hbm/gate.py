"""The convergence gate's verdict across a run, and the likely cause of a failure where it can be told."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from hbm.data import Grouped
from hbm.models import SCALE_PARAMETERS


def prior_tail(spec: dict, value: float) -> float:
    """P(parameter > value) under a config scale prior."""
    if spec["dist"] == "Exponential":
        return math.exp(-spec["lam"] * value)
    if spec["dist"] == "HalfNormal":
        return math.erfc(value / (spec["sigma"] * math.sqrt(2)))
    return 1 - 2 / math.pi * math.atan(value / spec["beta"])


def prior_conflicts(priors: dict, data: Grouped) -> list[str]:
    """Priors that put almost no mass where the data are: a location prior more than 4 of its sds from
    the data's mean, or a scale prior with less than 0.1% of its mass above the data's sd."""
    mean, sd = float(np.mean(data.y)), float(np.std(data.y))
    found = []
    for name, spec in priors.items():
        if name not in SCALE_PARAMETERS and abs(mean - spec["mu"]) > 4 * spec["sigma"]:
            found.append(
                f"the prior of {name} (centre {spec['mu']:g}, scale {spec['sigma']:g}) "
                f"is far from the data's mean {mean:.3g}"
            )
        if name in ("sigma", "within_variability") and sd > 0 and prior_tail(spec, sd) < 1e-3:
            found.append(
                f"the prior of {name} puts {prior_tail(spec, sd):.1e} of its mass above the data's sd {sd:.3g}"
            )
    return found


def likely_causes(failures: list[str], parameterization: str, data: Grouped, priors: dict, settings: dict, gate: dict):
    """One line per cause the workflow can tell of a failed gate (empty where it cannot tell)."""
    if not failures:
        return []
    causes = []
    kept = settings["draws"] * settings["chains"]
    if kept < 4 * gate["min_ess"] or settings["tune"] < 100:
        causes.append(
            f"too few draws for the gate: {settings['chains']} chains x {settings['draws']} draws after "
            f"{settings['tune']} tuning steps, against min_ess {gate['min_ess']:g}; raise sampling.draws and tune"
        )
    tiny = [site for site, n in zip(data.sites, data.n) if n <= 2]
    flagged_sites = {failure.split("[", 1)[1].split("]", 1)[0] for failure in failures if "[" in failure}
    if tiny and (flagged_sites & set(tiny) or any("divergent" in failure for failure in failures)):
        shown = ", ".join(tiny[:5]) + (f" and {len(tiny) - 5} more" if len(tiny) > 5 else "")
        causes.append(f"{len(tiny)} groups with one or two rows ({shown})")
    if parameterization in ("centered", "noncentered") and any("divergent" in failure for failure in failures):
        causes.append(f"the {parameterization} parameterization diverges on such data: use parameterization: marginal")
    return causes + prior_conflicts(priors, data)


def failed_fits(tables) -> list[str]:
    """Each fit that failed the gate, from (selection, its convergence.csv or formula_convergence.csv)
    pairs: the model, selection, failures and likely cause."""
    lines = []
    for selection, path in tables:
        table = pd.read_csv(path, keep_default_na=False)
        for row in table[~table["passed"]].itertuples():
            cause = f"\n    likely cause: {row.likely_cause}" if row.likely_cause else ""
            lines.append(f"{row.model} on {selection}: {row.failures}{cause}")
    return lines
