"""SLURM: jobs a killed run left behind, and what to raise when jobs run out of time or memory."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

RESOURCE = {"TIMEOUT": ("runtime", "minutes"), "OUT_OF_MEMORY": ("mem_mb", "MB")}
FAILED = re.compile(r"Error in rule (\w+):\s+message: SLURM-job '\d+' failed, SLURM status is: '(\w+)'")


def leftover_jobs(workdir: str | Path = ".") -> list[str]:
    """SLURM jobs of this user still queued or running in `workdir` (a run's jobs are submitted with
    it as their working directory); [] where SLURM does not answer."""
    try:
        listing = subprocess.run(
            ["squeue", "--me", "--noheader", "--format", "%i|%Z"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    here = Path(workdir).resolve()
    found = []
    for line in listing.splitlines():
        job, _, folder = line.strip().partition("|")
        if folder and Path(folder).resolve() == here:
            found.append(job)
    return found


def advice(log_text: str) -> list[str]:
    """For each rule whose SLURM jobs failed for time or memory (after their retries, each asking for more),
    which resource to raise and how."""
    found = dict.fromkeys(FAILED.findall(log_text))
    lines = []
    for rule, status in found:
        if status in RESOURCE:
            resource, unit = RESOURCE[status]
            lines.append(
                f"{rule} ran out of {'time' if status == 'TIMEOUT' else 'memory'} (SLURM status {status}): raise its "
                f"{resource} ({unit}) with --set-resources {rule}:{resource}=VALUE, or for good in its rule "
                "(workflow/rules/*.smk, `scaled`)"
            )
    return lines
