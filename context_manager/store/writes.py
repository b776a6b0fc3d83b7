"""Each write of the store, built as a `Call`: its values checked now, its statements run later.

`Store` runs a call at once; `AsyncStore` may keep it and run it later, after the writes before
it, so everything a write needs is fixed when it is built: the values are checked (`values`),
the ids it assigns (stable item ids, a new conversation's id) and its timestamps are chosen.
What it refers to (the conversation, a session, items) is looked up in its transaction, before
anything is inserted, so an unknown reference is a `StoreError`, never an integrity error. A
provisional session id (`AsyncStore`'s, while the session's write is kept) is mapped to the
stored one when the call runs (`WriteCalls.aliases`).

Each call that adds rows also says how to find them (`Call.done`): when a commit failed after
the database took it, the next attempt finds the rows and returns them instead of adding them
twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, CursorResult, delete, func, insert, literal, select, text, update

from ..errors import StoreError
from ..items import Item, Message, item_to_dict
from ..server.pricing import price
from ..server.usage import Usage
from ..tokens import TokenCounter
from .database import MISSING, Call
from .models import (
    ITEM_STATUSES,
    USAGE_FIELDS,
    CompactionRow,
    ConversationRow,
    ItemRow,
    ItemStatus,
    SeedSummaryRow,
    ServerItemRow,
    SessionRow,
    SummaryItemRow,
    SummaryRow,
    UsageRow,
)
from .values import check_cost, check_int, check_text, check_time, column_length

__all__ = ["WriteCalls", "server_ids_of"]

_APPEND_LOCK = 0x636D  # the first key of a conversation's PostgreSQL advisory lock
_ID = column_length(ConversationRow.__table__.c.id)
_UID = column_length(ItemRow.__table__.c.uid)
_SERVER_ID = column_length(ServerItemRow.__table__.c.server_item_id)


def _forget_seed_summaries(c: Connection, cid: str) -> None:
    """Drop the seed summaries kept for `cid` (`store.seeding`): its history changed."""
    c.execute(delete(SeedSummaryRow).where(SeedSummaryRow.conversation_id == cid))


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _length(row: type[Any], name: str) -> int | None:
    return column_length(row.__table__.c[name])


def _plural(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


class WriteCalls:
    """The store's writes as `Call` builders (the base of `Store`)."""

    counter: TokenCounter
    aliases: dict[int, int]
    """Provisional session ids (an `AsyncStore`'s, while the write is kept) -> stored ids."""
    _postgres: bool

    def _sid(self, session_id: int) -> int:
        return self.aliases.get(session_id, session_id)

    def _need_conversation(self, c: Connection, cid: str) -> None:
        if c.scalar(select(ConversationRow.id).where(ConversationRow.id == cid)) is None:
            raise StoreError(f"no conversation {cid!r} in {self}", reason="not_found")

    def _need_session(self, c: Connection, cid: str, session_id: int) -> int:
        sid = self._sid(session_id)
        owner = c.scalar(select(SessionRow.conversation_id).where(SessionRow.id == sid))
        self._check_owner(cid, session_id, owner)
        return sid

    def _check_owner(self, cid: str, session_id: int, owner: str | None) -> None:
        if owner is None:
            raise StoreError(f"no session {session_id} in {self}", reason="not_found")
        if owner != cid:
            raise StoreError(
                f"session {session_id} is not a session of conversation {cid!r}", reason="invalid"
            )

    @staticmethod
    def _cid(conversation_id: object) -> str:
        return check_text("conversation id", conversation_id, _ID)

    @staticmethod
    def _uids(uids: Iterable[object], field: str = "item uid") -> list[str]:
        return [check_text(field, u, _UID) for u in uids]

    def _create_conversation(self, conversation_id: str | None, title: str | None) -> Call:
        cid = self._cid(conversation_id) if conversation_id else uuid.uuid4().hex
        if title is not None:
            title = check_text("title", title, _length(ConversationRow, "title"))
        now = _now()

        def work(c: Connection) -> str:
            if c.scalar(select(ConversationRow.id).where(ConversationRow.id == cid)) is not None:
                raise StoreError(f"conversation {cid!r} already exists", reason="conflict")
            c.execute(insert(ConversationRow).values(id=cid, created_at=now, title=title))
            return cid

        def done(c: Connection) -> Any:
            query = select(ConversationRow.created_at).where(ConversationRow.id == cid)
            return cid if c.scalar(query) == now else MISSING

        return Call(f"create conversation {cid!r}", work, done, result=cid)

    def _start_session(
        self, conversation_id: str, provider: str, model: str, started_at: datetime | None
    ) -> Call:
        cid = self._cid(conversation_id)
        values = {
            "conversation_id": cid,
            "provider": check_text("provider", provider, _length(SessionRow, "provider")),
            "model": check_text("model", model, _length(SessionRow, "model")),
            "started_at": _now() if started_at is None else check_time("started_at", started_at),
        }

        def work(c: Connection) -> int:
            self._need_conversation(c, cid)
            return _new_id(c.execute(insert(SessionRow).values(**values)))

        def done(c: Connection) -> Any:
            query = select(SessionRow.id).filter_by(**values).order_by(SessionRow.id.desc())
            found = c.scalar(query.limit(1))
            return MISSING if found is None else found

        return Call(f"start a session of {cid!r}", work, done, new_id="session")

    def _end_session(self, session_id: int, reason: str, ended_at: datetime | None) -> Call:
        check_int("session id", session_id)
        values = {
            "end_reason": check_text("end reason", reason, _length(SessionRow, "end_reason")),
            "ended_at": _now() if ended_at is None else check_time("ended_at", ended_at),
        }

        def work(c: Connection) -> None:
            sid = self._sid(session_id)
            changed = c.execute(update(SessionRow).where(SessionRow.id == sid).values(**values))
            if changed.rowcount == 0:
                raise StoreError(f"no session {session_id} in {self}", reason="not_found")

        return Call(f"end session {session_id}", work)

    def _note_uncarried(self, session_id: int, keys: Sequence[str]) -> Call:
        check_int("session id", session_id)
        limit = _length(ItemRow, "uid")
        values = {"uncarried": [check_text("item key", k, limit) for k in keys]}

        def work(c: Connection) -> None:
            sid = self._sid(session_id)
            changed = c.execute(update(SessionRow).where(SessionRow.id == sid).values(**values))
            if changed.rowcount == 0:
                raise StoreError(f"no session {session_id} in {self}", reason="not_found")

        return Call(f"note the turns session {session_id} lacks", work)

    def _note_open_turn(self, session_id: int, ms: int | None) -> Call:
        check_int("session id", session_id)
        if ms is not None:
            check_int("open turn ms", ms)

        def work(c: Connection) -> None:
            sid = self._sid(session_id)
            c.execute(update(SessionRow).where(SessionRow.id == sid).values(open_turn_ms=ms))

        return Call(f"note the turn in progress of session {session_id}", work)

    def _end_open_sessions(self, conversation_id: str, reason: str) -> Call:
        cid = self._cid(conversation_id)
        values = {
            "end_reason": check_text("end reason", reason, _length(SessionRow, "end_reason")),
            "ended_at": _now(),
        }

        def work(c: Connection) -> int:
            open_ = (SessionRow.conversation_id == cid) & SessionRow.ended_at.is_(None)
            changed = c.execute(update(SessionRow).where(open_).values(**values))
            return int(changed.rowcount or 0)

        return Call(f"end the open sessions of {cid}", work)

    def _append(
        self,
        conversation_id: str,
        items: Iterable[Item],
        session_id: int | None,
        uids: Sequence[str] | None,
    ) -> Call:
        cid = self._cid(conversation_id)
        items = list(items)
        if uids is not None and len(uids) != len(items):
            raise StoreError(f"append got {len(items)} items but {len(uids)} uids")
        keys = self._uids(uids) if uids is not None else [uuid.uuid4().hex for _ in items]
        if len(set(keys)) < len(keys):
            raise StoreError("uids must be new and unique: the same uid is given twice")
        if session_id is not None:
            check_int("session id", session_id)
        rows = [self._row(cid, item, key) for item, key in zip(items, keys, strict=True)]
        wanted = {
            key: check_text("server item id", item.id, _SERVER_ID)
            for item, key in zip(items, keys, strict=True)
            if item.id
        }
        if len(set(wanted.values())) < len(wanted):
            raise StoreError(f"server item ids must be unique in session {session_id}: repeated")
        what = f"append {_plural(len(rows), 'item')} to {cid!r}"
        if not rows:
            return Call(what, lambda c: [], result=[])

        def work(c: Connection) -> list[str]:
            sid = None if session_id is None else self._sid(session_id)
            if self._postgres:  # appenders to one conversation queue here
                c.execute(text("SELECT pg_advisory_xact_lock(:key, hashtext(:cid))"),
                          {"key": _APPEND_LOCK, "cid": cid})  # fmt: skip
            found, end, owner = c.execute(select(
                select(ConversationRow.id).where(ConversationRow.id == cid).scalar_subquery(),
                select(func.max(ItemRow.position)).where(ItemRow.conversation_id == cid)
                .scalar_subquery(),
                literal(None) if sid is None
                else select(SessionRow.conversation_id).where(SessionRow.id == sid)
                .scalar_subquery(),
            )).one()  # fmt: skip
            if found is None:
                raise StoreError(f"no conversation {cid!r} in {self}", reason="not_found")
            if session_id is not None:
                self._check_owner(cid, session_id, owner)
            first = 0 if end is None else end + 1
            # A uid or server id already taken fails its unique constraint (a `conflict`).
            values = [{**r, "session_id": sid, "position": first + k} for k, r in enumerate(rows)]
            if sid is None or not wanted:
                c.execute(insert(ItemRow), values)
            else:
                added = c.execute(insert(ItemRow).returning(ItemRow.uid, ItemRow.id), values)
                ids: dict[str, int] = dict(added.all())
                c.execute(insert(ServerItemRow), [
                    {"item_id": ids[key], "session_id": sid, "server_item_id": server}
                    for key, server in wanted.items()
                ])  # fmt: skip
            return keys

        def done(c: Connection) -> Any:
            query = (
                select(func.count())
                .select_from(ItemRow)
                .where(ItemRow.conversation_id == cid, ItemRow.uid.in_(keys))
            )
            return keys if c.scalar(query) == len(keys) else MISSING

        return Call(what, work, done, result=keys)

    def _row(self, cid: str, item: Item, key: str) -> dict[str, Any]:
        try:  # what an item's own checks let through (a NaN duration, say) fails here
            tokens = self.counter.item(item).full.total
            record = item_to_dict(item)
        except (ValueError, TypeError, OverflowError) as exc:  # their text may quote the item
            raise StoreError(
                f"item {key!r} cannot be stored: {type(exc).__name__} while reading it"
            ) from None
        record.pop("id", None)
        role = item.role if isinstance(item, Message) else None
        return {
            "conversation_id": cid, "uid": key,
            "kind": check_text("item type", item.type, _length(ItemRow, "kind")),
            "role": None if role is None else check_text("role", role, _length(ItemRow, "role")),
            "content": record, "status": "live",
            "tokens": check_int("item tokens", tokens, minimum=0),
        }  # fmt: skip

    def _update_item(self, conversation_id: str, uid: str, item: Item) -> Call:
        cid = self._cid(conversation_id)
        (key,) = self._uids([uid])
        row = self._row(cid, item, key)
        values = {k: row[k] for k in ("content", "kind", "role", "tokens")}

        def work(c: Connection) -> None:
            self._need_conversation(c, cid)
            (row_id,) = _item_ids(c, cid, [key])
            c.execute(update(ItemRow).where(ItemRow.id == row_id).values(**values))
            _forget_seed_summaries(c, cid)  # it may have folded the old content

        return Call(f"update item {key!r} of {cid!r}", work)

    def _record_server_ids(
        self, conversation_id: str, session_id: int, server_ids: Mapping[str, str]
    ) -> Call:
        cid = self._cid(conversation_id)
        check_int("session id", session_id)
        wanted = {
            check_text("item uid", k, _UID): check_text("server item id", v, _SERVER_ID)
            for k, v in server_ids.items()
        }

        def work(c: Connection) -> None:
            self._need_conversation(c, cid)
            sid = self._need_session(c, cid, session_id)
            if wanted:
                _link(c, cid, sid, session_id, wanted)

        def done(c: Connection) -> Any:
            have = server_ids_of(c, cid, self._sid(session_id))
            return None if all(have.get(v) == k for k, v in wanted.items()) else MISSING

        what = f"record {_plural(len(wanted), 'server id')} in session {session_id}"
        return Call(what, work, done)

    def _mark(self, conversation_id: str, uids: Sequence[str], status: ItemStatus) -> Call:
        if status not in ITEM_STATUSES:
            raise StoreError(f"status must be one of {', '.join(ITEM_STATUSES)}, got {status!r}")
        cid = self._cid(conversation_id)
        keys = self._uids(uids)

        def work(c: Connection) -> None:
            self._need_conversation(c, cid)
            ids = _item_ids(c, cid, keys)
            # What a seed carries changes when an item leaves or comes back (a truncated item
            # is still the client's): a kept seed summary may hold a deleted item's words.
            gone = ("deleted", "compacted")
            changes = status in gone or bool(c.scalar(
                select(func.count()).select_from(ItemRow)
                .where(ItemRow.id.in_(ids), ItemRow.status.in_(gone))
            ))  # fmt: skip
            c.execute(update(ItemRow).where(ItemRow.id.in_(ids)).values(status=status))
            if changes:
                _forget_seed_summaries(c, cid)

        return Call(f"mark {_plural(len(keys), 'item')} of {cid!r} {status}", work)

    def _record_compaction(
        self,
        conversation_id: str,
        *,
        covers: Sequence[str],
        summary: str | None,
        strategy: str,
        session_id: int | None = None,
        tokens_before: int = 0,
        tokens_after: int = 0,
    ) -> Call:
        cid = self._cid(conversation_id)
        keys = list(dict.fromkeys(self._uids(covers)))  # an item is covered once
        if summary is not None:
            check_text("summary", summary, None)
        if session_id is not None:
            check_int("session id", session_id)
        event = {
            "conversation_id": cid,
            "strategy": check_text("strategy", strategy, _length(CompactionRow, "strategy")),
            "tokens_before": check_int("tokens_before", tokens_before, minimum=0),
            "tokens_after": check_int("tokens_after", tokens_after, minimum=0),
            "created_at": _now(),
        }
        summary_tokens = None if summary is None else self.counter.text(summary)

        def work(c: Connection) -> int:
            self._need_conversation(c, cid)
            sid = None if session_id is None else self._need_session(c, cid, session_id)
            ids = _item_ids(c, cid, keys)
            summary_id = None
            if summary is not None:
                previous = c.scalar(select(SummaryRow.id).where(SummaryRow.conversation_id == cid)
                                    .order_by(SummaryRow.id.desc()).limit(1))  # fmt: skip
                summary_id = _new_id(c.execute(insert(SummaryRow).values(
                    conversation_id=cid, text=summary, tokens=summary_tokens,
                    created_at=event["created_at"], replaces_id=previous,
                )))  # fmt: skip
                if ids:
                    c.execute(insert(SummaryItemRow),
                              [{"summary_id": summary_id, "item_id": i} for i in ids])  # fmt: skip
            if ids:
                c.execute(update(ItemRow).where(ItemRow.id.in_(ids)).values(status="compacted"))
                _forget_seed_summaries(c, cid)
            row = insert(CompactionRow).values(
                session_id=sid, summary_id=summary_id, items_removed=len(ids), **event
            )
            return _new_id(c.execute(row))

        def done(c: Connection) -> Any:
            query = select(CompactionRow.id).where(
                CompactionRow.conversation_id == cid,
                CompactionRow.created_at == event["created_at"],
                CompactionRow.strategy == event["strategy"],
            )
            found = c.scalar(query)
            return MISSING if found is None else found

        return Call(f"record a compaction of {cid!r}", work, done, new_id="compaction")

    def _record_usage(
        self,
        conversation_id: str,
        observed: Usage,
        *,
        predicted: Usage | None = None,
        cost_usd: float | None = None,
        session_id: int | None = None,
        response_id: str | None = None,
        out_of_band: bool = False,
        metadata: Mapping[str, str] | None = None,
    ) -> Call:
        cid = self._cid(conversation_id)
        row: dict[str, Any] = {"out_of_band": bool(out_of_band)}
        if metadata is not None:
            # The API's limits: at most 16 pairs, keys of 64 and values of 512 characters.
            if not isinstance(metadata, Mapping) or len(metadata) > 16:
                raise StoreError("response metadata must be a mapping of at most 16 pairs")
            row["response_metadata"] = {
                check_text("metadata key", k, 64): check_text("metadata value", v, 512)
                for k, v in metadata.items()
            }
        for name, usage in (("observed", observed), ("predicted", predicted)):
            if usage is None:
                continue
            counts = dict(zip(USAGE_FIELDS, _usage_counts(usage), strict=True))
            negative = {k: v for k, v in counts.items() if isinstance(v, int | float) and v < 0}
            if negative:
                raise StoreError(f"{name} usage counts must be >= 0, got {negative}")
            for k, v in counts.items():
                check_int(f"{name} {k}", v, minimum=0)
            if usage.cached_tokens > usage.input_tokens:
                raise StoreError(
                    f"{name} cached tokens ({usage.cached_tokens}) exceed input tokens"
                    f" ({usage.input_tokens})"
                )
            prefix = "" if name == "observed" else "predicted_"
            row |= {f"{prefix}{k}": v for k, v in counts.items()}
        if cost_usd is None:
            cost_usd = price(observed, self.counter.profile.prices_per_million).total
        if session_id is not None:
            check_int("session id", session_id)
        if response_id is not None:
            response_id = check_text("response id", response_id, _length(UsageRow, "response_id"))
        row |= {"conversation_id": cid, "response_id": response_id,
                "cost_usd": check_cost("cost_usd", cost_usd), "created_at": _now()}  # fmt: skip

        def work(c: Connection) -> None:
            self._need_conversation(c, cid)
            sid = None if session_id is None else self._need_session(c, cid, session_id)
            c.execute(insert(UsageRow).values(session_id=sid, **row))

        def done(c: Connection) -> Any:
            query = select(UsageRow.id).where(
                UsageRow.conversation_id == cid,
                UsageRow.created_at == row["created_at"],
                UsageRow.response_id.is_not_distinct_from(response_id),
                UsageRow.input_text == row["input_text"],
                UsageRow.output_audio == row["output_audio"],
            )
            return MISSING if c.scalar(query) is None else None

        return Call(f"record a response's usage in {cid!r}", work, done)


