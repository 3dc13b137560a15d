"""What the benchmarks share: the whole workflow and its report, timed in a working directory."""

import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def timed_run(workdir: Path, cores: int) -> float:
    """Wall seconds of the whole workflow and its report in `workdir`, with its config.yaml, from no
    results (compile caches are kept). A failed fit still leaves the rest to report, so its message
    is printed and the timing kept; a run that produced nothing (a refused config) stops here with
    the workflow's message."""
    for done in ("results", "benchmarks", ".snakemake"):
        shutil.rmtree(workdir / done, ignore_errors=True)
    base = [str(SNAKEMAKE), "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir)]
    base += ["--configfile", str(workdir / "config.yaml"), "--replace-workflow-config"]
    start = time.perf_counter()
    done = subprocess.run(base + ["--cores", str(cores), "all"], capture_output=True, text=True)
    if done.returncode:
        print(done.stderr[-3000:], file=sys.stderr)
        if not (workdir / "results").is_dir():
            sys.exit(f"the workflow produced nothing in {workdir}; its message is above")
    subprocess.run(base + ["--report", "results/report.html", "--quiet", "all"], capture_output=True, check=True)
    return time.perf_counter() - start


def criticism_rules() -> list[str]:
    """The rules of the model-criticism steps, as workflow/rules/criticism.smk defines them."""
    return re.findall(r"^rule (\w+):", (ROOT / "workflow" / "rules" / "criticism.smk").read_text(), flags=re.M)


def speed_reference(repeats: int = 5) -> float:
    """How fast the machine is at the moment, as context for the timings beside it: median wall seconds
    for a new Python process to import PyMC and ArviZ's statistics, as every step of the workflow does
    (its speed varies from hour to hour on shared hardware)."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import pymc, arviz_stats"], check=True)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)
