"""The Alembic migrations keep the data they find, or refuse to run (a lossy downgrade)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, create_engine, inspect, text

from context_manager import Message, StoreError
from context_manager.server.usage import Usage
from context_manager.store import Store, downgrade, upgrade
from context_manager.tokens import ModalityTokens as M

pytestmark = pytest.mark.network_allowed  # PostgreSQL on loopback

HEAD = "0006"


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

    downgrade(db_url, "0001")  # nothing 0001 cannot hold: the round trip is exact
    with engine.connect() as c:
        back = c.execute(text("SELECT * FROM usage")).mappings().one()
    assert (back["predicted_input"], back["predicted_cached"]) == (150, 64)
    upgrade(db_url, "0002")
    with engine.connect() as c:
        assert c.execute(text("SELECT * FROM usage")).mappings().one() == row
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


def _version(engine: Engine) -> str | None:
    with engine.connect() as c:
        if "alembic_version" not in inspect(c).get_table_names():
            return None
        return c.execute(text("SELECT version_num FROM alembic_version")).scalar()


def test_a_downgrade_that_would_drop_server_ids_refuses_and_changes_nothing(db_url: str) -> None:
    store = Store(db_url)
    cid = store.create_conversation()
    first = store.start_session(cid, provider="azure", model="gpt-realtime")
    uids = store.append(cid, [Message(role="user", text="hi", id="item_a")], session_id=first)
    second = store.start_session(cid, provider="azure", model="gpt-realtime")
    store.record_server_ids(cid, second, {uids[0]: "item_b"})  # a seeded item's new id
    with pytest.raises(StoreError, match="cannot downgrade below revision 0003: 1 server item"):
        downgrade(db_url, "0002")
    assert _version(store.engine) == HEAD
    assert store.server_ids(cid, second) == {"item_b": uids[0]}
    with store.engine.begin() as c:  # without it, the step is lossless: it runs, and back
        c.execute(text("DELETE FROM server_items WHERE session_id = :s"), {"s": second})
    downgrade(db_url, "0002")
    upgrade(db_url)
    assert store.server_ids(cid, first) == {"item_a": uids[0]}
    store.close()


def test_a_downgrade_that_would_merge_usage_refuses_whole(db_url: str) -> None:
    store = Store(db_url)
    cid = store.create_conversation()
    observed = Usage(input=M(500, 300, 20), cached=M(400), output=M(30, 200))
    store.record_usage(cid, observed, predicted=observed)
    before = store.usage(cid)
    # 0003 -> 0002 is lossless here, 0002 -> 0001 is not: neither runs.
    with pytest.raises(
        StoreError, match="cannot downgrade below revision 0002: 1 usage rows"
    ) as err:
        downgrade(db_url, "0001")
    assert err.value.reason == "schema"
    assert _version(store.engine) == HEAD and store.usage(cid) == before
    with store.engine.begin() as c:
        c.execute(text("DELETE FROM usage"))
    with pytest.raises(StoreError, match="cannot downgrade to base: the tables hold 1 conv"):
        downgrade(db_url, "base")
    assert _version(store.engine) == HEAD and store.conversations() == [cid]
    store.close()


def test_empty_tables_go_down_to_base_and_back(db_url: str) -> None:
    upgrade(db_url)
    downgrade(db_url, "base")
    engine = create_engine(db_url)
    assert _version(engine) is None and "items" not in inspect(engine).get_table_names()
    upgrade(db_url)
    assert _version(engine) == HEAD
    engine.dispose()


def test_0004_keeps_out_of_band_marks_and_refuses_to_drop_them(db_url: str) -> None:
    store = Store(db_url)
    cid = store.create_conversation()
    sid = store.start_session(cid, provider="azure", model="gpt-realtime")
    observed = Usage(input=M(50), cached=M(0), output=M(5))
    store.record_usage(cid, observed)
    store.record_usage(cid, observed, out_of_band=True, metadata={"purpose": "mood"})
    store.note_uncarried(sid, ["k1", "k2"])
    rows = store.usage(cid)
    assert [(r["out_of_band"], r["response_metadata"]) for r in rows] == [
        (False, None),
        (True, {"purpose": "mood"}),
    ]
    with pytest.raises(StoreError, match="cannot downgrade below revision 0004: 2 rows"):
        downgrade(db_url, "0003")
    assert _version(store.engine) == HEAD and store.usage(cid) == rows
    with store.engine.begin() as c:  # without them, the step is lossless: down and back
        c.execute(text("DELETE FROM usage WHERE out_of_band"))
        c.execute(text("UPDATE sessions SET uncarried = NULL"))
    downgrade(db_url, "0003")
    upgrade(db_url)
    assert [r["out_of_band"] for r in store.usage(cid)] == [False]
    with pytest.raises(StoreError, match="metadata value"):
        store.record_usage(cid, observed, metadata={"purpose": "x" * 513})
    store.close()


def test_0005_keeps_a_lost_turn_and_refuses_to_drop_it(db_url: str) -> None:
    store = Store(db_url)
    cid = store.create_conversation()
    sid = store.start_session(cid, provider="azure", model="gpt-realtime")
    store.note_open_turn(sid, 1200)
    assert store.open_turns(cid) == [1200]
    with pytest.raises(StoreError, match="cannot downgrade below revision 0005: 1 sessions"):
        downgrade(db_url, "0004")
    assert _version(store.engine) == HEAD
    store.note_open_turn(sid, None)  # the turn was stored as an item: nothing to keep
    assert store.open_turns(cid) == []
    downgrade(db_url, "0004")
    upgrade(db_url)
    assert _version(store.engine) == HEAD
    store.close()
