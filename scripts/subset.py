"""Check the data against the config, then write one selection's rows (site order as configured)."""

from hbm import data as hdata
from hbm import io


def subset(data_path, out_path, selection: str, settings: dict, log_path=None):
    log = io.setup_logging(log_path)
    outcome, group = settings["outcome"], settings["group"]
    frame = hdata.read_table(data_path, outcome, group, settings.get("reading"))
    config = {**settings, "selections": {selection: settings["sites"]}}
    sites = hdata.check_config_against_data(config, frame, str(data_path))[selection]
    rows, dropped = hdata.subset(frame, outcome, group, sites)
    log.info(
        "selection %s: %d rows in %d sites; dropped %d rows with a missing %s",
        selection,
        len(rows),
        len(sites),
        dropped,
        outcome,
    )
    for site, count in rows[group].value_counts(sort=False).items():
        log.info("  %s: %d rows", site, count)
    io.write_csv(rows, out_path)
    return rows


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821
    io.run_step(subset, sm.input.data, sm.output[0], sm.wildcards.selection, sm.params.settings, sm.log[0])
