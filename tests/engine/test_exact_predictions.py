"""The engine's prediction of every response equals the fake server's usage, field by field,
across compactions (a summary inserted at the root) and rollovers (cross-session cache hits
on a shared prompt cache), through the real `openai` client and the managed connection."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from context_manager import (
    ContextEngine,
    ManualClock,
    RolloverPolicy,
    get_model_profile,
    get_provider_profile,
)
from context_manager.compaction import RollingSummary
from context_manager.testing.faults import run_call

pytestmark = pytest.mark.network_allowed

PROVIDER = get_provider_profile("azure").model_copy(
    update={"name": "short", "max_session_seconds": 240.0}
)
FIELDS = ("input_text", "input_audio", "cached_text", "cached_audio", "output_text", "output_audio")


@pytest.mark.parametrize("compaction", [False, True], ids=["rollovers", "rollovers+compaction"])
def test_every_prediction_is_exact(compaction: bool, tmp_path: Path) -> None:
    engine = ContextEngine(
        "gpt-realtime", PROVIDER,
        compaction=RollingSummary(trigger=0.02, keep=4, budget=200) if compaction else None,
        rollover=RolloverPolicy(budget_tokens=1500, carry="summary", summary_tokens=300),
        rollover_margin_seconds=40, clock=ManualClock(),
    )  # fmt: skip
    db = f"sqlite:///{tmp_path / 'call.db'}"
    report = asyncio.run(run_call(engine, db, minutes=11.0, summary_timeout_seconds=30.0))
    assert report.rollovers == ["rollover"] * 3
    assert (engine.compactions > 0) == compaction
    columns = ", ".join(f"{f}, predicted_{f}" for f in FIELDS)
    db_engine = create_engine(db)
    with db_engine.connect() as c:
        rows = c.execute(text(f"SELECT session_id, {columns} FROM usage ORDER BY id")).all()
    db_engine.dispose()
    assert len(rows) == engine.responses > 90
    cached = 0
    for row in rows:
        observed, predicted = row[1::2], row[2::2]
        pairs = dict(zip(FIELDS, zip(observed, predicted, strict=True), strict=True))
        assert observed == predicted, f"session {row[0]}: {pairs}"
        cached += observed[2] + observed[3]
    assert cached > 0


def test_an_item_echoed_after_null_is_first_and_one_echoed_without_a_place_is_last() -> None:
    from context_manager.live import SessionMirror

    mirror = SessionMirror(get_model_profile("gpt-realtime"))
    mirror.feed({"type": "session.created", "session": {"instructions": "Hi."}})

    def added(item_id: str, **where: object) -> None:
        mirror.feed({"type": "conversation.item.added", **where, "item": {"id": item_id,
            "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": item_id}]}})  # fmt: skip

    added("u1", previous_item_id=None)
    added("u2", previous_item_id="u1")
    added("summary", previous_item_id=None)  # inserted at "root": the server says null
    added("u3")  # no place given: the end
    mirror.flush()
    assert [i.id for i in mirror.server.items] == ["summary", "u1", "u2", "u3"]
