"""Interruptions and reruns: a killed run completes when run again, the same config and seed give
bitwise-identical draws, and a plotting option reruns only the plotting steps."""

import os
import signal
import subprocess
import time

import numpy as np
import pytest
import xarray as xr

from helpers import ROOT, SNAKEMAKE, changed, load_config, run_snakemake, write_config

FIT_TARGET = "results/first5/partial_pooling/posterior.nc"


@pytest.fixture(scope="module")
def config():
    config = load_config("tests/config/test.yaml")
    config["selections"] = {"first5": config["selections"]["first5"]}
    return config


def draws(path):
    with xr.open_datatree(path) as tree:
        return {name: var.values.copy() for name, var in tree["posterior"].data_vars.items()}


def assert_identical(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert np.array_equal(a[name], b[name]), f"{name} differs"


@pytest.mark.slow
def test_same_seed_gives_identical_draws_across_reruns_and_core_counts(tmp_path, config):
    targets = [f"results/first5/{m}/posterior.nc" for m in config["models"]]
    run_snakemake(tmp_path / "one", config, "--cores", "1", *targets, check=True)
    run_snakemake(tmp_path / "two", config, "--cores", "2", *targets, check=True)
    for target in targets:
        assert_identical(draws(tmp_path / "one" / target), draws(tmp_path / "two" / target))
    first = draws(tmp_path / "two" / FIT_TARGET)
    run_snakemake(tmp_path / "two", config, "--cores", "2", "--forcerun", "fit", *targets, check=True)
    assert_identical(first, draws(tmp_path / "two" / FIT_TARGET))


def test_another_seed_gives_other_draws(tmp_path, config):
    run_snakemake(tmp_path / "a", config, "--cores", "2", FIT_TARGET, check=True)
    run_snakemake(tmp_path / "b", changed(config, "sampling", "seed", 7), "--cores", "2", FIT_TARGET, check=True)
    assert not np.array_equal(
        draws(tmp_path / "a" / FIT_TARGET)["hyper_mu"], draws(tmp_path / "b" / FIT_TARGET)["hyper_mu"]
    )


@pytest.mark.slow
def test_changing_a_plot_option_reruns_only_plotting_steps(tmp_path, config):
    run_snakemake(tmp_path, config, "--cores", "2", check=True)
    result = run_snakemake(
        tmp_path, changed(config, "plots", {"dpi": 80}), "--cores", "2", "--dry-run", "--quiet", "rules"
    )
    assert result.returncode == 0, result.stderr
    planned = {
        line.split()[0]
        for line in result.stdout.splitlines()
        if line and line.split()[0].islower() and line.split()[-1].isdigit()
    }
    plots = {"plot_all_sites", "plot_selection", "plot_fits", "plot_checks", "plot_formulas"}
    plots |= {"calibration", "prior_checks"}  # their figures beside their tables
    # the gate's verdict comes after every artifact, figures included, so it is written again too; the
    # findings read the tables of those two steps, which are written again
    assert planned - {"all", "total"} == plots | {"findings", "convergence_gate"}, result.stdout


@pytest.mark.slow
def test_killed_run_completes_when_run_again(tmp_path, config):
    workdir = tmp_path / "run"
    workdir.mkdir()
    configfile = write_config(workdir / "config.yaml", config)
    command = [str(SNAKEMAKE), "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir)]
    command += ["--configfile", str(configfile), "--replace-workflow-config", "--cores", "2"]
    process = subprocess.Popen(
        command, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    log = workdir / "logs" / "fit" / "first5" / "partial_pooling.log"
    deadline = time.monotonic() + 300
    while not (log.exists() and "fitting" in log.read_text()):
        assert process.poll() is None and time.monotonic() < deadline, "the fit never started"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (workdir / FIT_TARGET).exists(), "a fit killed mid-way left its output"
    leftovers = [p for p in (workdir / "results").rglob("*.nc") if p.name.startswith(".")]
    for path in (workdir / "results").rglob("*.nc"):
        if path not in leftovers:
            xr.open_datatree(path).close()  # every finished-looking NetCDF opens

    run_snakemake(workdir, configfile, "--cores", "2", check=True)
    with xr.open_datatree(workdir / FIT_TARGET) as tree:
        assert tree["posterior"].sizes["draw"] == config["sampling"]["draws"]
    assert not list((workdir / "results").rglob(".*.partial")), "temporary files were left behind"


def test_sampler_threads_do_not_change_the_draws(tmp_path, data_path):
    """Chains sampled in parallel threads give the same draws as one thread, run after run."""
    from fit import fit
    from hbm import data as hdata
    from hbm import io

    config = load_config("config/config.yaml")
    config["models"]["partial_pooling"]["parameterization"] = "noncentered"  # 5 + 3 parameters per gradient
    config["convergence"]["on_failure"] = "warn"
    frame = hdata.read_table(data_path, "scontrol", "Site")
    rows, _ = hdata.subset(frame, "scontrol", "Site", config["selections"]["first5"])
    io.write_csv(rows, tmp_path / "data.csv")
    results = []
    for cores in (1, 2, 2):
        tree = fit(tmp_path / "data.csv", tmp_path / f"p{cores}.nc", "partial_pooling", "first5", config, cores)
        results.append({name: var.values.copy() for name, var in tree["posterior"].data_vars.items()})
    assert_identical(results[0], results[1])
    assert_identical(results[1], results[2])


CACHED_FIT = """
import json, os, sys
os.environ["PYTENSOR_FLAGS"] = "base_compiledir=" + sys.argv[1]
sys.path.insert(0, sys.argv[2])
import nutpie
from hbm import data as hdata, models, sampling
frame = hdata.read_table(sys.argv[3], "scontrol", "Site")
sites = json.loads(sys.argv[4])
rows, _ = hdata.subset(frame, "scontrol", "Site", sites)
data = hdata.Grouped.from_frame(rows, "scontrol", "Site", sites)
priors = json.loads(sys.argv[5])
compiled = sampling.compile_nutpie(models.build("partial_pooling", data, priors, "marginal"), "numba")
tree = nutpie.sample(compiled, draws=100, tune=100, chains=2, cores=1, seed=3, progress_bar=False)
hits = [compiled.compiled_logp_func.cache_hits, compiled.compiled_expand_func.cache_hits]
draws = tree["posterior"]["between_variability"].values.ravel().tolist()
print(json.dumps({"hits": hits, "between_variability": draws}))
"""


def test_compiled_model_is_loaded_from_the_disk_cache_with_the_same_draws(tmp_path, data_path):
    """A new process with a warm cache loads the numba callbacks instead of compiling them, and
    samples the same draws; other data (here other sites) never load another model's log density."""
    import json
    import sys

    config = load_config("config/config.yaml")
    priors = json.dumps(config["models"]["partial_pooling"]["priors"])

    def run(sites):
        command = [sys.executable, "-c", CACHED_FIT, str(tmp_path), str(ROOT / "scripts"), str(data_path)]
        output = subprocess.run(command + [json.dumps(sites), priors], capture_output=True, text=True, check=True)
        return json.loads(output.stdout.strip().splitlines()[-1])

    first5 = config["selections"]["first5"]
    cold, warm = run(first5), run(first5)
    assert cold["hits"] == [0, 0] and warm["hits"] == [1, 1]
    assert cold["between_variability"] == warm["between_variability"]
    assert run(first5[:4])["hits"][0] == 0
