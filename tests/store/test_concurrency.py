"""Several processes migrating one new database at the same moment: all succeed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

pytestmark = pytest.mark.network_allowed  # PostgreSQL on loopback

MIGRATOR = str(Path(__file__).with_name("migrator.py"))


def _race(
    mode: str, url: str, barrier: Path, count: int = 4
) -> list[subprocess.CompletedProcess[str]]:
    barrier.mkdir()
    procs = [
        subprocess.Popen([sys.executable, MIGRATOR, mode, url, str(barrier), str(count)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(count)
    ]  # fmt: skip
    done = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return done


def _at_head(url: str) -> None:
    engine = create_engine(url)
    with engine.connect() as c:
        assert c.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [
            "0006"
        ]
    assert {"conversations", "items", "server_items", "usage"} <= set(
        inspect(engine).get_table_names()
    )
    engine.dispose()


@pytest.mark.parametrize("mode", ["cli", "store"])
def test_four_processes_migrating_a_new_database_at_once_all_succeed(
    db_url: str, mode: str, tmp_path: Path
) -> None:
    """`context-manager db upgrade` x4, and `Store(url)` x4 (each process waits at a barrier
    until all four are ready, so their migrations overlap: without the lock, PostgreSQL fails
    three of four with a unique violation on ``pg_type``)."""
    runs = _race(mode, db_url, tmp_path / "barrier")
    assert [r.returncode for r in runs] == [0] * 4, [r.stderr[-500:] for r in runs]
    assert all(r.stderr == "" for r in runs), [r.stderr[-500:] for r in runs]
    _at_head(db_url)
