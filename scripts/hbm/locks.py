"""Snakemake's directory lock after an interrupted run."""

import os
from pathlib import Path


def release_stale_locks(workdir: str | Path = ".") -> bool:
    """Remove the directory lock of a run that was killed (SIGKILL, power loss), so that the same
    command can simply be run again; return whether a lock was removed. The lock is kept while any
    Snakemake process on this host (a run, or one of its jobs) works in `workdir`."""
    locks = list(Path(workdir, ".snakemake", "locks").glob("*.lock"))
    if not locks:
        return False
    ours = {os.getpid(), os.getppid()}
    for process in Path("/proc").glob("[0-9]*"):
        try:
            if int(process.name) not in ours and b"snakemake" in (process / "cmdline").read_bytes():
                if os.path.samefile(process / "cwd", workdir):
                    return False
        except OSError:
            continue
    for lock in locks:
        lock.unlink(missing_ok=True)
    return True
