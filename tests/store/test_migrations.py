"""The Alembic migrations, one revision at a time, keep the data they find."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import create_engine, text

from context_manager.store import downgrade, upgrade

pytestmark = pytest.mark.network_allowed  # PostgreSQL on loopback


def test_0002_moves_the_predicted_totals_and_downgrading_restores_them(db_url: str) -> None:
    upgrade(db_url, "0001")
    engine = create_engine(db_url)
    now = dt.datetime(2026, 11, 21, 12, 0)
    with engine.begin() as c:
        c.execute(text("INSERT INTO conversations (id, created_at) VALUES ('c', :t)"), {"t": now})
        c.execute(text(
            "INSERT INTO usage (conversation_id, input_text, input_audio, cached_text,"
            " cached_audio, output_text, output_audio, predicted_input, predicted_cached,"
            " cost_usd, created_at) VALUES ('c', 100, 50, 64, 0, 10, 20, 150, 64, 0.01, :t)"
        ), {"t": now})  # fmt: skip
    upgrade(db_url, "0002")  # then 0003 in its own test
    with engine.connect() as c:
        row = c.execute(text("SELECT * FROM usage")).mappings().one()
    assert (row["predicted_input_text"], row["predicted_cached_text"]) == (150, 64)
    assert row["predicted_input_audio"] is None and row["input_image"] == 0
    assert "predicted_input" not in row

    with engine.begin() as c:
        c.execute(text("UPDATE usage SET predicted_input_audio = 0, predicted_input_image = 0,"
                       " predicted_cached_audio = 0, predicted_cached_image = 0"))  # fmt: skip
    downgrade(db_url, "0001")
    with engine.connect() as c:
        row = c.execute(text("SELECT * FROM usage")).mappings().one()
    assert (row["predicted_input"], row["predicted_cached"]) == (150, 64)
    engine.dispose()


def test_0003_moves_server_ids_to_their_session(db_url: str) -> None:
    upgrade(db_url, "0002")
    engine = create_engine(db_url)
    now = dt.datetime(2026, 11, 21, 12, 0)
    with engine.begin() as c:
        c.execute(text("INSERT INTO conversations (id, created_at) VALUES ('c', :t)"), {"t": now})
        c.execute(text("INSERT INTO sessions (id, conversation_id, provider, model, started_at)"
                       " VALUES (7, 'c', 'openai', 'gpt-realtime', :t)"), {"t": now})  # fmt: skip
        for n, (session, server) in enumerate([(7, "item_a"), (None, None)]):
            c.execute(text(
                "INSERT INTO items (conversation_id, uid, session_id, server_item_id, position,"
                " kind, role, content, tokens, status)"
                " VALUES ('c', :uid, :s, :server, :n, 'message', 'user', '{}', 5, 'live')"
            ), {"uid": f"u{n}", "s": session, "server": server, "n": n})  # fmt: skip
    upgrade(db_url)
    with engine.connect() as c:
        moved = c.execute(
            text("SELECT item_id, session_id, server_item_id FROM server_items")
        ).all()
    assert [tuple(r) for r in moved] == [(1, 7, "item_a")]
    downgrade(db_url, "0002")
    with engine.connect() as c:
        back = c.execute(text("SELECT uid, server_item_id FROM items ORDER BY position")).all()
    assert [tuple(r) for r in back] == [("u0", "item_a"), ("u1", None)]
    engine.dispose()
