"""What every step's job shares: `io.run_step`."""

import subprocess
import sys
import textwrap

from helpers import ROOT

STEP = """
import gc, sys
sys.path.insert(0, {scripts!r})
from hbm import io

kept = []

def step():
    kept.extend([[i] for i in range(20000)])  # what a step leaves alive until the process ends

before = gc.get_freeze_count()
io.run_step(step)
print(before, gc.get_freeze_count())
"""


def test_a_step_leaves_its_objects_out_of_the_collectors_reach():
    """The objects alive before and after the step are frozen, so the collection at interpreter exit
    does not walk them."""
    code = textwrap.dedent(STEP).format(scripts=str(ROOT / "scripts"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = map(int, done.stdout.split())
    assert after - before >= 20000, done.stdout


MODELLING = """
import gc, sys
sys.path.insert(0, {scripts!r})
from hbm import io

before = gc.get_freeze_count()
io.load_modelling({compiledir!r})
import pytensor
print(before, gc.get_freeze_count(), gc.isenabled(), "pymc" in sys.modules, pytensor.config.base_compiledir)
"""


def test_the_modelling_libraries_load_into_the_given_compile_cache_and_are_frozen(tmp_path):
    code = textwrap.dedent(MODELLING).format(scripts=str(ROOT / "scripts"), compiledir=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after, enabled, pymc, compiledir = done.stdout.split()
    assert int(after) - int(before) > 100000, done.stdout  # PyMC's, PyTensor's and ArviZ's objects
    assert (enabled, pymc, compiledir) == ("True", "True", str(tmp_path)), done.stdout


FULL = """
import logging, sys
sys.path.insert(0, {scripts!r})
from hbm import io

logging.basicConfig(level=logging.INFO)

def step():
    with open("/dev/full", "w") as handle:  # every write to it fails with ENOSPC, as on a full disk
        handle.write("x" * 100000)

io.run_step(step)
"""


def test_a_step_that_meets_a_full_disk_says_so():
    code = textwrap.dedent(FULL).format(scripts=str(ROOT / "scripts"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert "no space left on the disk" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_failure_on_a_nearly_full_disk_is_told_as_a_full_disk(monkeypatch):
    """HDF5 and Arrow report a full disk in their own words: a failure with too little space left is
    told as a full disk, any other failure is left as it is."""
    import collections

    from hbm import io

    usage = collections.namedtuple("usage", "total used free")
    error = RuntimeError("NetCDF: HDF error")
    monkeypatch.setattr(io.shutil, "disk_usage", lambda folder: usage(10**9, 10**9 - 2**20, 2**20))
    assert "no space left on the disk" in io.disk_full(error) and "NetCDF: HDF error" in io.disk_full(error)
    monkeypatch.setattr(io.shutil, "disk_usage", lambda folder: usage(10**12, 10**9, 10**12 - 10**9))
    assert io.disk_full(error) is None
