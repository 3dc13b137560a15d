"""Benchmark: the whole workflow (three models, posterior predictive, new site, tables, LOO, figures,
report) on data with many small groups, with the default convergence gate, on `--cores` cores.

    .venv/bin/python bench/many_groups.py [--radon PATH] [--skip-radon] [--skip-400] [--skip-2000]

Model criticism (LOO-PIT, prior checks, leave one site out) is left out unless --with-criticism
is given, which runs what each config asks for (radon.yaml: all but leave one site out).

Cases: Minnesota radon (85 counties, config/radon.yaml), cold and warm compile caches; simulated
400 groups with many of one or two rows, cold and warm; simulated 2,000 groups x 1,000,000 rows with
heavy-tailed sizes, cold. For each: wall seconds of `snakemake` plus `snakemake --report`, the
machine's speed just before (`runs.speed_reference`: seconds to import PyMC in a new process), the peak
memory of the largest step (as each step's log records it), divergences per model, whether the gate
passed, and for simulated data whether the true population parameters lie in their 94% HDIs.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from runs import ROOT, command_line, markdown_table, speed_reference, timed_run, write_section

sys.path.insert(0, str(ROOT / "scripts"))
from hbm.io import logged_peak_memory

RADON = ROOT.parent / "shared" / "data" / "radon" / "radon.csv"
TRUTH = {"hyper_mu": 1.0, "between_variability": 0.5, "within_variability": 0.8}


def simulate(path: Path, groups: int, rows: int, seed: int = 7) -> str:
    """Heavy-tailed group sizes (40% of groups with 1 to 3 rows) summing to `rows`; returns the label
    of the largest group, held out as the new site."""
    rng = np.random.default_rng(seed)
    tiny = rng.integers(1, 4, int(0.4 * groups))
    rest = rng.lognormal(0, 1.5, groups - tiny.size)
    rest = np.maximum(4, np.floor(rest / rest.sum() * (rows - tiny.sum()))).astype(int)
    rest[np.argmax(rest)] += rows - tiny.sum() - rest.sum()
    sizes = rng.permutation(np.concatenate([tiny, rest]))
    labels = np.array([f"G{j:04d}" for j in range(groups)])
    means = TRUTH["hyper_mu"] + TRUTH["between_variability"] * rng.standard_normal(groups)
    group = np.repeat(np.arange(groups), sizes)
    y = means[group] + TRUTH["within_variability"] * rng.standard_normal(group.size)
    pd.DataFrame({"group": labels[group], "y": np.round(y, 6)}).to_csv(path, index=False)
    return str(labels[np.argmax(sizes)])


def simulated_config(data: Path, new_site: str, rows: int) -> dict:
    """radon.yaml's settings on simulated data; `storage.max_values` raised where the default would keep
    fewer than the 100 posterior predictive draws per row the workflow asks for (1,000,000 rows)."""
    config = yaml.safe_load((ROOT / "config" / "radon.yaml").read_text())
    config.update(data={"path": str(data)}, outcome="y", group="group", selections={"sim": "all"}, new_sites=[new_site])
    config["storage"] = {"max_values": max(50_000_000, 100 * rows)}
    return config


def run(workdir: Path, config: dict) -> float:
    """Wall seconds of the whole workflow and its report in `workdir` under `config`."""
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return timed_run(workdir, ARGS.cores)


def facts(workdir: Path, selection: str, truth: dict | None) -> dict:
    """Peak memory of the largest step, divergences per model, the gate's verdict, truth coverage."""
    peaks = {
        str(path.relative_to(workdir / "logs")): logged_peak_memory(path) or 0.0
        for path in (workdir / "logs").rglob("*.log")
    }
    step, peak = max(peaks.items(), key=lambda item: item[1])
    verdict = pd.read_csv(workdir / "results" / selection / "tables" / "convergence.csv")
    out = {
        "peak_mb": round(peak),
        "peak_step": step,
        "divergences": dict(zip(verdict["model"], verdict["divergences"].astype(int))),
        "gate_passed": bool(verdict["passed"].all()),
        "loo_reliable": bool(
            pd.read_csv(workdir / "results" / selection / "tables" / "loo_comparison.csv")["reliable"].all()
        ),
    }
    if truth:
        summary = pd.read_csv(workdir / "results" / selection / "partial_pooling" / "summary.csv").set_index(
            "parameter"
        )
        out["truth_in_94_hdi"] = {
            name: bool(summary.loc[name, "hdi_3%"] <= value <= summary.loc[name, "hdi_97%"])
            for name, value in truth.items()
        }
    return out


