"""Benchmark: the lecture's partial-pooling fit against PyMC's default, bambi and this workflow's fit,
the whole default workflow end to end, and partial pooling on simulated data at scale.

    .venv/bin/python bench/lecture.py [--quick] [--skip-bambi] [--skip-workflow] [--skip-scale] [--only-workflow]

Every case runs in a child process of this one (so imports and compile caches are per case, as in
the workflow's jobs); the table reports wall seconds of compile + sampling, the smallest bulk ESS,
ESS per second, divergences, the ratio of ESS per second to the lecture's, and each child's peak
memory.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from runs import ROOT, command_line, criticism_rules, markdown_table, speed_reference, timed_run, write_section

DATA = ROOT.parent / "shared" / "data" / "Data_Sum_HPP_Multi_Site_Share.csv"
FIRST5 = ["Southampton", "METU", "Kassel", "Tsinghua", "Oslo"]
LECTURE_SEEDS = (84735, 1, 2)  # the lecture's own seed first
LECTURE_PRIORS = {
    "hyper_mu": {"dist": "Normal", "mu": 40, "sigma": 20},
    "within_variability": {"dist": "Exponential", "lam": 1},
    "between_variability": {"dist": "Exponential", "lam": 1},
}


def first5_data(path):
    sys.path.insert(0, str(ROOT / "scripts"))
    from hbm import data as hdata

    frame = hdata.read_table(path, "scontrol", "Site")
    rows, _ = hdata.subset(frame, "scontrol", "Site", FIRST5)
    return hdata.Grouped.from_frame(rows, "scontrol", "Site", FIRST5), rows


def result(tree, seconds, parameters):
    from arviz_stats import ess

    posterior = tree["posterior"].to_dataset()[parameters]
    smallest = float(min(ess(posterior, method="bulk")[name].min() for name in parameters))
    divergences = int(tree["sample_stats"]["diverging"].sum())
    return {"seconds": seconds, "min_ess_bulk": smallest, "divergences": divergences}


def case_lecture(args):
    """The lecture's code as written: centered, per-row likelihood, PyMC's NUTS, 5,000 draws."""
    import pymc as pm

    from hbm import models

    data, _ = first5_data(args.data)
    model = models.build("partial_pooling", data, LECTURE_PRIORS, "centered", likelihood="rows")
    start = time.perf_counter()
    tree = pm.sample(
        draws=5000,
        tune=1000,
        chains=4,
        cores=2,
        random_seed=args.seed,
        model=model,
        nuts_sampler="pymc",
        progressbar=False,
        compute_convergence_checks=False,
    )
    return result(tree, time.perf_counter() - start, ["hyper_mu", "within_variability", "between_variability", "mu"])


def case_pymc_default(args):
    """PyMC 6's default sampler and settings on the plain non-centered per-row model, 5,000 draws."""
    import pymc as pm

    from hbm import models

    data, _ = first5_data(args.data)
    model = models.build("partial_pooling", data, LECTURE_PRIORS, "noncentered", likelihood="rows")
    start = time.perf_counter()
    tree = pm.sample(draws=5000, random_seed=84735, model=model, progressbar=False, compute_convergence_checks=False)
    return result(tree, time.perf_counter() - start, ["hyper_mu", "within_variability", "between_variability", "mu"])


def case_bambi(args):
    """bambi's scontrol ~ 1 + (1|Site) with its default priors and sampler, 5,000 draws."""
    import bambi as bmb

    _, rows = first5_data(args.data)
    model = bmb.Model("scontrol ~ 1 + (1|Site)", rows)
    start = time.perf_counter()
    tree = model.fit(draws=5000, random_seed=84735, progressbar=False)
    names = [n for n in tree["posterior"].data_vars if n != "mu"]
    return result(tree, time.perf_counter() - start, names)


def case_workflow(args):
    """This workflow's fit step (config/config.yaml's settings, optionally more draws)."""
    import yaml

    from fit import fit
    from hbm import data as hdata
    from hbm import io

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["data"]["path"] = str(args.data)
    config["cache_dir"] = str(ROOT / ".cache")
    config["sampling"]["draws"] = args.draws
    config["models"]["partial_pooling"]["parameterization"] = args.parameterization
    config["sampling"]["backend"] = args.backend
    config["convergence"]["on_failure"] = "warn"
    with tempfile.TemporaryDirectory() as tmp:
        frame = hdata.read_table(args.data, "scontrol", "Site")
        rows, _ = hdata.subset(frame, "scontrol", "Site", FIRST5)
        io.write_csv(rows, Path(tmp) / "data.csv")
        start = time.perf_counter()
        tree = fit(Path(tmp) / "data.csv", Path(tmp) / "posterior.nc", "partial_pooling", "first5", config, args.cores)
        seconds = time.perf_counter() - start  # model build + compile + sampling, and writing the posterior
    return result(tree, seconds, ["hyper_mu", "within_variability", "between_variability", "mu"]) | {
        "draws": args.draws
    }


