"""Project conventions a user relies on: one locked environment, installed as locked, in pip and conda."""

import re

import yaml

from hbm import io
from helpers import ROOT

PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)\s*(;[^\\]*)?\\?$")


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lines) -> dict[str, tuple[str, str]]:
    """name -> (version, environment marker) of every `name==version` line."""
    found = {}
    for line in lines:
        match = PIN.match(line.strip())
        if match:
            found[normalised(match.group(1))] = (match.group(2), (match.group(3) or "").lstrip("; ").strip())
    return found


def lock() -> dict:
    return pins((ROOT / "requirements.lock").read_text().splitlines())


def test_every_top_level_pin_is_locked_at_its_version():
    top = pins((ROOT / "requirements.txt").read_text().splitlines())
    assert {"pymc", "arviz", "nutpie", "pytensor", "numpy", "bambi", "snakemake"} <= top.keys()
    locked = lock()
    for name, (version, _) in top.items():
        assert locked.get(name, (None,))[0] == version, f"{name}: requirements.txt {version}, lock {locked.get(name)}"


def test_every_locked_package_has_hashes():
    text = (ROOT / "requirements.lock").read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text[text.index("\n", text.index("--generate-hashes")) :].strip())
    assert len(blocks) == len(lock()) > 100
    for block in blocks:
        assert "--hash=sha256:" in block, block.splitlines()[0]


def test_conda_env_pins_exactly_the_locked_versions():
    env = yaml.safe_load((ROOT / "envs" / "hbm.yaml").read_text())
    pip_section = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    assert pins(pip_section) == lock(), "envs/hbm.yaml is out of date: run `make lock`"
    assert any(str(item).startswith("python=3.12") for item in env["dependencies"])


def test_the_running_environment_is_the_locked_one():
    installed = io.installed_packages()
    for name, (version, marker) in lock().items():
        if not marker:
            assert installed.get(name) == version, f"{name}: installed {installed.get(name)}, locked {version}"
