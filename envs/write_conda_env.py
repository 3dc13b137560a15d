"""Write envs/hbm.yaml from requirements.lock: the rules' conda env pins every locked package at its
locked version (`make lock` runs this after compiling the lock)."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = """\
# Conda environment of every rule, written by `make lock` from requirements.lock: every package at its
# locked version, installed from PyPI. Do not edit by hand.
name: hbm
channels:
  - conda-forge
dependencies:
  - python=3.12
  - graphviz
  - pip
  - pip:
"""
PIN = re.compile(r"^([A-Za-z0-9_.\-]+==[^\s;\\]+)(\s*;\s*[^\\]+?)?\s*\\?$")


def locked_requirements(lock: Path) -> list[str]:
    """`name==version` (with its environment marker, if any) of every package in a pip lock file."""
    found = []
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line)
        if match:
            found.append(match.group(1) + (f" ;{match.group(2).split(';', 1)[1]}" if match.group(2) else ""))
    return found


def main(lock=ROOT / "requirements.lock", out=ROOT / "envs" / "hbm.yaml") -> None:
    lines = [f'      - "{requirement}"\n' for requirement in locked_requirements(Path(lock))]
    Path(out).write_text(HEADER + "".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main(*sys.argv[1:])
