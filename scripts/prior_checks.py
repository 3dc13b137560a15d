"""What the priors say before the data, and how much they drive the answer: each model's prior
predictive distribution against the data (table of quantiles, figure), and power-scaling prior and
likelihood sensitivity (Kallioinen et al. 2024, ArviZ's `psense_summary`) with its diagnosis."""

import numpy as np
import pandas as pd

from hbm import criticism, io

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
PREDICTIVE_COLUMNS = ["model", *(f"q{round(100 * q):02d}" for q in QUANTILES), "data_inside_99", "conflict"]
SENSITIVITY_COLUMNS = ["model", "parameter", "prior", "likelihood", "diagnosis", "fit_passed"]


def prior_checks(posterior_paths, models: list, outputs: dict, selection: str, settings: dict, log_path=None):
    """`outputs`: the rule's named outputs (predictive, sensitivity, figure)."""
    log = io.setup_logging(log_path)
    groups = ["posterior", "log_likelihood", "log_prior", "observed_data", "prior_predictive"]
    trees = {name: io.read_tree(path, groups) for name, path in zip(models, posterior_paths)}
    # every row of the selection: a model may leave sites out (hbm.data.model_data)
    observed = max(trees.values(), key=lambda tree: tree["observed_data"].sizes["obs_id"])["observed_data"][
        "y_est"
    ].values
    predictive = pd.DataFrame(
        [data_quantiles(observed)] + [prior_predictive_row(name, tree, observed) for name, tree in trees.items()],
        columns=PREDICTIVE_COLUMNS,
    )
    sensitivity = pd.concat([sensitivity_rows(name, tree) for name, tree in trees.items()], ignore_index=True)
    for message in criticism.prior_warnings(predictive, sensitivity, settings["outcome"]):
        log.warning("%s: %s", selection, message)
    from hbm import plotting

    plotting.style(settings["plots"])
    figure = plotting.prior_predictive(
        {name: tree["prior_predictive"]["y_est"].values.ravel() for name, tree in trees.items()},
        observed,
        predictive.set_index("model"),
        f"Prior predictive distributions against the data ({selection})",
        settings["outcome"],
        settings["plots"],
    )
    io.write_csv(predictive, outputs["predictive"])
    io.write_csv(sensitivity, outputs["sensitivity"])
    plotting.save(figure, outputs["figure"])


def data_quantiles(observed) -> dict:
    return {"model": "data", **dict(zip(PREDICTIVE_COLUMNS[1:], np.quantile(observed, QUANTILES)))}


def prior_predictive_row(name: str, tree, observed) -> dict:
    """Quantiles of the prior predictive distribution of one row, and the share of the observed rows
    inside its central 99% interval: a conflict where that is less than half."""
    draws = tree["prior_predictive"]["y_est"].values.ravel()
    values = np.quantile(draws, QUANTILES)
    inside = float(((observed >= values[0]) & (observed <= values[-1])).mean())
    return {
        "model": name,
        **dict(zip(PREDICTIVE_COLUMNS[1:], values)),
        "data_inside_99": inside,
        "conflict": inside < 0.5,
    }


def sensitivity_rows(name: str, tree) -> pd.DataFrame:
    """ArviZ's power-scaling sensitivity of every parameter to the prior and to the likelihood."""
    from arviz_stats import psense_summary

    table = psense_summary(tree, round_to=4).rename_axis("parameter").reset_index()
    passed = not io.recorded_failures(tree)
    return table.assign(model=name, fit_passed=passed)[SENSITIVITY_COLUMNS]


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821
    io.run_step(
        prior_checks,
        list(sm.input.posteriors),
        sm.params.models,
        dict(sm.output.items()),
        sm.wildcards.selection,
        sm.params.settings,
        sm.log[0],
    )
