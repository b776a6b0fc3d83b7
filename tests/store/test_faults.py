"""Writers in other processes: concurrent appends and a writer killed with SIGKILL."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from context_manager.store import Store

pytestmark = pytest.mark.network_allowed  # PostgreSQL on loopback

WRITER = str(Path(__file__).with_name("writer.py"))


def writer(url: str, cid: str, tag: str, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, WRITER, url, cid, tag, str(count)], stdout=subprocess.PIPE, text=True
    )


def test_two_processes_appending_to_one_conversation_lose_nothing(db_url: str) -> None:
    store = Store(db_url)
    cid = store.create_conversation()
    procs = [writer(db_url, cid, tag, 60) for tag in ("A", "B")]
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0 and out.split()[-1] == "60"
    texts = [i.text for i in store.load(cid).items]
    assert len(texts) == 120
    for tag in ("A", "B"):  # every item, each writer's in its own order
        assert [t for t in texts if t.startswith(tag)] == [f"{tag} {n}" for n in range(60)]
    store.close()


def test_a_writer_killed_with_sigkill_loses_at_most_what_it_had_not_committed(
    db_url: str,
) -> None:
    store = Store(db_url)
    cid = store.create_conversation()
    p = writer(db_url, cid, "K", 100_000)
    assert p.stdout is not None
    committed = 0
    while committed < 40:
        committed = int(p.stdout.readline())
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    assert p.returncode == -signal.SIGKILL
    rest = p.stdout.read().split()  # what it printed before it died
    p.stdout.close()
    reported = int(rest[-1]) if rest else committed
    texts = [i.text for i in store.load(cid).items]
    # Everything it reported survived, in order; at most the one commit it had not reported.
    assert reported <= len(texts) <= reported + 1
    assert texts == [f"K {n}" for n in range(len(texts))]
    store.append(cid, [])  # the store is still writable after the kill
    store.close()
