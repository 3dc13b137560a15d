"""Posterior predictive draws of every observed row of one selection under one model."""

import xarray as xr

from hbm import io, pointwise


def posterior_predictive(data_path, posterior_path, out_path, name: str, selection: str, config: dict, log_path=None):
    log = io.setup_logging(log_path)
    data = io.read_grouped(data_path, config["outcome"], config["group"])
    posterior = io.read_tree(posterior_path)["posterior"].to_dataset()
    seed = int(posterior.attrs["seed"])
    predictive = pointwise.posterior_predictive(
        posterior,
        name,
        data,
        io.rng_for(seed, selection, name, "posterior_predictive"),
        config["storage"]["max_values"],
    )
    attrs = io.provenance(config, model=name, selection=selection, seed=seed, thinning=predictive.attrs["thinning"])
    tree = xr.DataTree.from_dict(
        {
            "posterior_predictive": predictive.assign_attrs(attrs),
            "observed_data": xr.Dataset({"y_est": ("obs_id", data.y)}, coords={"obs_id": data.obs_id}),
        }
    )
    tree.attrs.update(attrs)
    io.write_tree(tree, out_path)
    log.info(
        "%d draws x %d rows (every %d-th draw)",
        predictive.sizes["chain"] * predictive.sizes["draw"],
        len(data.y),
        predictive.attrs["thinning"],
    )
    return tree


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821
    io.run_step(
        posterior_predictive,
        sm.input.data,
        sm.input.posterior,
        sm.output[0],
        sm.wildcards.model,
        sm.wildcards.selection,
        sm.config,
        sm.log[0],
    )
