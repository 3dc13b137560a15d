"""Project conventions a user relies on: the rules' conda env pins what pip installs."""

import yaml
from conftest import ROOT


def pins(lines):
    return {line.split("==")[0].lower(): line.split("==")[1] for line in lines if "==" in line}


def test_conda_env_pins_the_same_versions_as_requirements():
    requirements = pins(
        line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines() if not line.startswith("#")
    )
    env = yaml.safe_load((ROOT / "envs" / "hbm.yaml").read_text())
    pip_section = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    env_pins = pins(pip_section)
    assert env_pins, "no pinned packages in envs/hbm.yaml"
    for name, version in env_pins.items():
        assert requirements.get(name) == version, name
    assert {"pymc", "arviz", "nutpie", "pytensor", "numpy", "xarray"} <= env_pins.keys()
    assert any(str(item).startswith("python=3.12") for item in env["dependencies"])
