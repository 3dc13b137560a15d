"""Leave one site out, summarised: every fold's row, the comparison of models by elpd_logo, and the
figure of each site's observed mean against its predictive interval."""

import pandas as pd

from hbm import criticism, io, plotting


def summarise(fold_paths: list, outputs: dict, selection: str, settings: dict, log_path=None):
    """`outputs`: the rule's named outputs (table, comparison, figure)."""
    log = io.setup_logging(log_path)
    folds = pd.concat([pd.read_csv(path, keep_default_na=False, dtype={"site": str}) for path in fold_paths])
    folds = folds.reset_index(drop=True)
    comparison = criticism.comparison(folds)
    plotting.style(settings["plots"])
    title = f"Each site predicted by the models fitted without it ({selection})"
    figure = plotting.held_out_sites(folds, settings["outcome"], title, settings["plots"])
    io.write_csv(folds, outputs["table"])
    io.write_csv(comparison, outputs["comparison"])
    plotting.save(figure, outputs["figure"])
    failed = folds[~folds["passed"].astype(bool)]
    for row in failed.itertuples():
        log.warning("%s without %s failed the convergence gate: %s", row.model, row.site, row.failures)
    log.info("%d folds of %s; comparison:\n%s", folds["site"].nunique(), selection, comparison.to_string(index=False))


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821
    io.run_step(
        summarise, list(sm.input.folds), dict(sm.output.items()), sm.wildcards.selection, sm.params.settings, sm.log[0]
    )
