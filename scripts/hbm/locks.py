"""Snakemake's directory lock after an interrupted run.

Snakemake locks a folder for the length of a run and leaves the lock behind when the run is killed
(SIGKILL, power loss), so the same command then refuses to start. Each run of this workflow records
its owner beside the lock (`owner.HOST~NAMESPACE~PID`, holding the process's start time). A lock is
released only when every recorded owner provably is dead: a process of this host, in this PID
namespace, that no longer runs. A lock whose owner runs, or runs where this process cannot see
(another host or PID namespace, e.g. a cluster node), or that has no recorded owner, is kept, and
`snakemake --unlock` is the way to release it by hand.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

LOCKS = Path(".snakemake", "locks")


def _namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return "none"


def _started(pid: int) -> str:
    """The process's start time (clock ticks since boot), so a reused PID is not taken for it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "unknown"


def _alive(pid: int, started: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return started in ("unknown", _started(pid))


def writer() -> str:
    """This process, fit for a file name: host, PID namespace and process id."""
    namespace = "".join(ch for ch in _namespace() if ch.isdigit()) or "0"
    return f"{socket.gethostname().replace('.', '_')}~{namespace}~{os.getpid()}"


def writer_is_dead(name: str, started: str = "unknown") -> bool:
    """Whether the process `name` (from `writer()`; `started`: its start time, where known) provably no
    longer runs: it is of this host and PID namespace, and no such process runs."""
    try:
        host, namespace, pid = name.split("~")
        pid = int(pid)
    except ValueError:
        return False
    here, space, _ = writer().split("~")
    return host == here and namespace == space and not _alive(pid, started)


def _owner_is_dead(path: Path) -> bool:
    """Whether the owner recorded in `path` (named after it, holding its start time) no longer runs."""
    try:
        started = path.read_text().strip()
    except OSError:
        return False
    return writer_is_dead(path.name.removeprefix("owner."), started)


def release_stale_locks(workdir: str | Path = ".") -> str:
    """Release the lock of a run that provably died; return what was done ("" if there was no lock)."""
    folder = Path(workdir, LOCKS)
    locks = list(folder.glob("*.lock"))
    recorded = sorted(folder.glob("owner.*"))
    if not locks:
        for path in recorded:  # owners of finished or refused runs
            if _owner_is_dead(path):
                path.unlink(missing_ok=True)
        return ""
    if recorded and all(_owner_is_dead(path) for path in recorded):
        for path in [*locks, *recorded]:
            path.unlink(missing_ok=True)
        return "released"
    return "kept"


def record_owner(workdir: str | Path = ".") -> Path:
    """Record this process as an owner of the run it starts in `workdir`."""
    folder = Path(workdir, LOCKS)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"owner.{writer()}"
    path.write_text(f"{_started(os.getpid())}\n")
    return path
