"""PSIS-LOO comparison of one selection's models."""

from hbm import io
from hbm import tables as t


def loo_comparison(posteriors: dict, out_path, log_path=None):
    """`posteriors`: model -> NetCDF with a log_likelihood group."""
    log = io.setup_logging(log_path)
    table = t.loo_comparison({name: io.read_tree(path) for name, path in posteriors.items()})
    io.write_csv(table, out_path)
    log.info("compared %d models by PSIS-LOO", len(table))


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821
    io.run_step(loo_comparison, dict(zip(sm.config["models"], sm.input.posteriors)), sm.output[0], sm.log[0])
