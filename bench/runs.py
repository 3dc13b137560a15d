"""What the benchmarks share: the whole workflow and its report, timed in a working directory, and the
tables they write into docs/performance.md."""

import datetime
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
PERFORMANCE = ROOT / "docs" / "performance.md"
PREAMBLE = """# Performance

Every table below is written by the benchmark named under it (`make benchmark` runs them all), with
the machine and the day it measured on; rerun it to bring a table up to date. Wall times of identical
runs vary by up to a fifth on shared machines.
"""


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


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A Markdown table; right-aligned columns where every cell below the header is a number."""

    def numeric(cell) -> bool:
        return re.fullmatch(r"[-+]?[\d,]*\.?\d+( \(.*\))?", str(cell)) is not None

    align = ["---:" if rows and all(numeric(row[i]) for row in rows) else "---" for i in range(len(header))]
    lines = [header, align, *rows]
    return "\n".join("| " + " | ".join(str(cell).replace("|", "\\|") for cell in line) + " |" for line in lines)


def machine() -> str:
    """This machine in a few words: processor, cores, memory, Python."""
    cpuinfo = _read("/proc/cpuinfo").splitlines()
    names = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    cpu = names[0] if names else platform.processor() or platform.machine()
    memory = re.search(r"MemTotal:\s+(\d+) kB", _read("/proc/meminfo"))
    gib = f", {int(memory.group(1)) / 2**20:.0f} GiB" if memory else ""
    return f"{cpu}, {os.cpu_count()} cores{gib}, Python {platform.python_version()}"


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def command_line() -> str:
    """This benchmark's command as run, with its flags and numbers (paths and labels left out)."""
    kept = [arg for arg in sys.argv[1:] if arg.startswith("--") or re.fullmatch(r"[\d.]+", arg)]
    return " ".join(["python", f"bench/{Path(sys.argv[0]).name}", *kept])


def write_section(key: str, title: str, command: str, text: str, path: Path = PERFORMANCE) -> None:
    """Put `text` (a table and what it means) under `title` in docs/performance.md, with one line saying
    what measured it, on which machine and day; the file's other sections are kept as they are."""
    start, end = f"<!-- benchmark: {key} -->", f"<!-- end of benchmark: {key} -->"
    day = datetime.date.today().isoformat()
    section = f"{start}\n## {title}\n\nMeasured by `{command}` on {machine()}, {day}.\n\n{text.strip()}\n{end}"
    current = path.read_text() if path.exists() else PREAMBLE
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), flags=re.S)
    if pattern.search(current):
        current = pattern.sub(lambda _: section, current)
    else:
        current = current.rstrip() + "\n\n" + section
    path.write_text(current.rstrip() + "\n")