def case_scale(args):
    """Partial pooling on simulated data with known parameters: fit + posterior predictive steps."""
    import numpy as np
    import pandas as pd
    import yaml

    from fit import fit

    truth = {"hyper_mu": 40.0, "between_variability": 2.0, "within_variability": 8.0}
    rng = np.random.default_rng(args.rows)
    groups = args.groups
    site = np.sort(rng.integers(0, groups, args.rows))
    site_mu = truth["hyper_mu"] + truth["between_variability"] * rng.standard_normal(groups)
    y = site_mu[site] + truth["within_variability"] * rng.standard_normal(args.rows)
    labels = np.array([f"g{j:05d}" for j in range(groups)])
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["cache_dir"] = str(ROOT / ".cache")
    config["convergence"]["on_failure"] = "warn"
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.csv"
        pd.DataFrame({"obs_id": np.arange(args.rows), "Site": labels[site], "scontrol": y}).to_csv(data, index=False)
        start = time.perf_counter()
        tree = fit(
            data,
            Path(tmp) / "posterior.nc",
            "partial_pooling",
            "sim",
            config,
            args.cores,
            predictive_path=Path(tmp) / "ppc.nc",
        )
        step_seconds = time.perf_counter() - start
        sizes = {name: (Path(tmp) / name).stat().st_size for name in ("posterior.nc", "ppc.nc")}
    posterior = tree["posterior"].to_dataset()
    from arviz_stats import hdi

    covered = {}
    for name, value in truth.items():
        bounds = hdi(posterior[name], prob=0.94).values
        covered[name] = bool(bounds[0] <= value <= bounds[1])
    mu_bounds = hdi(posterior["mu"], prob=0.94, dim=["chain", "draw"])
    true_mu = site_mu[[int(label[1:]) for label in posterior["site"].values]]  # groups that drew rows
    lower, upper = mu_bounds.sel(ci_bound="lower").values, mu_bounds.sel(ci_bound="upper").values
    site_coverage = float(((lower <= true_mu) & (true_mu <= upper)).mean())
    out = result(tree, step_seconds, ["hyper_mu", "within_variability", "between_variability"])
    return out | {
        "rows": args.rows,
        "groups": groups,
        "truth_in_94": covered,
        "site_mu_coverage_94": site_coverage,
        "pointwise": tree.attrs["pointwise_level"],
        "fit_step_seconds": step_seconds,
        "file_mb": {k: v / 1e6 for k, v in sizes.items()},
    }


CASES = {
    "lecture": case_lecture,
    "pymc_default": case_pymc_default,
    "bambi": case_bambi,
    "workflow": case_workflow,
    "scale": case_scale,
}


def run_child(case, *extra):
    """Run one case in a child process; return its result, wall time and peak memory (MB)."""
    command = [sys.executable, __file__, "--child", case, "--data", str(ARGS.data), "--cores", str(ARGS.cores), *extra]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        return {"error": f"exit {os.waitstatus_to_exitcode(status)}", "process_seconds": wall}
    return json.loads(output.strip().splitlines()[-1]) | {"process_seconds": wall, "peak_mb": usage.ru_maxrss / 1024}


def warm_child(case, *extra):
    """`run_child` with the compile caches warm, as in every run after the first: one run to fill them."""
    extra = ("--compiledir", str(ROOT / ".cache" / "benchmark"), *extra)
    run_child(case, *extra)
    return run_child(case, *extra)


NO_CRITICISM = {"leave_one_site_out": False, "calibration": False, "prior_checks": False}
WORKFLOW_VARIANTS = {  # label -> config changes
    "default config": {},
    "no formulas": {"formulas": {}},
    "no criticism": {"criticism": NO_CRITICISM},
    "neither": {"formulas": {}, "criticism": NO_CRITICISM},
}


