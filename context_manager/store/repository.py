"""The conversation store: what the engine and users call to persist a conversation.

`Store` writes through SQLAlchemy to SQLite (the default: a file in WAL mode) or PostgreSQL (a
``postgresql+psycopg://`` URL). Every method is one transaction, so a crash between two of them
leaves the state of the last one that returned, and a compaction (`record_compaction`: the
summary, the items it covers and the event) is all or nothing.

Two processes may append to one conversation: an item's position is unique in its conversation,
so a writer that read a stale end of the conversation fails its insert and tries again at the new
end; nothing is lost or reordered. SQLite writers also take the write lock when their transaction
begins (``BEGIN IMMEDIATE``), so they queue rather than fail.

Values always travel as bound parameters (the ORM), and the URL's password is never logged or
shown (`Store.__repr__`); no key or secret is stored.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ..errors import ConfigurationError, StoreError
from ..items import Item, Message, item_from_dict, item_to_dict
from ..profiles import get_model_profile
from ..rollover import DEFAULT_ROLLOVER, RolloverPolicy
from ..server.pricing import price
from ..server.usage import Usage
from ..tokens import TokenCounter
from .models import (
    ITEM_STATUSES,
    USAGE_FIELDS,
    CompactionRow,
    ConversationRow,
    ItemRow,
    ItemStatus,
    ServerItemRow,
    SessionRow,
    SummaryItemRow,
    SummaryRow,
    UsageRow,
)

__all__ = ["DEFAULT_URL", "Store", "StoredConversation", "downgrade", "upgrade"]

log = logging.getLogger(__name__)

DEFAULT_URL = "sqlite:///context_manager.db"
"""Where the store lives unless told otherwise: a SQLite file in the working directory."""

_APPEND_ATTEMPTS = 20


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def upgrade(url: str = DEFAULT_URL, revision: str = "head") -> str:
    """Migrate the database at `url` to `revision` (Alembic; creates the schema the first time).

    Returns the URL with its password hidden, for messages.
    """
    return _migrate(url, revision, down=False)


def downgrade(url: str, revision: str) -> str:
    """Migrate the database at `url` back to `revision` (``base`` drops every table)."""
    return _migrate(url, revision, down=True)


def _migrate(url: str, revision: str, *, down: bool) -> str:
    from alembic import command
    from alembic.config import Config
    from alembic.util import CommandError

    engine = _engine(url, foreign_keys=False)
    shown = engine.url.render_as_string(hide_password=True)
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, revision)
    except OperationalError as exc:
        raise StoreError(f"cannot reach {shown}: {_first_line(exc.orig)}") from None
    except CommandError as exc:
        raise StoreError(f"cannot migrate {shown}: {exc}") from None
    finally:
        engine.dispose()
    return shown


def _first_line(exc: BaseException | None) -> str:
    return str(exc).strip().split("\n")[0]


def _engine(url: str, *, foreign_keys: bool = True) -> Engine:
    try:
        engine = create_engine(url)
    except Exception as exc:  # the URL itself: a typo'd dialect or driver
        raise ConfigurationError(f"cannot use database URL: {exc}") from None
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
            # Transactions are begun by hand (below), so pysqlite must not begin its own.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            # Off while migrating: SQLite alters a table by copying it, which a referencing
            # table would block.
            cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@dataclass(frozen=True, slots=True)
class StoredConversation:
    """A conversation as the store holds it.

    Attributes:
        id: the conversation id.
        items: the items the client still remembers (live or truncated by the server), in order,
            each with its stable id as `Item.id`.
        statuses: each of those items' status, in the same order.
        summary: the newest summary's text (``None`` before the first compaction).
    """

    id: str
    items: tuple[Item, ...]
    statuses: tuple[ItemStatus, ...]
    summary: str | None


class Store:
    """Persist conversations, sessions, items, summaries, usage and compactions.

    Args:
        url: an SQLAlchemy URL (default: `DEFAULT_URL`).
        counter: counts each item's tokens as it is stored (default: ``gpt-realtime``'s rules).
        migrate: bring the schema to the newest revision first (the default; otherwise a
            database that was never migrated is refused with a `StoreError`).
    """

    def __init__(
        self, url: str = DEFAULT_URL, *, counter: TokenCounter | None = None, migrate: bool = True
    ) -> None:
        if migrate:
            upgrade(url)
        self.engine = _engine(url)
        missing = {"conversations", "items"} - set(inspect(self.engine).get_table_names())
        if missing:
            self.engine.dispose()
            raise StoreError(
                f"{self} has no {', '.join(sorted(missing))} table:"
                " run `context-manager db upgrade`"
            )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.counter = counter or TokenCounter(get_model_profile("gpt-realtime"))

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)!r})"

    __str__ = __repr__

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    # ------------------------------------------------------------------ conversations
    def create_conversation(
        self, conversation_id: str | None = None, title: str | None = None
    ) -> str:
        """Start a conversation and return its id (a new UUID unless given)."""
        cid = conversation_id or uuid.uuid4().hex
        try:
            with self._tx() as s:
                s.add(ConversationRow(id=cid, created_at=_now(), title=title))
        except IntegrityError:
            raise StoreError(f"conversation {cid!r} already exists") from None
        return cid

    def conversations(self) -> list[str]:
        """Every conversation id, oldest first."""
        with self._tx() as s:
            rows = s.scalars(select(ConversationRow.id).order_by(ConversationRow.created_at,
                                                                 ConversationRow.id))  # fmt: skip
            return list(rows)

    def _check(self, s: Session, conversation_id: str) -> None:
        if s.get(ConversationRow, conversation_id) is None:
            raise StoreError(f"no conversation {conversation_id!r} in {self}")

    # ------------------------------------------------------------------ sessions
    def start_session(
        self, conversation_id: str, *, provider: str, model: str, started_at: datetime | None = None
    ) -> int:
        """Record a new realtime session of the conversation; returns its id."""
        with self._tx() as s:
            self._check(s, conversation_id)
            row = SessionRow(conversation_id=conversation_id, provider=provider, model=model,
                             started_at=started_at or _now())  # fmt: skip
            s.add(row)
            s.flush()
            return row.id

    def end_session(self, session_id: int, reason: str, ended_at: datetime | None = None) -> None:
        """Record how and when a session ended (``expired``, ``rollover``, ``closed``, ...)."""
        with self._tx() as s:
            row = s.get(SessionRow, session_id)
            if row is None:
                raise StoreError(f"no session {session_id} in {self}")
            row.ended_at = ended_at or _now()
            row.end_reason = reason

    # ------------------------------------------------------------------ items
    def append(
        self,
        conversation_id: str,
        items: Iterable[Item],
        *,
        session_id: int | None = None,
        uids: Sequence[str] | None = None,
    ) -> list[str]:
        """Add items at the end of the conversation; returns their stable ids.

        The stable ids are new UUIDs unless `uids` gives them (one per item, unique: the live
        engine names items before they are stored). With `session_id`, each item's own `id`
        (the server's item id) is recorded as its id in that session (`server_ids`).
        Concurrent appenders each get a contiguous run of positions, in commit order.
        """
        items = list(items)
        if uids is not None and len(uids) != len(items):
            raise StoreError(f"append got {len(items)} items but {len(uids)} uids")
        rows = [self._row(conversation_id, item, session_id) for item in items]
        if uids is not None:
            for row, uid in zip(rows, uids, strict=True):
                row["uid"] = uid
        server_ids = [item.id for item in items]
        if not rows:
            return []
        last_end = select(func.max(ItemRow.position)).where(
            ItemRow.conversation_id == conversation_id
        )
        for _ in range(_APPEND_ATTEMPTS):
            try:
                # Core statements: the ORM's unit of work costs more than the commit here.
                with self.engine.begin() as c:
                    end = c.scalar(last_end)
                    first = 0 if end is None else end + 1
                    c.execute(
                        insert(ItemRow), [{**r, "position": first + k} for k, r in enumerate(rows)]
                    )
                    wanted = {r["uid"]: i for r, i in zip(rows, server_ids, strict=True) if i}
                    if session_id is not None and wanted:
                        _link(c, conversation_id, session_id, wanted)
                return [r["uid"] for r in rows]
            except IntegrityError:
                with self._tx() as s:
                    self._check(s, conversation_id)  # a missing conversation, not a race
                    if uids is not None:
                        taken = s.scalars(select(ItemRow.uid).where(ItemRow.uid.in_(list(uids))))
                        if taken.first() is not None or len(set(uids)) < len(uids):
                            raise StoreError(f"uids must be new and unique: {uids[:3]}") from None
                # Another writer took these positions first: read the new end and try again.
                log.debug("append to %s conflicted with another writer; retrying", conversation_id)
        raise StoreError(
            f"could not append {len(rows)} items to {conversation_id!r}:"
            f" {_APPEND_ATTEMPTS} attempts conflicted with other writers"
        )

    def _row(self, conversation_id: str, item: Item, session_id: int | None) -> dict[str, Any]:
        record = item_to_dict(item)
        record.pop("id", None)
        return {
            "conversation_id": conversation_id, "uid": uuid.uuid4().hex, "session_id": session_id,
            "kind": item.type,
            "role": item.role if isinstance(item, Message) else None, "content": record,
            "tokens": self.counter.item(item).full.total, "status": "live",
        }  # fmt: skip

    def update_item(self, conversation_id: str, uid: str, item: Item) -> None:
        """Replace a stored item's content (a transcript that arrived after the item).

        The item keeps its place, status and server ids.
        """
        record = item_to_dict(item)
        record.pop("id", None)
        with self._tx() as s:
            self._check(s, conversation_id)
            (row_id,) = _item_ids(s, conversation_id, [uid])
            s.execute(update(ItemRow).where(ItemRow.id == row_id).values(
                content=record, kind=item.type, tokens=self.counter.item(item).full.total,
                role=item.role if isinstance(item, Message) else None))  # fmt: skip

    def record_server_ids(
        self, conversation_id: str, session_id: int, server_ids: Mapping[str, str]
    ) -> None:
        """Record the server's ids of stored items in a session (``{uid: server_item_id}``).

        The items a new session was seeded with get new ids there.
        """
        with self.engine.begin() as c:
            _link(c, conversation_id, session_id, server_ids)

    def server_ids(self, conversation_id: str, session_id: int) -> dict[str, str]:
        """The server's item id of each stored item in a session, ``{server_item_id: uid}``."""
        query = (
            select(ServerItemRow.server_item_id, ItemRow.uid)
            .join(ItemRow, ItemRow.id == ServerItemRow.item_id)
            .where(ItemRow.conversation_id == conversation_id,
                   ServerItemRow.session_id == session_id)
        )  # fmt: skip
        with self.engine.connect() as c:
            return dict(c.execute(query).all())

    def mark(self, conversation_id: str, uids: Sequence[str], status: ItemStatus) -> None:
        """Set the status of items (``truncated`` when the server dropped them, ...)."""
        if status not in ITEM_STATUSES:
            raise StoreError(f"status must be one of {', '.join(ITEM_STATUSES)}, got {status!r}")
        with self._tx() as s:
            self._check(s, conversation_id)
            _item_ids(s, conversation_id, uids)
            s.execute(update(ItemRow)
                      .where(ItemRow.conversation_id == conversation_id, ItemRow.uid.in_(uids))
                      .values(status=status))  # fmt: skip

    # ------------------------------------------------------------------ summaries, compactions
    def record_compaction(
        self,
        conversation_id: str,
        *,
        covers: Sequence[str],
        summary: str | None,
        strategy: str,
        session_id: int | None = None,
        tokens_before: int = 0,
        tokens_after: int = 0,
    ) -> int:
        """Record a compaction as one transaction; returns the compaction's id.

        The `summary` (or ``None`` for a compaction that only drops) replaces the newest
        summary, the `covers` items become ``compacted`` and the event is logged, or, if any of
        it fails, none of it happens.
        """
        covers = list(dict.fromkeys(covers))  # an item is covered once, however often named
        with self._tx() as s:
            self._check(s, conversation_id)
            ids = _item_ids(s, conversation_id, covers)
            summary_id = None
            if summary is not None:
                previous = self._newest_summary(s, conversation_id)
                row = SummaryRow(
                    conversation_id=conversation_id, text=summary,
                    tokens=self.counter.text(summary), created_at=_now(),
                    replaces_id=previous.id if previous else None,
                )  # fmt: skip
                s.add(row)
                s.flush()
                summary_id = row.id
                s.add_all(SummaryItemRow(summary_id=row.id, item_id=i) for i in ids)
            s.execute(update(ItemRow).where(ItemRow.id.in_(ids)).values(status="compacted"))
            event_row = CompactionRow(
                conversation_id=conversation_id, session_id=session_id, strategy=strategy,
                summary_id=summary_id, items_removed=len(ids), tokens_before=tokens_before,
                tokens_after=tokens_after, created_at=_now(),
            )  # fmt: skip
            s.add(event_row)
            s.flush()
            return event_row.id

    @staticmethod
    def _newest_summary(s: Session, conversation_id: str) -> SummaryRow | None:
        return s.scalars(select(SummaryRow).where(SummaryRow.conversation_id == conversation_id)
                         .order_by(SummaryRow.id.desc()).limit(1)).first()  # fmt: skip

    # ------------------------------------------------------------------ usage
    def record_usage(
        self,
        conversation_id: str,
        observed: Usage,
        *,
        predicted: Usage | None = None,
        cost_usd: float | None = None,
        session_id: int | None = None,
        response_id: str | None = None,
    ) -> None:
        """Record one response's usage: the server's figures and, optionally, the prediction.

        `cost_usd` defaults to the observed usage priced with the counter's profile.
        """
        for name, usage in (("observed", observed), ("predicted", predicted)):
            if usage is None:
                continue
            counts = dict(zip(USAGE_FIELDS, _usage_counts(usage), strict=True))
            negative = {k: v for k, v in counts.items() if v < 0}
            if negative:
                raise StoreError(f"{name} usage counts must be >= 0, got {negative}")
            if usage.cached_tokens > usage.input_tokens:
                raise StoreError(
                    f"{name} cached tokens ({usage.cached_tokens}) exceed input tokens"
                    f" ({usage.input_tokens})"
                )
        if cost_usd is None:
            cost_usd = price(observed, self.counter.profile.prices_per_million).total
        row: dict[str, Any] = dict(zip(USAGE_FIELDS, _usage_counts(observed), strict=True))
        if predicted is not None:
            row |= {
                f"predicted_{k}": v
                for k, v in zip(USAGE_FIELDS, _usage_counts(predicted), strict=True)
            }
        with self._tx() as s:
            self._check(s, conversation_id)
            s.add(UsageRow(conversation_id=conversation_id, session_id=session_id,
                           response_id=response_id, cost_usd=cost_usd, created_at=_now(),
                           **row))  # fmt: skip

    def usage(self, conversation_id: str) -> list[dict[str, Any]]:
        """Every recorded response's usage, in order."""
        with self._tx() as s:
            rows = s.scalars(select(UsageRow).where(UsageRow.conversation_id == conversation_id)
                             .order_by(UsageRow.id)).all()  # fmt: skip
            names = [c.key for c in UsageRow.__table__.columns]
            return [{n: getattr(r, n) for n in names} for r in rows]

    # ------------------------------------------------------------------ reading back
    def load(self, conversation_id: str) -> StoredConversation:
        """The conversation as the client remembers it (compacted and deleted items left out)."""
        with self._tx() as s:
            self._check(s, conversation_id)
            query = select(ItemRow.uid, ItemRow.content, ItemRow.status).where(
                ItemRow.conversation_id == conversation_id,
                ItemRow.status.in_(("live", "truncated")),
            )
            rows = s.execute(query.order_by(ItemRow.position)).all()
            newest = self._newest_summary(s, conversation_id)
            items = tuple(
                item_from_dict({**r.content, "id": r.uid}, source=f"item {r.uid}") for r in rows
            )
            statuses: tuple[ItemStatus, ...] = tuple(r.status for r in rows)
            return StoredConversation(conversation_id, items, statuses,
                                      newest.text if newest else None)  # fmt: skip

    def seed(self, conversation_id: str, policy: RolloverPolicy | None = None) -> list[Item]:
        """The items to seed a new session with.

        The stored summary, folded with the older turns by `policy` (a `RolloverPolicy`;
        default ``summary``), then the most recent turns within its budget.
        """
        policy = policy or DEFAULT_ROLLOVER
        stored = self.load(conversation_id)
        return policy.seed(stored.items, self.counter, previous=stored.summary)


def _usage_counts(usage: Usage) -> tuple[int, ...]:
    """A usage's counts in `USAGE_FIELDS` order."""
    i, c, o = usage.input, usage.cached, usage.output
    return (i.text, i.audio, i.image, c.text, c.audio, c.image, o.text, o.audio)


def _item_ids(c: Connection | Session, conversation_id: str, uids: Sequence[str]) -> list[int]:
    """The row ids of items by their stable ids; a `StoreError` names any that are missing."""
    query = select(ItemRow.uid, ItemRow.id).where(
        ItemRow.conversation_id == conversation_id, ItemRow.uid.in_(list(uids))
    )
    found: dict[str, int] = dict(c.execute(query).all())
    unknown = [u for u in uids if u not in found]
    if unknown:
        raise StoreError(
            f"{len(unknown)} of {len(uids)} items are not in {conversation_id!r}:"
            f" {', '.join(unknown[:3])}"
        )
    return [found[u] for u in uids]


def _link(c: Connection, conversation_id: str, session_id: int, wanted: Mapping[str, str]) -> None:
    """Insert items' server ids in a session (``{uid: server_item_id}``), in the transaction."""
    ids = _item_ids(c, conversation_id, list(wanted))
    taken = list(c.scalars(select(ServerItemRow.server_item_id).where(
        ServerItemRow.session_id == session_id,
        ServerItemRow.server_item_id.in_(list(wanted.values())))))  # fmt: skip
    if taken or len(set(wanted.values())) < len(wanted):
        raise StoreError(
            f"server item ids must be unique in session {session_id}: {taken[:3] or 'repeated'}"
        )
    c.execute(
        insert(ServerItemRow),
        [{"item_id": i, "session_id": session_id, "server_item_id": sid}
         for i, sid in zip(ids, wanted.values(), strict=True)],
    )  # fmt: skip
