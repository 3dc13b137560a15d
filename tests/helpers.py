"""What the tests share: the project's paths, the data copies, the test config's facts, configs and a
Snakemake runner."""

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
DATA = Path(
    os.environ.get("HBM_TEST_DATA", ROOT.parent / "shared" / "data" / "Data_Sum_HPP_Multi_Site_Share.csv")
).resolve()
RADON = Path(os.environ.get("HBM_TEST_RADON", ROOT.parent / "shared" / "data" / "radon" / "radon.csv")).resolve()
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
CACHE = ROOT / ".cache"  # compile caches shared by test runs (each job still has its own folder)
FIRST5 = ["Southampton", "METU", "Kassel", "Tsinghua", "Oslo"]
MODELS = ["complete_pooling", "no_pooling", "partial_pooling"]
SELECTIONS = {"first5": FIRST5, "trio": ["Bamberg", "Chile", "Portugal"]}  # tests/config/test.yaml
FORMULAS = ["partial_pooling_bambi", "robust_age"]  # tests/config/test.yaml


def need(path: Path, variable: str) -> Path:
    """`path` if the data file is there; otherwise the test fails saying how to point at it."""
    if not path.is_file():
        pytest.fail(f"test data not found at {path}; set {variable} to the CSV's path", pytrace=False)
    return path


def hpp() -> Path:
    return need(DATA, "HBM_TEST_DATA")


def radon() -> Path:
    return need(RADON, "HBM_TEST_RADON")


def load_config(relative: str) -> dict:
    """A config file of the project, reading the shared data and keeping compile caches in the project;
    its formulas' {outcome} and {group} stand for the columns, as the workflow reads them."""
    from hbm.config import resolve_references

    config = yaml.safe_load((ROOT / relative).read_text())
    resolve_references(config)
    config["data"]["path"] = str(hpp())
    config["cache_dir"] = str(CACHE)
    return config


def write_config(path: Path, config) -> Path:
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def run_snakemake(workdir: Path, config, *args, timeout=1800, check=False) -> subprocess.CompletedProcess:
    """Run the workflow in `workdir` with exactly `config` (written to workdir/config.yaml)."""
    workdir.mkdir(parents=True, exist_ok=True)
    configfile = write_config(workdir / "config.yaml", config) if not isinstance(config, Path) else config
    command = [
        str(SNAKEMAKE),
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(configfile),
        "--replace-workflow-config",
        *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=workdir)
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
        )
    return result


def workflow_outputs(workdir: Path, config) -> list[Path]:
    """Every file the workflow produces for `config`, as Snakemake's own DAG lists it (--summary)."""
    result = run_snakemake(workdir, config, "--summary", check=True)
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("output_file\t"))
    return [workdir / line.split("\t")[0] for line in lines[start + 1 :] if "\t" in line]


def changed(config: dict, *path_and_value) -> dict:
    """A deep copy of `config` with the value at a key path replaced (or removed if value is ...);
    missing mappings on the path are created."""
    *path, value = path_and_value
    config = copy.deepcopy(config)
    node = config
    for key in path[:-1]:
        node = node.setdefault(key, {})
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return config