def end_to_end(cores: int, variants: dict, warm_runs: int) -> dict:
    """The default workflow (both selections, three models, PPC, new site, criticism, figures, report)
    with each variant's changes to the default config ({label: changes}): once with cold caches, then
    `warm_runs` times with warm ones, the variants taking turns so that drifts of the machine touch
    them alike. Per variant: the cold wall seconds, the warm ones, and per warm run the CPU seconds
    of the criticism steps' jobs (from Snakemake's benchmark files) and the machine's
    `speed_reference` just before it."""
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {
            label: _variant_dir(Path(tmp) / f"v{i}", changes) for i, (label, changes) in enumerate(variants.items())
        }
        times = {
            label: {"cold": timed_run(path, cores), "warm": [], "criticism_cpu": [], "reference": []}
            for label, path in dirs.items()
        }
        for _ in range(warm_runs):
            for label, path in dirs.items():
                times[label]["reference"].append(speed_reference())
                times[label]["warm"].append(timed_run(path, cores))
                times[label]["criticism_cpu"].append(_criticism_cpu(path))
    return times


def _variant_dir(path: Path, changes: dict) -> Path:
    """A working directory with the default config, `changes` applied, and a compile cache of its own."""
    import yaml

    path.mkdir()
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["data"]["path"] = str(ARGS.data)
    config["cache_dir"] = f"{path}/cache"
    config.update(changes)
    (path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _criticism_cpu(path: Path) -> float:
    """CPU seconds of the criticism steps' jobs in the last run in `path`."""
    import pandas as pd

    files = [f for rule in criticism_rules() for f in (path / "benchmarks" / rule).rglob("*.tsv")]
    return float(sum(pd.read_csv(f, sep="\t")["cpu_time"].iloc[0] for f in files))


def main():
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--child")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=84735, help="seed of the lecture's fit")
    parser.add_argument("--parameterization", default="marginal")
    parser.add_argument("--backend", default="numba")
    parser.add_argument("--compiledir", help="PyTensor's compile cache (and numba's) for a child")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=2000)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="skip the 1,000,000-row case")
    parser.add_argument("--skip-bambi", action="store_true")
    parser.add_argument("--skip-workflow", action="store_true", help="skip the end-to-end workflow timing")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--only-workflow", action="store_true", help="only the end-to-end workflow timing")
    parser.add_argument("--warm-runs", type=int, default=1, help="warm runs per end-to-end variant")
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=list(WORKFLOW_VARIANTS),
        default=list(WORKFLOW_VARIANTS),
        help="the end-to-end runs to time (default: all)",
    )
    ARGS = parser.parse_args()
    sys.path.insert(0, str(ROOT / "scripts"))
    if ARGS.child:
        if ARGS.compiledir:  # before PyTensor is imported
            os.environ["PYTENSOR_FLAGS"] = f"base_compiledir={ARGS.compiledir}"
        print(json.dumps(CASES[ARGS.child](ARGS)))
        return
    if not ARGS.only_workflow:
        lecture_cases()
    if not ARGS.skip_workflow:
        runs = end_to_end(ARGS.cores, {label: WORKFLOW_VARIANTS[label] for label in ARGS.variants}, ARGS.warm_runs)
        table = workflow_table(runs)
        print(table)
        write_section(
            "workflow",
            "The default analysis end to end",
            command_line(),
            table
            + f"""

Both selections, three models and the formulas, posterior predictive, Zurich, model criticism,
tables, figures, the convergence gate and the report (`snakemake` then `snakemake --report`),
`--cores {ARGS.cores}`, once with cold compile caches and then with warm ones, the variants taking
turns. "criticism CPU" is the CPU time of the criticism steps' jobs (from Snakemake's benchmark
files); "speed reference" is how long a new process took to import PyMC and ArviZ's statistics just
before each warm run, as every step does.""",
        )
    if not ARGS.skip_scale and not ARGS.only_workflow:
        scale_cases()


def lecture_cases():
    """The lecture's fit, PyMC's default, bambi and this workflow's fit: one table."""
    rows = []
    lectures = []
    for seed in LECTURE_SEEDS:  # its stuck chains make its ESS vary by orders of magnitude with the seed
        lectures.append(run_child("lecture", "--seed", str(seed)))
        rows.append((f"lecture's code (centered, PyMC NUTS, 5,000 draws), seed {seed}", lectures[-1]))
    lecture = max((out for out in lectures if "seconds" in out), key=rate, default={})
    rows.append(("PyMC 6 default, non-centered (5,000 draws)", run_child("pymc_default")))
    if not ARGS.skip_bambi:
        rows.append(("bambi scontrol ~ 1 + (1|Site) (5,000 draws)", run_child("bambi")))
    for parameterization in ("centered", "noncentered"):
        out = warm_child("workflow", "--parameterization", parameterization)
        rows.append((f"this workflow's fit, {parameterization} (1,000 draws)", out))
    out = warm_child("workflow", "--backend", "pytensor")
    rows.append(("this workflow's fit, marginal, pytensor backend (1,000 draws)", out))
    with tempfile.TemporaryDirectory() as empty:
        out = run_child("workflow", "--compiledir", empty)
    rows.append(("this workflow's fit, marginal: default (1,000 draws), cold cache", out))
    for draws in (1000, 5000):
        out = warm_child("workflow", "--draws", str(draws))
        rows.append((f"this workflow's fit, marginal: default ({draws:,} draws)", out))
    table = lecture_table(rows, lecture)
    print(table)
    write_section(
        "lecture",
        "Partial pooling on the lecture's five sites",
        command_line(),
        table
        + """

Every case runs in its own child process. "wall" excludes imports: for the lecture's code, PyMC's
default and bambi it is model build + compile + sampling; for this workflow's fit it is the whole fit
step (also the prior predictive draws, the log prior and writing the posterior file). "min ESS" is
the smallest bulk ESS over all parameters, site means included; "x lecture" is ESS per second over
that of the lecture's best run. 4 chains, 1,000 tune draws. The lecture's code is run with three
seeds because its stuck chains make its ESS vary by orders of magnitude with the seed.""",
    )


