"""Files in and out: logging, atomic writes, provenance attributes, seeded streams."""

from __future__ import annotations

import errno
import gc
import hashlib
import importlib
import json
import logging
import os
import platform
import re
import resource
import shutil
import sys
import sysconfig
import tempfile
import tomllib
import zlib
from contextlib import contextmanager
from functools import cache
from importlib.metadata import PackageNotFoundError, distributions, version
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import xarray as xr

from hbm import locks
from hbm.data import Grouped
from hbm.errors import ConvergenceError, InputError

LOCK = Path(__file__).resolve().parents[2] / "requirements.lock"
PYPROJECT = LOCK.with_name("pyproject.toml")
PACKAGES = ("pymc", "pytensor", "nutpie", "arviz", "arviz-base", "arviz-stats", "numpy", "xarray", "pandas", "netCDF4")


def setup_logging(path: str | Path | None) -> logging.Logger:
    """Log this project's messages (INFO) and other libraries' warnings to `path` and stderr."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if path:
        handlers.append(logging.FileHandler(path, mode="w", encoding="utf-8"))
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers, force=True
    )
    log = logging.getLogger("hbm")
    log.setLevel(logging.INFO)
    return log


@cache
def project() -> dict[str, str]:
    """This workflow's name and version, as pyproject.toml (their one home) gives them."""
    meta = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    return {"name": meta["name"], "version": meta["version"]}