def _new_id(result: CursorResult[Any]) -> int:
    """The primary key of the row an insert added."""
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _usage_counts(usage: Usage) -> tuple[int, ...]:
    """A usage's counts in `USAGE_FIELDS` order."""
    i, c, o = usage.input, usage.cached, usage.output
    return (i.text, i.audio, i.image, c.text, c.audio, c.image, o.text, o.audio)


def _item_ids(c: Connection, conversation_id: str, uids: Sequence[str]) -> list[int]:
    """The row ids of items by their stable ids; a `StoreError` names any that are missing."""
    query = select(ItemRow.uid, ItemRow.id).where(
        ItemRow.conversation_id == conversation_id, ItemRow.uid.in_(list(uids))
    )
    found: dict[str, int] = dict(c.execute(query).all())
    unknown = [u for u in uids if u not in found]
    if unknown:
        raise StoreError(
            f"{len(unknown)} of {len(uids)} items are not in {conversation_id!r}:"
            f" {', '.join(unknown[:3])}",
            reason="not_found",
        )
    return [found[u] for u in uids]


def server_ids_of(c: Connection, cid: str, sid: int) -> dict[str, str]:
    """The server's item id of each stored item in a session, ``{server_item_id: uid}``."""
    query = (
        select(ServerItemRow.server_item_id, ItemRow.uid)
        .join(ItemRow, ItemRow.id == ServerItemRow.item_id)
        .where(ItemRow.conversation_id == cid, ServerItemRow.session_id == sid)
    )
    return dict(c.execute(query).all())


def _link(c: Connection, cid: str, sid: int, session_id: int, wanted: Mapping[str, str]) -> None:
    """Insert items' server ids in a session (``{uid: server_item_id}``), in the transaction."""
    ids = _item_ids(c, cid, list(wanted))
    taken = list(c.scalars(select(ServerItemRow.server_item_id).where(
        ServerItemRow.session_id == sid,
        ServerItemRow.server_item_id.in_(list(wanted.values())))))  # fmt: skip
    if taken or len(set(wanted.values())) < len(wanted):
        raise StoreError(
            f"server item ids must be unique in session {session_id}: {taken[:3] or 'repeated'}",
            reason="conflict",
        )
    c.execute(
        insert(ServerItemRow),
        [{"item_id": i, "session_id": sid, "server_item_id": server}
         for i, server in zip(ids, wanted.values(), strict=True)],
    )  # fmt: skip
