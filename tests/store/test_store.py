"""The conversation store on SQLite and PostgreSQL: round trips, atomicity, errors, secrets."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from sqlalchemy import create_engine, event, inspect

from context_manager import FunctionCall, FunctionCallOutput, Message, StoreError
from context_manager.cli import main
from context_manager.rollover import RolloverPolicy
from context_manager.server.usage import Usage
from context_manager.store import Store, models
from context_manager.tokens import ModalityTokens as M

pytestmark = pytest.mark.network_allowed  # PostgreSQL on loopback

ITEMS = [
    Message(role="user", text="I'm Priya Raman; booking K7QX2P.", audio_ms=2400, id="item_a"),
    Message(role="assistant", text="Thanks Priya.", audio_ms=900),
    Message(role="user", text="Move it to the sixth, window seat please.", audio_ms=2600),
    FunctionCall(name="rebook", arguments='{"date": "06-12"}', call_id="c1"),
    FunctionCallOutput(call_id="c1", output='{"ok": true}'),
    Message(role="assistant", text="Done: the sixth, seat 14A.", audio_ms=1500),
]


def strip_ids(items):
    from dataclasses import replace

    return [replace(i, id=None) for i in items]


def test_items_round_trip_in_order_with_stable_ids_and_token_counts(db_url: str) -> None:
    store = Store(db_url)
    cid = store.create_conversation(title="rebooking")
    sid = store.start_session(cid, provider="openai", model="gpt-realtime")
    uids = store.append(cid, ITEMS[:3], session_id=sid) + store.append(cid, ITEMS[3:])
    loaded = store.load(cid)
    assert [i.id for i in loaded.items] == uids and len(set(uids)) == 6
    assert strip_ids(loaded.items) == strip_ids(ITEMS)
    assert loaded.statuses == ("live",) * 6 and loaded.summary is None
    with store.engine.connect() as c:
        rows = c.execute(models.ItemRow.__table__.select().order_by("position")).all()
    assert [r.position for r in rows] == list(range(6))
    assert rows[0].session_id == sid and rows[3].session_id is None
    assert store.server_ids(cid, sid) == {"item_a": uids[0]}
    assert [r.tokens for r in rows] == [store.counter.item(i).full.total for i in ITEMS]
    store.end_session(sid, "expired")
    store.close()


def test_a_compaction_is_recorded_whole_and_the_seed_carries_its_summary(db_url: str) -> None:
    store = Store(db_url)
    cid = store.create_conversation()
    uids = store.append(cid, ITEMS)
    store.mark(cid, uids[:1], "truncated")  # the server dropped it; the client still has it
    assert store.load(cid).statuses[0] == "truncated"
    store.record_compaction(cid, covers=uids[:2], summary="Priya Raman, booking K7QX2P.",
                            strategy="rolling-summary", tokens_before=120, tokens_after=60)  # fmt: skip
    second = store.record_compaction(cid, covers=uids[2:3], summary="Priya; K7QX2P; the sixth.",
                                     strategy="rolling-summary")  # fmt: skip
    loaded = store.load(cid)
    assert [i.id for i in loaded.items] == uids[3:]
    assert loaded.summary == "Priya; K7QX2P; the sixth."
    with store.engine.connect() as c:
        summaries = c.execute(models.SummaryRow.__table__.select().order_by("id")).all()
        covered = c.execute(models.SummaryItemRow.__table__.select()).all()
        events = c.execute(models.CompactionRow.__table__.select().order_by("id")).all()
    assert summaries[1].replaces_id == summaries[0].id and summaries[0].replaces_id is None
    assert len(covered) == 3 and [e.items_removed for e in events] == [2, 1]
    assert events[-1].id == second
    policy = RolloverPolicy(budget_tokens=200, carry="summary", summary_tokens=60)
    seed = store.seed(cid, policy)
    assert seed == store.seed(cid, policy)  # deterministic
    assert seed[0].role == "system" and "K7QX2P" in seed[0].text
    assert seed[1:] == policy.seed(loaded.items, store.counter, previous=loaded.summary)[1:]
    store.close()


def test_a_compaction_that_fails_midway_leaves_the_previous_state(db_url: str) -> None:
    store = Store(db_url)
    cid = store.create_conversation()
    uids = store.append(cid, ITEMS)
    before = store.load(cid)

    class Crash(Exception):
        pass

    def crash(_conn: object, _cursor: object, statement: str, *args: object) -> None:
        if statement.startswith("INSERT INTO compactions"):
            raise Crash  # after the summary row and the status update were written

    event.listen(store.engine, "before_cursor_execute", crash)
    with pytest.raises(Crash):
        store.record_compaction(cid, covers=uids[:3], summary="s", strategy="x")
    event.remove(store.engine, "before_cursor_execute", crash)
    assert store.load(cid) == before
    with pytest.raises(StoreError, match="1 of 2 items are not in"):
        store.record_compaction(cid, covers=[uids[0], "nope"], summary="s", strategy="x")
    assert store.load(cid) == before
    with store.engine.connect() as c:
        assert c.execute(models.SummaryRow.__table__.select()).all() == []
    store.close()


def test_seeded_items_get_their_new_server_ids_per_session(db_url: str) -> None:
    store = Store(db_url)
    cid = store.create_conversation()
    first = store.start_session(cid, provider="azure", model="gpt-realtime")
    uids = store.append(cid, [replace(i, id=f"item_{n}") for n, i in enumerate(ITEMS)],
                        session_id=first)  # fmt: skip
    second = store.start_session(cid, provider="azure", model="gpt-realtime")
    store.record_server_ids(cid, second, {uids[4]: "item_x4", uids[5]: "item_x5"})
    assert store.server_ids(cid, first) == {f"item_{n}": u for n, u in enumerate(uids)}
    assert store.server_ids(cid, second) == {"item_x4": uids[4], "item_x5": uids[5]}
    with pytest.raises(StoreError, match="server item ids must be unique in session"):
        store.record_server_ids(cid, second, {uids[3]: "item_x4"})
    with pytest.raises(StoreError, match="server item ids must be unique in session"):
        store.append(cid, [Message(role="user", text="again", id="item_0")], session_id=first)
    with pytest.raises(StoreError, match="1 items are not in"):
        store.record_server_ids(cid, second, {"nope": "item_y"})
    assert len(store.load(cid).items) == 6 and len(store.server_ids(cid, second)) == 2
    store.close()


def test_values_are_bound_parameters(db_url: str) -> None:
    store = Store(db_url)
    nasty = "Robert'); DROP TABLE items; -- \" \\ %s :x"
    cid = store.create_conversation(nasty[:60])
    store.append(cid, [Message(role="user", text=nasty)])
    assert store.load(cid).items[0].text == nasty
    assert cid in store.conversations()
    store.close()


def test_usage_is_recorded_by_modality_with_the_prediction_and_checked(db_url: str) -> None:
    store = Store(db_url)
    cid = store.create_conversation()
    observed = Usage(input=M(500, 300), cached=M(400), output=M(30, 200))
    predicted = Usage(input=M(498, 300), cached=M(384, 0), output=M(24, 200))
    store.record_usage(cid, observed, predicted=predicted, response_id="resp_1")
    store.record_usage(cid, observed, cost_usd=0.5)
    first, second = store.usage(cid)
    assert (first["input_text"], first["input_audio"], first["cached_text"]) == (500, 300, 400)
    assert (first["predicted_input_text"], first["predicted_cached_text"]) == (498, 384)
    assert first["predicted_output_audio"] == 200 and second["predicted_input_text"] is None
    # gpt-realtime: text in $4, cached text $0.40, audio in $32, text out $16, audio out $64 per 1M
    expected = (100 * 4 + 400 * 0.4 + 300 * 32 + 30 * 16 + 200 * 64) / 1e6
    assert first["cost_usd"] == pytest.approx(expected) and second["cost_usd"] == 0.5
    with pytest.raises(
        StoreError, match=r"observed cached tokens \(900\) exceed input tokens \(800\)"
    ):
        store.record_usage(cid, Usage(input=M(500, 300), cached=M(900), output=M()))
    with pytest.raises(StoreError, match="predicted usage counts must be >= 0"):
        store.record_usage(cid, observed, predicted=Usage(input=M(-1), cached=M(), output=M()))
    assert len(store.usage(cid)) == 2
    store.close()


def test_bad_requests_are_named_and_write_nothing(db_url: str) -> None:
    store = Store(db_url)
    cid = store.create_conversation("c1")
    with pytest.raises(StoreError, match="conversation 'c1' already exists"):
        store.create_conversation("c1")
    with pytest.raises(StoreError, match="no conversation 'c2'"):
        store.append("c2", ITEMS)
    with pytest.raises(StoreError, match="status must be one of live, truncated"):
        store.mark(cid, [], "gone")  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="no session 99"):
        store.end_session(99, "closed")
    assert store.load(cid).items == ()
    store.close()


def test_an_unmigrated_database_is_refused_and_db_upgrade_migrates_it(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(StoreError, match="run `context-manager db upgrade`"):
        Store(db_url, migrate=False)
    main(["db", "upgrade", "--url", db_url])
    assert "at revision head" in capsys.readouterr().out
    engine = create_engine(db_url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"conversations", "sessions", "items", "summaries", "summary_items", "usage",
            "compactions", "alembic_version"} <= tables  # fmt: skip
    Store(db_url, migrate=False).close()


def test_passwords_never_show(caplog: pytest.LogCaptureFixture, capsys) -> None:
    url = "postgresql+psycopg://agent:s3cr3t-pw@127.0.0.1:9/none"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SystemExit):
        main(["db", "upgrade", "--url", url])
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach postgresql+psycopg://agent:***@127.0.0.1:9/none")
    assert "s3cr3t" not in err and "s3cr3t" not in caplog.text


def test_without_the_store_extra_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    for name in [m for m in sys.modules if m.startswith("context_manager.store")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)  # as if it were not installed
    with pytest.raises(SystemExit):
        main(["db", "upgrade", "--url", "sqlite://"])
    assert capsys.readouterr().err == (
        "error: the conversation store needs sqlalchemy: pip install 'context-manager[store]'\n"
    )