def workflow_table(runs: dict) -> str:
    """The end-to-end runs as a Markdown table: per variant, cold and warm seconds and what they spent."""
    body = []
    for label, times in runs.items():
        body.append(
            [
                label,
                f"{times['cold']:.1f}",
                ", ".join(f"{t:.1f}" for t in times["warm"]),
                f"{statistics.median(times['warm']):.1f}",
                ", ".join(f"{t:.0f}" for t in times["criticism_cpu"]),
                ", ".join(f"{t:.2f}" for t in times["reference"]),
            ]
        )
    header = ["variant", "cold caches s", "warm caches s", "warm median s", "criticism CPU s", "speed reference s"]
    return markdown_table(header, body)


def scale_cases():
    """Partial pooling's fit step on simulated data with 2,000 groups and growing rows."""
    body = []
    for count in (10_000, 100_000) + (() if ARGS.quick else (1_000_000,)):
        with tempfile.TemporaryDirectory() as empty:
            out = run_child("scale", "--rows", str(count), "--groups", str(ARGS.groups), "--compiledir", empty)
        print(json.dumps(out))
        if "error" in out:
            body.append([f"{count:,}", f"failed: {out['error']}", "", "", "", "", "", "", ""])
            continue
        covered = [name for name, inside in out["truth_in_94"].items() if inside]
        body.append(
            [
                f"{count:,}",
                f"{out['seconds']:.1f}",
                f"{out['process_seconds']:.1f}",
                f"{out['min_ess_bulk']:,.0f}",
                out["divergences"],
                "all three" if len(covered) == len(out["truth_in_94"]) else ", ".join(covered) or "none",
                f"{100 * out['site_mu_coverage_94']:.1f}%",
                f"per {out['pointwise'].rstrip('s')}",
                f"{out['peak_mb']:,.0f}",
            ]
        )
    header = ["rows", "fit step s", "whole process s", "min ESS", "divergences", "truth in 94% HDI"]
    header += ["site means in 94% HDI", "stored pointwise", "peak MB"]
    write_section(
        "scale",
        f"Partial pooling at scale: {ARGS.groups:,} groups",
        command_line(),
        markdown_table(header, body)
        + """

Simulated data with known parameters (hyper_mu 40, σ_μ 2, σ_y 8), default settings, cold compile
cache. "fit step" is the fit with its posterior predictive and pointwise log-likelihood, writing both
files; "whole process" adds the imports. Time is flat in rows because the likelihood uses per-site
sufficient statistics. At scale rows × draws does not fit in memory, so `storage` decides what is
kept (the pointwise log-likelihood per row or per site, thinned predictive draws).""",
    )


def rate(out):
    """Effective draws per second: the smallest bulk ESS over the wall seconds."""
    return out["min_ess_bulk"] / out["seconds"]


def lecture_table(rows, lecture) -> str:
    """The lecture cases as a Markdown table, each case's ESS per second against the lecture's best run."""
    base = rate(lecture) if lecture else float("nan")
    body = []
    for name, out in rows:
        if "error" in out:
            body.append([name, f"failed: {out['error']}", "", "", "", "", ""])
            continue
        per_second = rate(out)
        body.append(
            [
                name,
                f"{out['seconds']:.1f}",
                f"{out['min_ess_bulk']:,.0f}",
                f"{per_second:,.0f}",
                out["divergences"],
                f"{per_second / base:.1f}",
                f"{out['peak_mb']:,.0f}",
            ]
        )
    header = ["case", "wall s", "min ESS", "ESS/s", "divergences", "x lecture", "peak MB"]
    return markdown_table(header, body)


if __name__ == "__main__":
    main()
