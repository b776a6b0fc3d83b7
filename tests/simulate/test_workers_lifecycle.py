"""Local workers never outlive the command: SIGTERM, SIGINT and SIGKILL of ``sweep --workers 2``
leave no process running; more workers than cores are capped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LONG_SWEEP = ["sweep", "--workers", "2", "--calls", "40000", "--minutes", "60", "--json"]


def children(pid: int) -> set[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return {int(x) for x in out.stdout.split()}


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"  # a zombie has exited (its parent has not reaped it yet)


def start(err: Path) -> tuple[subprocess.Popen[bytes], set[int]]:
    with err.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "context_manager", *LONG_SWEEP],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=sink,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    workers: set[int] = set()
    while time.monotonic() < deadline:
        # The pool's workers (and the resource tracker, also a child): wait for the workers.
        workers = {p for p in children(proc.pid) if alive(p)}
        if len(workers) >= 2:
            time.sleep(1.0)  # at work
            return proc, {p for p in children(proc.pid) if alive(p)}
        time.sleep(0.1)
    proc.kill()
    pytest.fail("the sweep started no workers")


def gone(pids: set[int], seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 cores for 2 workers")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_sweep_stops_its_workers(sig: signal.Signals, tmp_path: Path) -> None:
    proc, workers = start(tmp_path / "err")
    proc.send_signal(sig)
    assert proc.wait(30) == 2
    assert (tmp_path / "err").read_text().strip() == "error: interrupted"
    assert gone(workers), [p for p in workers if alive(p)]


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 cores for 2 workers")
def test_a_killed_sweep_leaves_no_orphan(tmp_path: Path) -> None:
    proc, workers = start(tmp_path / "err")
    proc.kill()  # SIGKILL: no handler runs; each worker notices its parent is gone
    proc.wait(30)
    assert gone(workers), [p for p in workers if alive(p)]


def test_more_workers_than_cores_are_capped_with_a_warning() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "context_manager", "sweep", "--workers", "100000", "--calls",
         "2", "--minutes", "5", "--truncation", "auto", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    cores = os.cpu_count()
    assert done.stderr.strip() == (
        f"warning: --workers 100000 is more than this machine's {cores} cores; using {cores}"
    )