def case(label: str, config: dict, selection: str, truth=None, warm: bool = True) -> dict:
    """Run one case cold (and warm); print and return what it measured."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        config = config | {"cache_dir": str(workdir / "cache")}
        if not ARGS.with_criticism:  # the DAG this benchmark has timed from the start
            config["criticism"] = {"leave_one_site_out": False, "calibration": False, "prior_checks": False}
        reference = speed_reference()
        times = {"cold": run(workdir, config)}
        if warm:
            times["warm"] = run(workdir, config)
        out = {
            "case": label,
            "seconds": {k: round(v, 1) for k, v in times.items()},
            "speed_reference_s": round(reference, 2),
        } | facts(workdir, selection, truth)
    print(json.dumps(out))
    return out


def table(results: list[dict]) -> str:
    """The cases as a Markdown table."""
    body = []
    for out in results:
        truth = out.get("truth_in_94_hdi")
        body.append(
            [
                out["case"],
                f"{out['seconds']['cold']:.1f}",
                f"{out['seconds']['warm']:.1f}" if "warm" in out["seconds"] else "–",
                f"{out['peak_mb']:,}",
                ", ".join(str(d) for d in out["divergences"].values()),
                "passed" if out["gate_passed"] else "failed",
                "yes" if out["loo_reliable"] else "no",
                "–" if truth is None else ("all three" if all(truth.values()) else "no: " + str(truth)),
                f"{out['speed_reference_s']:.2f}",
            ]
        )
    header = ["case", "cold caches s", "warm caches s", "largest step peak MB", "divergences (3 models)", "gate"]
    header += ["LOO reliable", "truth in 94% HDI", "speed reference s"]
    return markdown_table(header, body)


def main():
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--radon", type=Path, default=RADON)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--skip-radon", action="store_true")
    parser.add_argument("--skip-400", action="store_true")
    parser.add_argument("--skip-2000", action="store_true")
    parser.add_argument(
        "--with-criticism", action="store_true", help="also LOO-PIT and prior checks (as radon.yaml configures)"
    )
    ARGS = parser.parse_args()
    ARGS.radon = ARGS.radon.resolve()  # the workflow runs in a folder of its own
    results = []
    if not ARGS.skip_radon:
        config = yaml.safe_load((ROOT / "config" / "radon.yaml").read_text()) | {"data": {"path": str(ARGS.radon)}}
        results.append(case("radon, 84 counties + HENNEPIN held out (config/radon.yaml)", config, "radon"))
    with tempfile.TemporaryDirectory() as tmp:
        for groups, rows, skip in ((400, 4000, ARGS.skip_400), (2000, 1_000_000, ARGS.skip_2000)):
            if skip:
                continue
            data = Path(tmp) / f"sim_{groups}.csv"
            new_site = simulate(data, groups, rows)
            label = f"simulated, {groups:,} groups × {rows:,} rows"
            results.append(case(label, simulated_config(data, new_site, rows), "sim", TRUTH, warm=groups < 2000))
    criticism = "with the criticism steps each config asks for" if ARGS.with_criticism else "criticism off"
    write_section(
        "many-groups",
        "Many small groups, the whole workflow",
        command_line(),
        table(results)
        + f"""

Three models, posterior predictive, new site, tables, PSIS-LOO, figures and the report (`snakemake`
then `snakemake --report`), default convergence gate, `--cores {ARGS.cores}`, {criticism}. Simulated
data: population mean 1, σ_μ 0.5, σ_y 0.8, 40% of the groups with 1–3 rows, the largest group held
out as the new site; with a million rows `storage.max_values` is raised to 100 million. "largest step
peak" is the exact peak resident memory of the largest step, read from the last line of its log.""",
    )


if __name__ == "__main__":
    main()