def versions() -> dict[str, str]:
    """The workflow's version, Python's and the modelling libraries'."""
    found = {"workflow": project()["version"], "python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


def installed_packages() -> dict[str, str]:
    """name -> version of every distribution installed in this Python's site-packages (names
    normalised; packages vendored inside others, which some libraries put on sys.path, left out)."""
    site = list(dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib")))
    return {re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d.version for d in distributions(path=site)}


@cache
def environment() -> dict[str, str]:
    """What traces a result to its exact environment: the sha256 of `name==version` (sorted) of every
    installed package, and of requirements.lock, the file that environment was installed from."""
    installed = "\n".join(sorted(f"{name}=={version}" for name, version in installed_packages().items()))
    lock = hashlib.sha256(LOCK.read_bytes()).hexdigest() if LOCK.exists() else "no lock file"
    return {"environment_sha256": hashlib.sha256(installed.encode()).hexdigest(), "lock_sha256": lock}


def provenance(settings: dict, **extra) -> dict[str, str]:
    """NetCDF attributes: the settings the step used, library versions, the environment's hashes and
    the step's own facts, as text."""
    attrs = {key: value if isinstance(value, str) else json.dumps(value) for key, value in extra.items()}
    attrs["settings"] = json.dumps(settings, sort_keys=True, default=str)
    attrs["versions"] = json.dumps(versions(), sort_keys=True)
    return attrs | environment()


def use_compile_cache(path: str | Path) -> None:
    """Make `path` PyTensor's compile cache. PyTensor fixes its cache when it is first imported, so
    this must come before that; if PyTensor is already using another folder, that is an error."""
    wanted = Path(path).resolve()
    if "pytensor" in sys.modules:
        current = Path(sys.modules["pytensor"].config.base_compiledir).resolve()
        if current != wanted:
            raise RuntimeError(f"PyTensor was imported with compile cache {current}, not {wanted}")
        return
    flags = [flag for flag in os.environ.get("PYTENSOR_FLAGS", "").split(",") if flag]
    os.environ["PYTENSOR_FLAGS"] = ",".join([*flags, f"base_compiledir={wanted}"])


def load_modelling(compiledir=None) -> None:
    """Import the modelling libraries (PyTensor, with `compiledir` as its compile cache if given, PyMC,
    nutpie, ArviZ) with the cyclic garbage collector paused, and freeze what they made (`run_step`
    says why): collections during these imports took about half a second of every fit."""
    if compiledir:
        use_compile_cache(compiledir)
    gc.disable()
    try:
        importlib.import_module("hbm.sampling")
    finally:
        gc.enable()
    gc.freeze()


def rng_for(seed: int, *labels: str) -> np.random.Generator:
    """An independent, reproducible random stream for one step of one selection and model."""
    return np.random.default_rng([seed, *(zlib.crc32(label.encode()) for label in labels)])


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside `path`, named after this writer (host, PID namespace, process);
    rename it into place only once writing succeeded. Temporary files of this output left by writers
    that were killed (on this host, in this PID namespace) are removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}."
    for old in path.parent.glob(f"{prefix}*.partial"):
        if locks.writer_is_dead(old.name[len(prefix) :].split(".")[0]):
            old.unlink(missing_ok=True)
    handle, name = tempfile.mkstemp(prefix=f"{prefix}{locks.writer()}.", suffix=".partial", dir=path.parent)
    os.close(handle)
    tmp = Path(name)  # this writer's own: two writers of one output never share a temporary file
    mask = os.umask(0)
    os.umask(mask)
    tmp.chmod(0o666 & ~mask)  # the permissions of any new file, not mkstemp's owner-only ones
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_tree(tree: xr.DataTree, path: str | Path) -> None:
    """Write a DataTree to NetCDF atomically: the file appears complete or not at all. ArviZ's
    `created_at` timestamps are left out, so a rerun writes the same bytes.
    Uncompressed: posterior draws are nearly incompressible and compression costs seconds per file."""
    for node in tree.subtree:  # the same config and seed give the same bytes: no timestamps
        node.attrs.pop("created_at", None)
    with atomic_path(path) as tmp:
        tree.to_netcdf(tmp, engine="netcdf4")


def draws_with_observed(group: str, draws: xr.Dataset, y, obs_id, attrs: dict) -> xr.DataTree:
    """A tree of predictive `draws` (in `group`) beside the observed `y_est`, carrying `attrs`."""
    tree = xr.DataTree.from_dict({group: draws.assign_attrs(attrs), "observed_data": observed_data(y, obs_id)})
    tree.attrs.update(attrs)
    return tree


def observed_data(y, obs_id) -> xr.Dataset:
    """The observed outcome as ArviZ's `observed_data` group: `y_est` over `obs_id`."""
    return xr.Dataset({"y_est": ("obs_id", np.asarray(y, float))}, coords={"obs_id": obs_id})


def read_tree(path: str | Path, groups: list[str] | None = None) -> xr.DataTree:
    """A NetCDF file's groups read into memory, with its attributes: all of them, or only `groups`
    (the others are never read: a posterior file's prior predictive draws take rows x draws)."""
    if groups is None:
        return xr.load_datatree(path, engine="netcdf4")
    with xr.open_datatree(path, engine="netcdf4") as tree:
        part = xr.DataTree.from_dict({group: tree[group].to_dataset().load() for group in groups})
        part.attrs = dict(tree.attrs)
    return part


def recorded_failures(tree: xr.DataTree) -> list[str]:
    """The convergence gate's failures a fit recorded in its file (empty where it passed)."""
    return json.loads(tree.attrs["convergence_failures"])


def sites_left_out(tree: xr.DataTree) -> list[str]:
    """The sites a fit left out (`hbm.data.model_data`; empty where it took every site)."""
    return json.loads(tree.attrs.get("sites_left_out", "[]"))


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a table atomically with Arrow's CSV writer (a tenth of pandas' time for a million rows;
    text quoted only where needed, booleans as true/false, which pandas reads back as booleans)."""
    with atomic_path(path) as tmp:
        pacsv.write_csv(
            pa.Table.from_pandas(frame, preserve_index=False), tmp, pacsv.WriteOptions(quoting_style="needed")
        )


def read_grouped(path: str | Path, outcome: str, group: str) -> Grouped:
    """The subset CSV of one selection as `Grouped`; site order is the order of first appearance."""
    frame = pd.read_csv(path, dtype={group: str}, keep_default_na=False)
    return Grouped.from_frame(frame, outcome, group, list(dict.fromkeys(frame[group])))


def write_outputs(items, outputs: dict, write) -> None:
    """Write each (name, object) of `items` to the rule's output of that name with `write(object, path)`.
    A step writes exactly the outputs its rule names: an unknown or repeated name, or an output left
    unwritten, is an error in the workflow."""
    left = dict(outputs)
    for name, obj in items:
        if name not in left:
            raise KeyError(f"{name!r} is not an output of this rule left to write (outputs: {', '.join(outputs)})")
        write(obj, left.pop(name))
    if left:
        raise KeyError(f"outputs of this rule not written: {', '.join(left)}")


PEAK_MEMORY = "peak memory (resident):"


def logged_peak_memory(log_path: str | Path) -> float | None:
    """The peak memory in MB that `run_step` wrote on the last line of a step's log (None if it is not
    there, e.g. the step was killed)."""
    lines = Path(log_path).read_text().splitlines()
    found = re.search(rf"{re.escape(PEAK_MEMORY)} (\d+) MB$", lines[-1]) if lines else None
    return float(found.group(1)) if found else None


LOW_SPACE = 64 * 2**20  # bytes free below which a failed step is taken to have met a full disk


def disk_full(error: Exception, folder: str | Path = ".") -> str | None:
    """What to tell the user where `error` came from a full disk (no space left, or less than LOW_SPACE
    free on the disk holding `folder`); None otherwise."""
    free = shutil.disk_usage(folder).free
    if getattr(error, "errno", None) != errno.ENOSPC and free >= LOW_SPACE:
        return None
    return (
        f"no space left on the disk holding {Path(folder).resolve()} ({free / 2**20:.0f} MB free) while this "
        f"step wrote its results ({type(error).__name__}: {error}); free some space and run the workflow again: "
        "Snakemake removes this step's incomplete outputs"
    )


def run_step(step, *args, **kwargs):
    """Run a step from its Snakemake job: a bad input or failed check ends it with one message. The log
    ends with the step's peak memory (exact, unlike a benchmark file's sampled max_rss).

    The objects alive before and after the step are moved out of the garbage collector's reach
    (`gc.freeze`): they live until the process ends anyway, and the collections over them, above all
    the one at interpreter exit, took about a second of every job (they are PyMC's, PyTensor's and
    the models' graphs)."""
    log = logging.getLogger("hbm")
    gc.freeze()
    try:
        return step(*args, **kwargs)
    except (InputError, ConvergenceError) as error:
        log.error("%s", error)
        sys.exit(1)
    except Exception as error:  # a full disk shows as many errors (HDF, Arrow, OSError): say what it is
        full = disk_full(error)
        if not full:
            raise
        log.error("%s", full)
        sys.exit(1)
    finally:
        log.info("%s %.0f MB", PEAK_MEMORY, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        gc.freeze()
