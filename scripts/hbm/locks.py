"""Snakemake's directory lock after an interrupted run.

Snakemake locks a folder for the length of a run and leaves the lock behind when the run is killed
(SIGKILL, power loss), so the same command then refuses to start. Each run of this workflow records
its owner beside the lock (`owner.HOST.PID`: the host, the process, its start time and PID
namespace). A lock is released only when every recorded owner provably is dead: a process of this
host, in this PID namespace, that no longer runs. A lock whose owner runs, or runs where this
process cannot see (another host or PID namespace, e.g. a cluster node), or that has no recorded
owner, is kept, and `snakemake --unlock` is the way to release it by hand.
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


def _owner_is_dead(path: Path) -> bool:
    """Whether the owner recorded in `path` provably no longer runs."""
    try:
        host, pid, started, namespace = path.read_text().split("\n")[:4]
        pid = int(pid)
    except (OSError, ValueError):
        return False
    if host != socket.gethostname() or namespace != _namespace():
        return False
    return not _alive(pid, started)


def owners(workdir: str | Path = ".") -> list[Path]:
    return sorted(Path(workdir, LOCKS).glob("owner.*"))


def release_stale_locks(workdir: str | Path = ".") -> str:
    """Release the lock of a run that provably died; return what was done ("" if there was no lock)."""
    folder = Path(workdir, LOCKS)
    locks = list(folder.glob("*.lock"))
    recorded = owners(workdir)
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
    host, pid = socket.gethostname(), os.getpid()
    path = folder / f"owner.{host}.{pid}"
    path.write_text(f"{host}\n{pid}\n{_started(pid)}\n{_namespace()}\n")
    return path


def writer() -> str:
    """This process as a writer: host, PID namespace and process id, fit for a file name."""
    namespace = "".join(ch for ch in _namespace() if ch.isdigit()) or "0"
    return f"{socket.gethostname().replace('.', '_')}~{namespace}~{os.getpid()}"


def writer_is_dead(name: str) -> bool:
    """Whether the writer `name` (from `writer()`) provably no longer runs: this host and PID namespace,
    and no such process."""
    try:
        host, namespace, pid = name.split("~")
        pid = int(pid)
    except ValueError:
        return False
    here, space, _ = writer().split("~")
    return host == here and namespace == space and not _alive(pid, "unknown")
