"""Safe on shared storage: a lock is released only when its owner provably died, a run that cannot
see the owner (another PID namespace, as on another node) neither removes the lock nor runs, and two
writers of one output never share a temporary file."""

import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from hbm import cluster, io, locks
from helpers import ROOT, SNAKEMAKE, load_config, write_config


def lock_folder(workdir):
    folder = workdir / locks.LOCKS
    folder.mkdir(parents=True)
    (folder / "0.output.lock").write_text("results/x\n")
    return folder


def owner(folder, pid, host=None, namespace=None, started=None):
    here, space, _ = locks.writer().split("~")
    path = folder / f"owner.{host or here}~{namespace or space}~{pid}"
    path.write_text(f"{started or locks._started(pid)}\n")
    return path


@pytest.fixture
def dead_pid():
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_a_dead_owner_on_this_host_releases_the_lock(tmp_path, dead_pid):
    folder = lock_folder(tmp_path)
    owner(folder, dead_pid)
    assert locks.release_stale_locks(tmp_path) == "released"
    assert not list(folder.iterdir())


@pytest.mark.parametrize(
    "who",
    ["a live process", "another host", "another PID namespace", "no recorded owner", "a reused PID", "one live of two"],
)
def test_a_lock_is_kept_unless_every_owner_provably_died(tmp_path, dead_pid, who):
    folder = lock_folder(tmp_path)
    if who == "a live process":
        owner(folder, os.getpid())
    elif who == "another host":
        owner(folder, dead_pid, host="node42")
    elif who == "another PID namespace":
        owner(folder, dead_pid, namespace="1")
    elif who == "a reused PID":  # the recorded process started at another time than the one with its PID now
        owner(folder, os.getpid(), started="1")
    elif who == "one live of two":
        owner(folder, dead_pid)
        owner(folder, os.getpid())
    if who == "a reused PID":
        assert locks.release_stale_locks(tmp_path) == "released"
    else:
        assert locks.release_stale_locks(tmp_path) == "kept"
        assert (folder / "0.output.lock").exists()


