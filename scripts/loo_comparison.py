"""PSIS-LOO comparison of one selection's models, with each model's Pareto k diagnostics and remedy."""

import numpy as np

from hbm import io
from hbm import loo as hloo
from hbm.data import model_data


def loo_comparison(
    data_path, posteriors: dict, out_path, settings: dict, formulas: dict | None = None, source=None, log_path=None
):
    """`posteriors`: model -> NetCDF with the posterior and its `pointwise_level` attribute; `formulas`:
    formula -> NetCDF, joined where they are comparable (fitted to every row, left out one row at a time);
    `source`: the data file, for the other columns the formulas use."""
    log = io.setup_logging(log_path)
    data = io.read_grouped(data_path, settings["outcome"], settings["group"])
    own = {name: model_data(data, name) for name in posteriors}
    left_out = set().union(*(sites for _, sites in own.values()))
    common = data.dropping(left_out)
    for name, (_, sites) in own.items():
        if sites:
            log.info("%s was fitted without %d sites whose rows are all equal", name, len(sites))
    if left_out:
        log.info(
            "every model is compared on the %d rows of the %d sites they all were fitted to",
            common.y.size,
            len(common.sites),
        )
    results, facts = {}, []
    for name, path in posteriors.items():
        tree = io.read_tree(path, ["posterior"])
        level = tree.attrs["pointwise_level"]
        keep = None if not left_out else common.obs_id if level == "rows" else common.sites
        priors = settings["models"][name]["priors"]
        results[name], row = hloo.model_loo(tree, name, own[name][0], priors, level, keep)
        facts.append(row)
        log.info("%s: %s", name, row["remedy"])
    rows_left_out = all(row["left_out"] == "one row" for row in facts)
    for name, path in (formulas or {}).items():
        tree = io.read_tree(path, ["posterior", "log_likelihood"])
        if not rows_left_out or not np.array_equal(tree["log_likelihood"]["obs_id"].values, data.obs_id):
            why = "the models leave out whole sites" if not rows_left_out else "it was fitted to fewer rows"
            log.info("%s: left out of the comparison, as %s", name, why)
            continue
        rows = integrated(name, tree, data_path, source, settings)
        results[name], row = hloo.formula_loo(tree, name, rows, common.obs_id if left_out else None)
        facts.append(row)
        log.info("%s: %s", name, row["remedy"])
    table = hloo.comparison(results, facts)
    io.write_csv(table, out_path)
    if not table["reliable"].all():
        log.warning("PSIS-LOO is not reliable for %s", ", ".join(table.loc[~table["reliable"], "model"]))
    log.info("compared %d models by PSIS-LOO", len(table))


def integrated(name: str, tree, data_path, source, settings: dict):
    """positions -> the log-likelihoods of formula `name`'s rows at them with their site's effects
    integrated out (`formulas.loo_log_likelihood`, the formula rebuilt on its rows), or None where the
    formula has no such density."""
    from hbm import formulas as hformulas

    outcome, group, spec = settings["outcome"], settings["group"], settings["formulas"][name]
    if not hformulas.has_new_site_density(spec, group):
        return None

    def rows(positions):
        frame, _ = hformulas.frame_for(
            source, hformulas.read_rows(data_path, group), spec["formula"], outcome, group, settings.get("reading")
        )
        model = hformulas.build(spec, frame, settings["models"], group)
        posterior = tree["posterior"].to_dataset().drop_vars(hformulas.SITE_MEAN, errors="ignore")
        return hformulas.loo_log_likelihood(model, spec, posterior, frame, positions, outcome, group)

    return rows


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821
    io.run_step(
        loo_comparison,
        sm.input.data,
        dict(zip(sm.params.settings["models"], sm.input.posteriors)),
        sm.output[0],
        sm.params.settings,
        dict(zip(sm.params.formulas, sm.input.formulas)),
        sm.input.get("source"),
        sm.log[0],
    )
