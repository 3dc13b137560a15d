"""One fold of leave one site out: fit each model that predicts new sites (and each formula the config
leaves sites out of) to the selection without one of its sites, and predict that site's rows as a new
site, as Zurich is predicted. A formula that is one of those models (its priors name the model) is
scored by that model's fit, not fitted again."""

import pandas as pd

from hbm import io


def leave_one_site_out(
    data_path, out_path, site: str, selection: str, settings: dict, compiledir=None, source=None, log_path=None
):
    """`data_path`: the selection's rows; `source`: the data file, for the other columns formulas use."""
    log = io.setup_logging(log_path)
    io.load_modelling(compiledir)
    from hbm import criticism, formulas

    data = io.read_grouped(data_path, settings["outcome"], settings["group"])
    rest, held_out = data.without(site)
    log.info(
        "%s without %s: %d rows in %d sites; %d rows held out",
        selection,
        site,
        len(rest.y),
        len(rest.sites),
        held_out.size,
    )
    rows = [criticism.fold(name, rest, held_out, site, selection, settings) for name in settings["models"]]
    by_model = {row["model"]: row for row in rows}
    refitted = any("scored_by" not in spec for spec in settings["formulas"].values())
    table = formulas.read_rows(data_path, settings["group"]) if refitted else None
    for name, spec in settings["formulas"].items():
        if "scored_by" in spec:  # the formula is that model (its priors): the model's fit scores it
            rows.append(by_model[spec["scored_by"]] | {"model": name})
        else:
            rows.append(criticism.formula_fold(name, source, table, site, selection, settings))
    for row in rows:
        name = row["model"]
        log.info(
            "%s: lpd %.3f (MCSE %.3f), coverage %.2f, %s",
            name,
            row["lpd"],
            row["lpd_mcse"],
            row["coverage_95"],
            row["failures"],
        )
        if not row["passed"]:
            log.warning("%s without %s failed the convergence gate: %s", name, site, row["failures"])
    io.write_csv(pd.DataFrame(rows, columns=criticism.FOLD_COLUMNS), out_path)


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821
    io.run_step(
        leave_one_site_out,
        sm.input.data,
        sm.output[0],
        sm.wildcards.held_out,
        sm.wildcards.selection,
        sm.params.settings,
        sm.params.compiledir,
        sm.input.get("source"),
        sm.log[0],
    )
