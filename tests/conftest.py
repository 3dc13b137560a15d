"""Shared fixtures: the project root, the shared data copy, configs, and a Snakemake runner."""

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


def pytest_configure(config):
    if not DATA.is_file():
        pytest.exit(f"test data not found at {DATA}; set HBM_TEST_DATA to the CSV's path", returncode=2)


@pytest.fixture(scope="session")
def data_path() -> Path:
    return DATA


def load_config(relative: str) -> dict:
    """A config file of the project, reading the shared data and keeping compile caches in the project."""
    config = yaml.safe_load((ROOT / relative).read_text())
    config["data"]["path"] = str(DATA)
    config["cache_dir"] = str(CACHE)
    return config


@pytest.fixture
def default_config() -> dict:
    return load_config("config/config.yaml")


@pytest.fixture
def test_config() -> dict:
    return load_config("tests/config/test.yaml")


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


def changed(config: dict, *path_and_value) -> dict:
    """A deep copy of `config` with the value at a key path replaced (or removed if value is ...)."""
    *path, value = path_and_value
    config = copy.deepcopy(config)
    node = config
    for key in path[:-1]:
        node = node[key]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return config
