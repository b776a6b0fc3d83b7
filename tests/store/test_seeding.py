"""Seeding from the store: only the tail is read, and a seed's summary is kept for the next."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from context_manager.items import Message
from context_manager.rollover import DEFAULT_ROLLOVER, RolloverPolicy
from context_manager.simulate.workloads import generate, workload
from context_manager.store import Store, models, seeding

pytestmark = pytest.mark.network_allowed  # PostgreSQL on loopback

SUMMARY = RolloverPolicy(budget_tokens=600, carry="summary", summary_tokens=200)


def _call(minutes: float, seed: int = 1) -> list:
    return generate(
        workload("support-call", minutes=minutes), 1, np.random.default_rng(seed)
    ).items(0)


def test_a_recent_seed_reads_only_the_tail_and_equals_the_seed_of_everything(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(seeding, "PAGE_ITEMS", 16)
    store = Store(db_url)
    cid = store.create_conversation()
    store.append(cid, _call(40))
    everything = store.load(cid).items
    assert len(everything) > 300
    policy = RolloverPolicy(budget_tokens=400)
    assert store.seed(cid, policy) == policy.seed(everything, store.counter)
    assert store.seed(cid) == DEFAULT_ROLLOVER.seed(everything, store.counter)
    tiny = RolloverPolicy(budget_tokens=1)  # no turn fits: nothing, from one page
    assert store.seed(cid, tiny) == tiny.seed(everything, store.counter) == []
    store.close()


def test_a_summary_seed_is_kept_and_the_next_folds_only_what_is_new(db_url: str) -> None:
    store = Store(db_url)
    cid = store.create_conversation()
    call = _call(30)
    store.append(cid, call[:200])
    first = store.seed(cid, SUMMARY)
    # The first seed folds everything before its recent turns, from scratch.
    assert first == SUMMARY.seed(store.load(cid).items, store.counter)
    assert first[0].role == "system" and first[0].text
    with store.engine.connect() as c:
        kept = c.execute(models.SeedSummaryRow.__table__.select()).all()
    assert len(kept) == 1 and kept[0].text == first[0].text and kept[0].base_id is None
    assert store.seed(cid, SUMMARY) == first  # nothing new: the same seed

    store.append(cid, call[200:260])
    items = store.load(cid).items
    upto = kept[0].items  # the live items the kept summary covers
    second = store.seed(cid, SUMMARY)
    # Only the items after the kept summary are folded, onto it.
    assert second == SUMMARY.seed(items[upto:], store.counter, previous=first[0].text)
    with store.engine.connect() as c:
        rows = c.execute(models.SeedSummaryRow.__table__.select()).all()
    assert len(rows) == 1 and rows[0].items > upto  # one kept per policy, the newest
    store.close()


def test_a_changed_history_folds_again_from_the_start(db_url: str) -> None:
    store = Store(db_url)
    cid = store.create_conversation()
    uids = store.append(cid, _call(30)[:200])
    store.seed(cid, SUMMARY)
    store.mark(cid, uids[3:4], "deleted")  # the user asked to forget a turn
    assert store.seed(cid, SUMMARY) == SUMMARY.seed(store.load(cid).items, store.counter)
    store.record_compaction(cid, covers=uids[5:20], summary="Caller: Ana Ruiz, order 4417.",
                            strategy="rolling-summary")  # fmt: skip
    loaded = store.load(cid)
    seed = store.seed(cid, SUMMARY)
    assert seed == SUMMARY.seed(loaded.items, store.counter, previous=loaded.summary)
    store.close()


def test_a_failed_keep_loses_nothing_but_the_shortcut(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(db_url)
    cid = store.create_conversation()
    store.append(cid, [Message(role="user", text="My name is Ana Ruiz.")] + _call(30)[:150])

    def refuse(conn, cursor, statement, *args) -> None:
        if statement.startswith("INSERT INTO seed_summaries"):
            raise OperationalError(statement, None, Exception("disk I/O error"))

    event.listen(store.engine, "before_cursor_execute", refuse)
    with caplog.at_level(logging.WARNING, "context_manager.store.seeding"):
        seed = store.seed(cid, SUMMARY)
    event.remove(store.engine, "before_cursor_execute", refuse)
    assert seed == SUMMARY.seed(store.load(cid).items, store.counter)
    assert "was not kept" in caplog.text and "Ana" not in caplog.text
    with store.engine.connect() as c:
        assert c.execute(models.SeedSummaryRow.__table__.select()).all() == []
    assert store.seed(cid, SUMMARY) == seed  # folded again, the same
    store.close()


def test_a_deleted_items_words_never_come_back_through_a_kept_summary(db_url: str) -> None:
    """The helper's case: delete one item, bring it back, delete another (the same count)."""
    store = Store(db_url)
    cid = store.create_conversation()
    card = Message(role="user", text="My card number is 4111 1111 1111 1111.")
    uids = store.append(cid, [card, *_call(30)[:200]])
    assert "4111" in store.seed(cid, SUMMARY)[0].text  # the summary carries it
    store.mark(cid, uids[5:6], "deleted")
    store.seed(cid, SUMMARY)
    store.mark(cid, uids[5:6], "live")  # back: the count of live items is what it was
    store.mark(cid, uids[:1], "deleted")
    seed = store.seed(cid, SUMMARY)
    assert all("4111" not in getattr(i, "text", "") for i in seed)
    assert seed == SUMMARY.seed(store.load(cid).items, store.counter)
    # A changed item's content is not carried in its old form either.
    store.seed(cid, SUMMARY)
    store.update_item(cid, uids[2], Message(role="user", text="Call me Ana Ruiz."))
    assert store.seed(cid, SUMMARY) == SUMMARY.seed(store.load(cid).items, store.counter)
    store.close()


def test_the_servers_truncation_keeps_the_kept_summary(db_url: str) -> None:
    store = Store(db_url)
    cid = store.create_conversation()
    uids = store.append(cid, _call(30)[:200])
    first = store.seed(cid, SUMMARY)
    store.mark(cid, uids[:40], "truncated")  # the client still has them: nothing changes
    with store.engine.connect() as c:
        assert len(c.execute(models.SeedSummaryRow.__table__.select()).all()) == 1
    assert store.seed(cid, SUMMARY) == first
    store.close()
