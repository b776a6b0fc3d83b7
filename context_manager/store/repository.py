"""The conversation store: what the engine and users call to persist a conversation.

`Store` writes through SQLAlchemy to SQLite (the default: a file in WAL mode) or PostgreSQL (a
``postgresql+psycopg://`` URL). Every method is one transaction, so a crash between two of them
leaves the state of the last one that returned, and a compaction (`record_compaction`: the
summary, the items it covers and the event) is all or nothing.

Every value is checked before the database sees it (`store.values`: one rule for both
databases), and every reference (conversation, session, item) is looked up in the transaction
before anything is inserted, so a bad call is a `StoreError` naming the problem. Transient
failures (a lost connection, a lock, a serialization conflict) are retried with backoff
(`store.database.Runner`); a write that may have been committed before its connection dropped
is looked for before it is written again.

Two processes may append to one conversation: appenders take a per-conversation lock
(PostgreSQL: a transaction-level advisory lock; SQLite: the write lock, ``BEGIN IMMEDIATE``), so
each call's items get a contiguous run of positions, in commit order; nothing is lost or
reordered.

Values always travel as bound parameters, hidden from SQLAlchemy's messages and logs; the URL's
password is never logged or shown (`Store.__repr__`); no key or secret is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, inspect, select

from ..errors import StoreError
from ..items import Item, item_from_dict
from ..profiles import get_model_profile
from ..rollover import DEFAULT_ROLLOVER, RolloverPolicy
from ..server.usage import Usage
from ..tokens import TokenCounter
from .database import DEFAULT_URL, Call, Runner, make_engine, shown
from .migrate import downgrade, upgrade
from .models import ConversationRow, ItemRow, ItemStatus, SessionRow, SummaryRow, UsageRow
from .seeding import seed_items
from .values import check_int
from .writes import WriteCalls, server_ids_of

__all__ = ["DEFAULT_URL", "Store", "StoredConversation", "downgrade", "upgrade"]


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


class Store(WriteCalls):
    """Persist conversations, sessions, items, summaries, usage and compactions.

    Args:
        url: an SQLAlchemy URL (default: `DEFAULT_URL`).
        counter: counts each item's tokens as it is stored (default: ``gpt-realtime``'s rules).
        migrate: bring the schema to the newest revision first (the default; otherwise a
            database that was never migrated is refused with a `StoreError`).
        retry_seconds: how long a call retries a transient failure (a lost connection, a
            lock, a serialization conflict) before it raises a `StoreError` whose
            ``transient`` is true.

    Raises:
        StoreError: the database cannot be reached, opened or migrated.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        counter: TokenCounter | None = None,
        migrate: bool = True,
        retry_seconds: float = 2.0,
    ) -> None:
        if migrate:
            upgrade(url)
        self.engine = make_engine(url)
        self._runner = Runner(self.engine, retry_seconds=retry_seconds)
        self._postgres = self.engine.dialect.name == "postgresql"
        self.aliases = {}
        try:
            tables = self._read(f"open {self}", lambda c: set(inspect(c).get_table_names()))
        except StoreError:
            self.engine.dispose()
            raise
        missing = {"conversations", "items"} - tables
        if missing:
            self.engine.dispose()
            raise StoreError(
                f"{self} has no {', '.join(sorted(missing))} table:"
                " run `context-manager db upgrade`",
                reason="schema",
            )
        self.counter = counter or TokenCounter(get_model_profile("gpt-realtime"))

    def __repr__(self) -> str:
        return f"Store({shown(self.engine)!r})"

    __str__ = __repr__

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()

    def run(self, call: Call, *, retry: bool = True) -> Any:
        """Run a prepared write (`AsyncStore` keeps them); see `store.database.Runner.run`."""
        return self._runner.run(call, retry=retry)

    def _read(self, what: str, work: Callable[[Connection], Any]) -> Any:
        return self._runner.run(Call(what, work), read=True)

    # ------------------------------------------------------------------ conversations
    def create_conversation(
        self, conversation_id: str | None = None, title: str | None = None
    ) -> str:
        """Start a conversation and return its id (a new UUID unless given)."""
        result: str = self.run(self._create_conversation(conversation_id, title))
        return result

    def conversations(self) -> list[str]:
        """Every conversation id, oldest first."""
        query = select(ConversationRow.id).order_by(ConversationRow.created_at, ConversationRow.id)
        result: list[str] = self._read("list conversations", lambda c: list(c.scalars(query)))
        return result

    # ------------------------------------------------------------------ sessions
    def start_session(
        self, conversation_id: str, *, provider: str, model: str, started_at: datetime | None = None
    ) -> int:
        """Record a new realtime session of the conversation; returns its id."""
        call = self._start_session(conversation_id, provider, model, started_at)
        result: int = self.run(call)
        return result

    def end_session(self, session_id: int, reason: str, ended_at: datetime | None = None) -> None:
        """Record how and when a session ended (``expired``, ``rollover``, ``closed``, ...)."""
        self.run(self._end_session(session_id, reason, ended_at))

    def note_uncarried(self, session_id: int, keys: Sequence[str]) -> None:
        """Record the user turns (keys) with no transcript that a session's seed lacks."""
        self.run(self._note_uncarried(session_id, keys))

    def note_open_turn(self, session_id: int, ms: int | None) -> None:
        """Note the audio (ms) of a user turn being spoken in a session (``None``: none now)."""
        self.run(self._note_open_turn(session_id, ms))

    def open_turns(self, conversation_id: str) -> list[int]:
        """The audio (ms) of the user turns in progress in the conversation's open sessions.

        Read before a resume ends those sessions: each is a turn the caller was speaking when
        the process died, never stored as an item.
        """
        cid = self._cid(conversation_id)
        query = select(SessionRow.open_turn_ms).where(
            (SessionRow.conversation_id == cid)
            & SessionRow.ended_at.is_(None)
            & SessionRow.open_turn_ms.is_not(None)
        )

        def work(c: Connection) -> list[int]:
            rows = c.execute(query.order_by(SessionRow.id)).scalars()
            return [int(ms) for ms in rows if ms is not None]

        result: list[int] = self._read(f"read the turns in progress of {cid!r}", work)
        return result

    def end_open_sessions(self, conversation_id: str, reason: str) -> int:
        """End every session of the conversation still open; returns how many.

        A process that died mid-call never ended its own sessions; the next one to resume the
        call ends them.
        """
        result: int = self.run(self._end_open_sessions(conversation_id, reason))
        return result

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
        result: list[str] = self.run(self._append(conversation_id, items, session_id, uids))
        return result

    def update_item(self, conversation_id: str, uid: str, item: Item) -> None:
        """Replace a stored item's content (a transcript that arrived after the item).

        The item keeps its place, status and server ids.
        """
        self.run(self._update_item(conversation_id, uid, item))

    def record_server_ids(
        self, conversation_id: str, session_id: int, server_ids: Mapping[str, str]
    ) -> None:
        """Record the server's ids of stored items in a session (``{uid: server_item_id}``).

        The items a new session was seeded with get new ids there.
        """
        self.run(self._record_server_ids(conversation_id, session_id, server_ids))

    def server_ids(self, conversation_id: str, session_id: int) -> dict[str, str]:
        """The server's item id of each stored item in a session, ``{server_item_id: uid}``."""
        cid = self._cid(conversation_id)
        check_int("session id", session_id)
        result: dict[str, str] = self._read(
            f"read the server ids of session {session_id}",
            lambda c: server_ids_of(c, cid, self._sid(session_id)),
        )
        return result

    def mark(self, conversation_id: str, uids: Sequence[str], status: ItemStatus) -> None:
        """Set the status of items (``truncated`` when the server dropped them, ...)."""
        self.run(self._mark(conversation_id, uids, status))

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
        call = self._record_compaction(
            conversation_id, covers=covers, summary=summary, strategy=strategy,
            session_id=session_id, tokens_before=tokens_before, tokens_after=tokens_after,
        )  # fmt: skip
        result: int = self.run(call)
        return result

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
        out_of_band: bool = False,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        """Record one response's usage: the server's figures and, optionally, the prediction.

        `cost_usd` defaults to the observed usage priced with the counter's profile.
        `out_of_band` marks a response outside the conversation (``conversation: "none"``);
        `metadata` is the response's own (string keys and values).
        """
        self.run(self._record_usage(conversation_id, observed, predicted=predicted,
                                    cost_usd=cost_usd, session_id=session_id,
                                    response_id=response_id, out_of_band=out_of_band,
                                    metadata=metadata))  # fmt: skip

    def usage(self, conversation_id: str) -> list[dict[str, Any]]:
        """Every recorded response's usage, in order."""
        cid = self._cid(conversation_id)
        query = select(UsageRow.__table__).where(UsageRow.conversation_id == cid)

        def work(c: Connection) -> list[dict[str, Any]]:
            return [dict(r) for r in c.execute(query.order_by(UsageRow.id)).mappings()]

        result: list[dict[str, Any]] = self._read(f"read the usage of {cid!r}", work)
        return result

    # ------------------------------------------------------------------ reading back
    def load(self, conversation_id: str) -> StoredConversation:
        """The conversation as the client remembers it (compacted and deleted items left out)."""
        cid = self._cid(conversation_id)

        def work(c: Connection) -> tuple[list[Any], str | None]:
            self._need_conversation(c, cid)
            query = select(ItemRow.uid, ItemRow.content, ItemRow.status).where(
                ItemRow.conversation_id == cid, ItemRow.status.in_(("live", "truncated"))
            )
            rows = list(c.execute(query.order_by(ItemRow.position)))
            newest = c.scalar(select(SummaryRow.text).where(SummaryRow.conversation_id == cid)
                              .order_by(SummaryRow.id.desc()).limit(1))  # fmt: skip
            return rows, newest

        rows, newest = self._read(f"load {cid!r}", work)
        items = tuple(
            item_from_dict({**r.content, "id": r.uid}, source=f"item {r.uid}") for r in rows
        )
        statuses: tuple[ItemStatus, ...] = tuple(r.status for r in rows)
        return StoredConversation(cid, items, statuses, newest)

    def seed(self, conversation_id: str, policy: RolloverPolicy | None = None) -> list[Item]:
        """The items to seed a new session with.

        The stored summary, folded with the older turns by `policy` (a `RolloverPolicy`;
        default `DEFAULT_ROLLOVER`), then the most recent turns within its budget. The cost
        does not grow with the conversation (`context_manager.store.seeding`): only the tail is
        read, and a summary a seed carried is kept, so the next one folds only what is new.
        """
        return seed_items(self, self._cid(conversation_id), policy or DEFAULT_ROLLOVER)