def test_writers_of_one_output_never_share_a_temporary_file(tmp_path):
    target = tmp_path / "table.csv"
    with io.atomic_path(target) as first, io.atomic_path(target) as second:
        assert first != second and first.parent == second.parent == tmp_path
        first.write_text("first writer\n" * 1000)
        second.write_text("second\n")
    assert target.read_text() == "first writer\n" * 1000  # the last to finish wins, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~current_umask())


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.skipif(not shutil.which("unshare") or os.geteuid() != 0, reason="needs unshare and root")
def test_a_run_in_another_pid_namespace_keeps_the_lock_and_is_refused(tmp_path):
    """A live run; then, from a fresh PID namespace (as from another node), a dry run and a real run."""
    workdir = tmp_path / "run"
    workdir.mkdir()
    config = load_config("tests/config/test.yaml")
    config["sampling"].update(draws=3000, tune=3000)  # long enough to act while it samples
    configfile = write_config(workdir / "config.yaml", config)
    command = [str(SNAKEMAKE), "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir)]
    command += ["--configfile", str(configfile), "--replace-workflow-config", "--cores", "1"]
    first = subprocess.Popen(
        command, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 300
        while not list((workdir / locks.LOCKS).glob("*.lock")):
            assert first.poll() is None and time.monotonic() < deadline, "the first run never locked"
            time.sleep(0.1)
        isolated = ["unshare", "-fp", "--mount-proc"]
        dry = subprocess.run([*isolated, *command, "-n"], cwd=workdir, capture_output=True, text=True, timeout=300)
        assert "snakemake --unlock" in dry.stderr + dry.stdout
        assert list((workdir / locks.LOCKS).glob("*.lock")), "the dry run removed a live run's lock"
        second = subprocess.run(isolated + command, cwd=workdir, capture_output=True, text=True, timeout=300)
        assert second.returncode != 0 and "Directory cannot be locked" in second.stdout + second.stderr
        assert first.poll() is None, "the first run was disturbed"
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()


def test_command_line_resources_add_to_the_rules_own(tmp_path):
    """The README's cluster command: account and partition are added, every rule keeps its memory and
    time, and --set-resources changes only what it names."""
    result = subprocess.run(
        [str(SNAKEMAKE), "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path)]
        + ["--configfile", str(write_config(tmp_path / "c.yaml", load_config("tests/config/test.yaml")))]
        + ["--replace-workflow-config", "--workflow-profile", str(ROOT / "profiles" / "slurm"), "-n"]
        + ["--default-resources", "slurm_account=acc", "slurm_partition=part", "--set-resources", "fit:runtime=60"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = re.findall(r"^rule (\w+):.*?^    resources: ([^\n]+)", result.stdout, flags=re.S | re.M)
    expected = {"fit": (1500, 60), "tables": (2000, 15), "plot_fits": (1500, 15), "predict_new_site": (800, 15)}
    seen = set()
    for rule, line in jobs:
        resources = dict(item.split("=", 1) for item in line.split(", "))
        assert resources["slurm_account"] == "acc" and resources["slurm_partition"] == "part", (rule, line)
        if rule in expected:
            assert (int(resources["mem_mb"]), int(resources["runtime"])) == expected[rule], (rule, line)
            seen.add(rule)
    assert seen == set(expected), jobs


@pytest.mark.skipif(not shutil.which("sbatch") and not os.environ.get("CI"), reason="no SLURM here")
def test_jobs_left_by_a_killed_run_are_named_with_the_command_that_ends_them(tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    submitted = subprocess.run(
        ["sbatch", "--parsable", "-D", str(workdir), "-o", "/dev/null", "--wrap", "sleep 300"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert submitted.returncode == 0, submitted.stderr
    job = submitted.stdout.strip().split(";")[0]
    try:
        configfile = write_config(workdir / "config.yaml", load_config("tests/config/test.yaml"))
        command = [str(SNAKEMAKE), "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir)]
        result = subprocess.run(
            [*command, "--configfile", str(configfile), "--replace-workflow-config", "--cores", "1"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode != 0 and f"scancel {job}" in result.stdout + result.stderr
        assert not (workdir / "results").exists()
    finally:
        subprocess.run(["scancel", job], timeout=60)


def test_jobs_out_of_time_or_memory_are_told_what_to_raise():
    log = (
        "Error in rule fit:\n    message: SLURM-job '17' failed, SLURM status is: 'TIMEOUT'. Reason: Unknown.\n"
        "Error in rule fit:\n    message: SLURM-job '18' failed, SLURM status is: 'TIMEOUT'. Reason: Unknown.\n"
        "Error in rule tables:\n    message: SLURM-job '19' failed, SLURM status is: 'OUT_OF_MEMORY'. Reason: x.\n"
        "Error in rule plot_fits:\n    message: SLURM-job '20' failed, SLURM status is: 'FAILED'. Reason: x.\n"
    )
    lines = cluster.advice(log)
    assert len(lines) == 2
    assert "fit ran out of time" in lines[0] and "--set-resources fit:runtime=" in lines[0]
    assert "tables ran out of memory" in lines[1] and "--set-resources tables:mem_mb=" in lines[1]


def test_temporary_files_of_killed_writers_are_removed(tmp_path, dead_pid):
    target = tmp_path / "posterior.nc"
    host, namespace, _ = locks.writer().split("~")
    killed = tmp_path / f".posterior.nc.{host}~{namespace}~{dead_pid}.x1y2.partial"
    elsewhere = tmp_path / f".posterior.nc.node42~{namespace}~{dead_pid}.x1y2.partial"
    for path in (killed, elsewhere):
        path.write_text("half a file")
    with io.atomic_path(target) as tmp:
        tmp.write_text("whole")
    assert not killed.exists(), "a killed writer's temporary file was left"
    assert elsewhere.exists(), "a temporary file of a writer on another host was removed"
    assert target.read_text() == "whole"
