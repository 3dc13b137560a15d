"""The convergence gate's verdict across a run, and the likely cause of a failure where it can be told."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from hbm.config import describe_prior
from hbm.data import Grouped
from hbm.models import SCALE_PARAMETERS

FAR = 3.17e-5  # a Normal's mass beyond 4 sds on one side


def prior_conflicts(priors: dict, data: Grouped) -> list[str]:
    """Priors that put almost no mass where the data are: a location prior with less mass beyond the
    data's mean than a Normal has beyond 4 sds, or a scale prior with less than 0.1% of its mass
    above the data's sd."""
    from hbm.priors import distribution

    mean, sd = float(np.mean(data.y)), float(np.std(data.y))
    found = []
    for name, spec in priors.items():
        prior = distribution(spec)
        if name not in SCALE_PARAMETERS:
            beyond = float(min(prior.cdf(mean), prior.sf(mean)))
            if beyond < FAR:
                found.append(
                    f"the prior of {name} ({describe_prior(spec)}) is far from the data's mean {mean:.3g}: "
                    f"it puts {beyond:.1e} of its mass beyond it"
                )
        if name in ("sigma", "within_variability") and sd > 0 and float(prior.sf(sd)) < 1e-3:
            found.append(f"the prior of {name} puts {float(prior.sf(sd)):.1e} of its mass above the data's sd {sd:.3g}")
    return found


def likely_causes(
    failures: list[str], parameterization: str, data: Grouped, priors: dict, settings: dict, gate: dict, offered=()
):
    """One line per cause the workflow can tell of a failed gate (empty where it cannot tell);
    `offered`: the model's parameterizations, of which the advice names only those it has."""
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
    if parameterization != "marginal" and "marginal" in offered and any("divergent" in f for f in failures):
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


def sites_left_out(tables, shown: int = 20) -> list[str]:
    """Each fit that left sites out (`hbm.data.model_data`), from (selection, its convergence.csv) pairs:
    the model, selection and the sites (the first `shown` of them)."""
    lines = []
    for selection, path in tables:
        table = pd.read_csv(path, keep_default_na=False)
        for row in table.itertuples():
            sites = json.loads(row.sites_left_out)
            if sites:
                listed = ", ".join(map(repr, sites[:shown])) + (
                    f" and {len(sites) - shown} more" if len(sites) > shown else ""
                )
                lines.append(
                    f"{row.model} on {selection}: fitted without {len(sites)} sites whose rows are all equal "
                    f"(their own sd has no proper posterior): {listed}"
                )
    return lines
