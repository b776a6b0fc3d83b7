"""Every benchmark script in benchmarks/ runs as docs/benchmarks.md shows, at a toy size.

Only that they run and print their table: their figures are timings, read by people (and
compared within one run), never asserted here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

RUNS = {
    "bench_accounting.py": (
        ["--turns", "60", "--minutes", "3", "--repeats", "1"],
        "running budget / tokenize once",
    ),
    "bench_server_model.py": (["--minutes", "10", "--repeats", "1"], "ratio"),
    "bench_simulator.py": (
        ["--calls", "40", "--reference-calls", "2", "--repeats", "1", "--compaction-calls", "1"],
        "sixty-minute calls",
    ),
    "bench_summarizer.py": ([], "planning one compaction"),
    "bench_store.py": (["--items", "300"], "seed, summary, 1,000 new"),
    "bench_engine.py": (["--minutes", "4", "--repeats", "1"], "engine / tokenize once, first hour"),
    "bench_peers.py": (["--turns", "40", "--repeats", "1"], "LlamaIndex ChatMemoryBuffer"),
    "soak_live.py": (
        ["--runs", "1", "--minutes", "5", "--faults", "drop mid-call"],
        "drop mid-call",
    ),
}


def test_every_script_is_covered() -> None:
    scripts = [*(ROOT / "benchmarks").glob("bench_*.py"), *(ROOT / "benchmarks").glob("soak_*.py")]
    assert sorted(p.name for p in scripts) == sorted(RUNS)


@pytest.mark.parametrize("script", sorted(RUNS))
def test_the_benchmark_runs(script: str) -> None:
    args, expected = RUNS[script]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert expected in proc.stdout, proc.stdout[-2000:]
