"""SIGKILL mid-call, then resume in a new process: nothing the application sent is lost.

The fake server runs in this process (on a thread of its own); the application runs in a
child process that logs each turn after `conversation.item.create` returned, and is killed
with SIGKILL while it talks. A second process connects with the same conversation id: it gets
the ``resume`` rollover event first, the crashed process's sessions are ended in the store, and
every turn the first process had sent is stored exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from context_manager.store.models import ItemRow, SessionRow
from context_manager.testing import FakeRealtimeServer

pytestmark = pytest.mark.network_allowed

APP = textwrap.dedent(
    """
    import asyncio, json, sys
    from openai import AsyncOpenAI
    from context_manager import ContextEngine
    from context_manager.realtime import connect
    from context_manager.store import AsyncStore

    base_url, db, log, start, turns = sys.argv[1:6]
    start, turns = int(start), int(turns)

    async def main():
        engine = ContextEngine("gpt-realtime", "openai")
        async with AsyncStore(db) as store:
            client = AsyncOpenAI(api_key="test-key", base_url=base_url)
            async with connect(client, model="gpt-realtime", engine=engine, store=store,
                               conversation_id="call-1") as conn:
                if start:
                    first = await conn.recv()
                    print(json.dumps({"type": first.type, "reason": first.reason}), flush=True)
                for n in range(start, start + turns):
                    text = f"Turn {n}: my booking code is K{n:04d}."
                    await conn.conversation.item.create(item={"type": "message", "role": "user",
                        "content": [{"type": "input_text", "text": text}]})
                    with open(log, "a") as fh:
                        fh.write(text + "\\n")
                    await conn.response.create()
                    while (await conn.recv()).type != "response.done":
                        pass
            await client.close()

    asyncio.run(main())
    """
)


@pytest.fixture
def server_url() -> Iterator[str]:
    """A fake server on a thread of its own, so it outlives the killed application."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, object] = {}

    async def serve() -> None:
        async with FakeRealtimeServer(expiry_poll_seconds=None) as server:
            box["url"] = server.base_url
            box["stop"] = stop = asyncio.Event()
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield str(box["url"])
    stop = box["stop"]
    assert isinstance(stop, asyncio.Event)
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)
    loop.close()


def _app(url: str, db: str, log: Path, start: int, turns: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", APP, url, db, str(log), str(start), str(turns)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_killed_application_resumes_in_a_new_process_and_loses_nothing(
    server_url: str, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'call.db'}"
    log = tmp_path / "sent.log"
    first = _app(server_url, db, log, 0, 10_000)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and first.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= 6:
            break
        time.sleep(0.02)
    assert first.poll() is None, first.stderr.read() if first.stderr else ""
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=10)
    assert first.returncode == -signal.SIGKILL
    sent_before = log.read_text().splitlines()

    second = _app(server_url, db, log, 100, 3)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err[-2000:]
    assert json.loads(out.splitlines()[0]) == {
        "type": "context_manager.rollover",
        "reason": "resume",
    }

    engine = create_engine(db)
    with engine.connect() as c:
        texts = Counter(
            str(r.content.get("text"))
            for r in c.execute(select(ItemRow.content)).all()
            if r.content.get("role") == "user"
        )
        sessions = c.execute(select(SessionRow.end_reason)).all()
    engine.dispose()
    # Every turn either process logged as sent is stored exactly once.
    sent = log.read_text().splitlines()
    assert len(sent) == len(sent_before) + 3
    assert all(texts[t] == 1 for t in sent), {t: texts[t] for t in sent if texts[t] != 1}
    # The crashed process's session was ended by the one that resumed; that one closed its own.
    reasons = [r.end_reason for r in sessions]
    assert reasons == ["abandoned", "closed"]


AUDIO_APP = textwrap.dedent(
    """
    import asyncio, base64, json, sys
    from openai import AsyncOpenAI
    from context_manager import ContextEngine
    from context_manager.realtime import connect
    from context_manager.store import AsyncStore
    from context_manager.testing.speech import say, silence

    base_url, db, log, start, turns = sys.argv[1:6]
    start, turns = int(start), int(turns)

    def note(line):
        with open(log, "a") as fh:
            fh.write(line + "\\n")

    async def main():
        engine = ContextEngine("gpt-realtime", "openai")
        async with AsyncStore(db) as store:
            client = AsyncOpenAI(api_key="test-key", base_url=base_url)
            async with connect(client, model="gpt-realtime", engine=engine, store=store,
                               conversation_id="call-2") as conn:
                if start:
                    first = await conn.recv()
                    print(json.dumps({"type": first.type, "reason": first.reason,
                                      "lost_turn_ms": first.lost_turn_ms}), flush=True)
                for n in range(start, start + turns):
                    audio = say(f"my booking code is K{n:04d}") + silence(800)
                    note(f"speaking {n}")
                    for i in range(0, len(audio), 4800):  # 100 ms chunks, paced like a microphone
                        chunk = base64.b64encode(audio[i:i + 4800]).decode()
                        await conn.input_audio_buffer.append(audio=chunk)
                        await asyncio.sleep(0.01)
                    while (await conn.recv()).type != "response.done":
                        pass
                    note(f"answered {n}")
            await client.close()

    asyncio.run(main())
    """
)


def test_a_process_killed_while_the_caller_speaks_reports_the_lost_turn(
    server_url: str, tmp_path: Path
) -> None:
    """SIGKILL in the middle of a spoken turn (audio appended, not committed): the resumed
    process gets the ``resume`` event with the lost turn's length, the crashed session keeps
    it in the store, and every turn that was answered is stored once."""
    db = f"sqlite:///{tmp_path / 'call.db'}"
    log = tmp_path / "said.log"

    def run(start: int, turns: int) -> subprocess.Popen[str]:
        argv = [sys.executable, "-c", AUDIO_APP, server_url, db, str(log), str(start), str(turns)]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    first = run(0, 10_000)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and first.poll() is None:
        if log.exists() and "speaking 3" in log.read_text():
            break
        time.sleep(0.005)
    time.sleep(0.12)  # about a third of the turn's audio is appended
    assert first.poll() is None, first.stderr.read() if first.stderr else ""
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=10)
    said = log.read_text().splitlines()
    assert said[-1] == "speaking 3", said  # killed mid-turn

    second = run(100, 2)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err[-2000:]
    resume = json.loads(out.splitlines()[0])
    assert resume["type"] == "context_manager.rollover" and resume["reason"] == "resume"
    assert resume["lost_turn_ms"] > 0

    engine = create_engine(db)
    with engine.connect() as c:
        sessions = c.execute(
            select(SessionRow.end_reason, SessionRow.open_turn_ms).order_by(SessionRow.id)
        ).all()
        users = c.execute(select(ItemRow.uid).where(ItemRow.role == "user")).scalars().all()
    engine.dispose()
    # The crashed session keeps the lost turn's length; the resumed one ended clean.
    assert [tuple(s) for s in sessions] == [
        ("abandoned", resume["lost_turn_ms"]),
        ("closed", None),
    ]
    # One stored user item per answered turn (three before the kill, two after), each once.
    answered = [line for line in log.read_text().splitlines() if line.startswith("answered")]
    assert len(answered) == 5
    assert len(users) == len(set(users)) == 5
