"""The bad-value table: SQLite and PostgreSQL accept and refuse the same values.

Every case runs on both databases and must get the verdict in its row on each: ``stored`` (and
read back unchanged) or ``refused`` (a one-line `StoreError` that names the field, never the
value). The store checks the values itself, before the database sees them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text

from context_manager import FunctionCall, Message, StoreError
from context_manager.server.usage import Usage
from context_manager.store import Store
from context_manager.store.models import SessionRow
from context_manager.tokens import ModalityTokens as M

pytestmark = pytest.mark.network_allowed  # PostgreSQL on loopback

STORED, REFUSED = "stored", "refused"


@dataclass
class Ctx:
    store: Store
    cid: str
    sid: int
    uid: str


def usage(**counts: object) -> Usage:
    out = {"output_text": 0, **counts}
    return Usage(input=M(), cached=M(), output=M(out.pop("output_text")))  # type: ignore[arg-type]


def _title(value: object) -> Callable[[Ctx], None]:
    def case(x: Ctx) -> None:
        cid = x.store.create_conversation(title=value)  # type: ignore[arg-type]
        with x.store.engine.connect() as c:
            stored = c.execute(text("SELECT title FROM conversations WHERE id = :c"), {"c": cid})
            assert stored.scalar() == value

    return case


def _forced(message: Message, audio_ms: float) -> Message:
    object.__setattr__(message, "audio_ms", audio_ms)  # past the dataclass's own check
    return message


def _item(item: Message | FunctionCall) -> Callable[[Ctx], None]:
    def case(x: Ctx) -> None:
        x.store.append(x.cid, [item], session_id=x.sid)
        back = x.store.load(x.cid).items[-1]
        assert back == type(back)(**{**_fields(item), "id": back.id})

    return case


def _fields(item: Message | FunctionCall) -> dict[str, object]:
    return {k: getattr(item, k) for k in item.__dataclass_fields__}


def _usage(observed: Usage, **kwargs: object) -> Callable[[Ctx], None]:
    def case(x: Ctx) -> None:
        x.store.record_usage(x.cid, observed, **kwargs)  # type: ignore[arg-type]
        row = x.store.usage(x.cid)[-1]
        assert row["output_text"] == observed.output.text
        if "cost_usd" in kwargs:
            assert row["cost_usd"] == kwargs["cost_usd"]

    return case


def _started_at(value: object) -> Callable[[Ctx], None]:
    def case(x: Ctx) -> None:
        sid = x.store.start_session(x.cid, provider="openai", model="m", started_at=value)  # type: ignore[arg-type]
        with x.store.engine.connect() as c:
            q = select(SessionRow.started_at).where(SessionRow.id == sid)
            assert c.execute(q).scalar() == datetime(2026, 1, 1, 10, 0)  # in UTC

    return case


def _compaction(**kwargs: object) -> Callable[[Ctx], None]:
    def case(x: Ctx) -> None:
        args: dict[str, object] = {"covers": [x.uid], "summary": "s", "strategy": "x", **kwargs}
        x.store.record_compaction(x.cid, **args)  # type: ignore[arg-type]
        assert x.store.load(x.cid).summary == args["summary"]

    return case


NUL, SURROGATE = "a\x00b", "a\ud800b"
CASES: list[tuple[str, Callable[[Ctx], object], str]] = [
    ("conversation id of 64 characters", lambda x: x.store.create_conversation("c" * 64), STORED),
    ("conversation id of 65 characters", lambda x: x.store.create_conversation("c" * 65), REFUSED),
    ("conversation id with a NUL", lambda x: x.store.create_conversation(NUL), REFUSED),
    ("reading a conversation id with a NUL", lambda x: x.store.load(NUL), REFUSED),
    ("title of 200 characters", _title("t" * 200), STORED),
    ("title of 200 emoji (800 UTF-8 bytes)", _title("\U0001f600" * 200), STORED),
    ("title of 201 characters", _title("t" * 201), REFUSED),
    ("title with a NUL", _title(NUL), REFUSED),
    ("title with a lone surrogate", _title(SURROGATE), REFUSED),
    ("title that is an int", _title(42), REFUSED),
    ("provider of 41 characters",
     lambda x: x.store.start_session(x.cid, provider="p" * 41, model="m"), REFUSED),
    ("model of 81 characters",
     lambda x: x.store.start_session(x.cid, provider="p", model="m" * 81), REFUSED),
    ("started_at with a time zone (UTC+2)",
     _started_at(datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))), STORED),
    ("started_at as a string",
     lambda x: x.store.start_session(x.cid, provider="p", model="m",
                                     started_at="2026-01-01"), REFUSED),  # type: ignore[arg-type]
    ("end reason of 41 characters", lambda x: x.store.end_session(x.sid, "r" * 41), REFUSED),
    ("session id 2**63", lambda x: x.store.end_session(2**63, "closed"), REFUSED),
    ("session id 99 (no such session)",
     lambda x: x.store.append(x.cid, [Message(role="user", text="x")], session_id=99), REFUSED),
    ("session id True", lambda x: x.store.end_session(True, "closed"), REFUSED),
    ("item uid of 65 characters",
     lambda x: x.store.append(x.cid, [Message(role="user", text="x")], uids=["u" * 65]), REFUSED),
    ("server item id of 65 characters",
     _item(Message(role="user", text="x", id="i" * 65)), REFUSED),
    ("server item id with a NUL", _item(Message(role="user", text="x", id=NUL)), REFUSED),
    ("item text with a NUL (JSON-escaped)", _item(Message(role="user", text=NUL)), STORED),
    ("item text with a lone surrogate (JSON-escaped)",
     _item(Message(role="user", text=SURROGATE)), STORED),
    ("item text of 100,000 characters", _item(Message(role="user", text="w " * 50_000)), STORED),
    ("function arguments with a NUL",
     _item(FunctionCall(name="f", arguments='{"a": "\\u0000"}' + NUL, call_id="c")), STORED),
    # Message itself refuses NaN; the store checks again for items built around that check.
    ("item audio_ms NaN", _item(_forced(Message(role="user", text="x", audio_ms=1), math.nan)),
     REFUSED),
    ("usage count 2**31 - 1", _usage(usage(output_text=2**31 - 1)), STORED),
    ("usage count 2**31", _usage(usage(output_text=2**31)), REFUSED),
    ("usage count 2**63", _usage(usage(output_text=2**63)), REFUSED),
    ("usage count -1", _usage(usage(output_text=-1)), REFUSED),
    ("usage count 1.5", _usage(usage(output_text=1.5)), REFUSED),
    ("usage count True", _usage(usage(output_text=True)), REFUSED),
    ("cost 0", _usage(usage(), cost_usd=0), STORED),
    ("cost 1e300", _usage(usage(), cost_usd=1e300), STORED),
    ("cost NaN", _usage(usage(), cost_usd=math.nan), REFUSED),
    ("cost inf", _usage(usage(), cost_usd=math.inf), REFUSED),
    ("cost -inf", _usage(usage(), cost_usd=-math.inf), REFUSED),
    ("cost -0.01", _usage(usage(), cost_usd=-0.01), REFUSED),
    ("cost '0.1' (a string)", _usage(usage(), cost_usd="0.1"), REFUSED),
    ("response id of 65 characters", _usage(usage(), response_id="r" * 65), REFUSED),
    ("summary of 100,000 characters", _compaction(summary="s " * 50_000), STORED),
    ("summary with a NUL", _compaction(summary=NUL), REFUSED),
    ("strategy of 81 characters", _compaction(strategy="s" * 81), REFUSED),
    ("tokens_before 2**31", _compaction(tokens_before=2**31), REFUSED),
    ("tokens_after -1", _compaction(tokens_after=-1), REFUSED),
]  # fmt: skip


@pytest.fixture(scope="module")
def store(module_db_url: str) -> Iterator[Store]:
    store = Store(module_db_url)
    yield store
    store.close()


@pytest.mark.parametrize(("value", "call", "verdict"), CASES, ids=[c[0] for c in CASES])
def test_both_databases_give_a_value_the_same_verdict(
    store: Store, value: str, call: Callable[[Ctx], object], verdict: str
) -> None:
    cid = store.create_conversation()
    sid = store.start_session(cid, provider="openai", model="gpt-realtime")
    (uid,) = store.append(cid, [Message(role="user", text="first")])
    before = (store.load(cid), store.usage(cid))
    refused: StoreError | None = None
    try:
        call(Ctx(store, cid, sid, uid))
    except StoreError as exc:
        refused = exc
    assert (STORED if refused is None else REFUSED) == verdict
    if refused is not None:
        message = str(refused)
        assert refused.reason in {"invalid", "not_found"} and "\n" not in message
        assert "\x00" not in message and "\ud800" not in message and "ttttt" not in message
        assert (store.load(cid), store.usage(cid)) == before  # nothing written
