"""Calibration of each model's predictions: LOO-PIT values (ArviZ's PSIS-LOO probability integral
transform) per row, their uniformity test, and one figure with the models side by side."""

import numpy as np
import pandas as pd
import xarray as xr

from hbm import io

CALIBRATION_COLUMNS = ["model", "rows", "uniformity_p", "pit_mean", "below_2.5%", "above_97.5%", "outside_95%", "note"]


def calibration(
    posterior_paths, predictive_paths, models: list, outputs: dict, selection: str, settings: dict, log_path=None
):
    """`outputs`: the rule's named outputs (table, figure)."""
    log = io.setup_logging(log_path)
    rows, pits = [], {}
    for name, posterior_path, predictive_path in zip(models, posterior_paths, predictive_paths):
        posterior = io.read_tree(posterior_path, ["posterior", "log_likelihood", "observed_data"])
        pit, note = loo_pit(posterior, io.read_tree(predictive_path, ["posterior_predictive"]))
        rows.append(summary(name, pit, note))
        if pit is not None:
            pits[name] = (pit, note)
        log.info("%s: %s", name, rows[-1])
    io.write_csv(pd.DataFrame(rows, columns=CALIBRATION_COLUMNS), outputs["table"])
    from hbm import plotting

    plotting.style(settings["plots"])
    plotting.save(figure(pits, selection, settings["plots"]), outputs["figure"])


def loo_pit(tree: xr.DataTree, predictive: xr.DataTree):
    """ArviZ's LOO-PIT of every row (Pareto-smoothed PIT, as its plot uses), or None and why not:
    it needs the log-likelihood per row and every posterior draw's prediction."""
    from arviz_stats import loo_pit as arviz_loo_pit

    if tree.attrs["pointwise_level"] != "rows":
        return None, "log-likelihood stored per site (storage.pointwise), not per row"
    if predictive.attrs.get("thinning", "1") != "1":
        return None, "posterior predictive thinned (storage.max_values)"
    data = xr.DataTree.from_dict(
        {
            "posterior": tree["posterior"].to_dataset(),
            "log_likelihood": tree["log_likelihood"].to_dataset(),
            "posterior_predictive": predictive["posterior_predictive"].to_dataset(),
            "observed_data": tree["observed_data"].to_dataset(),
        }
    )
    pit = arviz_loo_pit(data, pareto_pit=True)["y_est"].reset_coords(drop=True)
    pit = pit.assign_coords(obs_id=tree["observed_data"]["obs_id"].values)  # the data's rows, as the figure joins them
    undefined = int((~np.isfinite(pit.values)).sum())
    if undefined:
        return None, f"LOO-PIT undefined for {undefined} rows (too few or degenerate draws)"
    return pit, "the fit FAILED the convergence gate: read with care" if io.recorded_failures(tree) else ""


def summary(name: str, pit, note: str) -> dict:
    """ArviZ's uniformity test of the PIT values (method pot_c, as in its plot), their mean (0.5 when
    calibrated) and the shares in the tails (2.5% each, 5% together when calibrated)."""
    if pit is None:
        return {"model": name, "note": note}
    values = pit.values
    return {
        "model": name,
        "rows": values.size,
        "uniformity_p": float(pit.azstats.uniformity_test(dim="obs_id", method="pot_c")[0]),
        "pit_mean": float(values.mean()),
        "below_2.5%": float((values < 0.025).mean()),
        "above_97.5%": float((values > 0.975).mean()),
        "outside_95%": float(((values < 0.025) | (values > 0.975)).mean()),
        "note": note,
    }


def figure(pits: dict, selection: str, options: dict):
    """ArviZ's PIT Δ-ECDF plot with its uniformity test, one panel per model; `pits`: model -> (its
    LOO-PIT values, a note where its fit failed the convergence gate)."""
    import arviz_plots as azp
    import matplotlib.pyplot as plt
    from arviz_base import convert_to_datatree

    from hbm import plotting

    if not pits:
        fig, ax = plt.subplots(figsize=options["wide_figsize"], layout="constrained")
        ax.set_axis_off()
        ax.text(0.5, 0.5, f"LOO-PIT ({selection}): no model could be tested; see loo_pit.csv", ha="center")
        return fig
    labels = [plotting.model_label(name, [note] if note else None) for name, (_, note) in pits.items()]
    # models side by side on the rows they all were fitted to (a model may leave sites out)
    values = xr.concat([pit for pit, _ in pits.values()], "model", join="inner").assign_coords(model=labels)
    shared, most = values.sizes["obs_id"], max(pit.sizes["obs_id"] for pit, _ in pits.values())
    rows = "" if shared == most else f", the {shared} rows every model was fitted to"
    width, height = options["wide_figsize"]
    pc = azp.plot_ecdf_pit(
        convert_to_datatree(values.to_dataset(name="y_est"), group="loo_pit"),
        group="loo_pit",
        sample_dims=["obs_id"],
        method="pot_c",
        backend="matplotlib",
        cols=["model"],
        figure_kwargs={"figsize": (width, height), "layout": "constrained"},
    )
    fig = np.ravel(pc.viz["plot"].values)[0].figure
    for title, label in zip(pc.viz["title"]["y_est"].values, labels):
        title.set_text(label)
    fig.suptitle(
        f"LOO-PIT ({selection}{rows}): Δ-ECDF of each row's PIT; flat near 0 when calibrated", fontsize="medium"
    )
    return fig


if __name__ == "__main__" and "snakemake" in globals():
    sm = snakemake  # noqa: F821
    io.run_step(
        calibration,
        list(sm.input.posteriors),
        list(sm.input.predictives),
        sm.params.models,
        dict(sm.output.items()),
        sm.wildcards.selection,
        sm.params.settings,
        sm.log[0],
    )
