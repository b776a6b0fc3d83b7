"""The store's tables (SQLAlchemy 2 typed ORM).

A conversation outlives its sessions; its items carry a stable conversation-level id (`uid`)
and, per session, the server's item id (`ServerItemRow`). Item status says where an item
stands: ``live`` (in the server's conversation), ``truncated`` (the server dropped it; the
client still remembers it), ``compacted`` (a summary covers it) or ``deleted``. The schema
itself is created by the Alembic migrations in ``store/migrations``; these classes are what
the code reads and writes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "ITEM_STATUSES",
    "Base",
    "CompactionRow",
    "ConversationRow",
    "ItemRow",
    "ItemStatus",
    "ServerItemRow",
    "SeedSummaryRow",
    "SessionRow",
    "SummaryItemRow",
    "SummaryRow",
    "USAGE_FIELDS",
    "UsageRow",
]

ItemStatus = Literal["live", "truncated", "compacted", "deleted"]
ITEM_STATUSES: tuple[ItemStatus, ...] = ("live", "truncated", "compacted", "deleted")


class Base(DeclarativeBase):
    """The declarative base of every table."""


class ConversationRow(Base):
    """One conversation, across all its sessions."""

    __tablename__ = "conversations"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime]
    title: Mapped[str | None] = mapped_column(String(200))


class SessionRow(Base):
    """One realtime session of a conversation."""

    __tablename__ = "sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    provider: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(80))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(40))
    uncarried: Mapped[list[str] | None] = mapped_column(JSON)
    """Keys of user turns with no transcript the session's seed could not carry."""
    open_turn_ms: Mapped[int | None] = mapped_column(Integer)
    """Audio (ms, as last noted) of a user turn being spoken and not yet stored as an item;
    still set on an ended session, that turn was lost (the process died while it was spoken)."""


class ItemRow(Base):
    """One conversation item; `position` orders the conversation and is unique in it."""

    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("conversation_id", "position", name="uq_items_position"),
        UniqueConstraint("conversation_id", "uid", name="uq_items_uid"),
        Index("ix_items_conversation_status", "conversation_id", "status"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"))
    uid: Mapped[str] = mapped_column(String(64))
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id"))
    """The session the item was first said in."""
    position: Mapped[int]
    kind: Mapped[str] = mapped_column(String(32))
    role: Mapped[str | None] = mapped_column(String(16))
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    tokens: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default="live")


class ServerItemRow(Base):
    """An item's id on the server in one session (a seeded item gets a new one each session)."""

    __tablename__ = "server_items"
    __table_args__ = (UniqueConstraint("session_id", "server_item_id", name="uq_server_items"),)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), primary_key=True)
    server_item_id: Mapped[str] = mapped_column(String(64))


class SummaryRow(Base):
    """A summary (or ledger) of items, and the summary it replaces."""

    __tablename__ = "summaries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    tokens: Mapped[int]
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("summaries.id"))
    created_at: Mapped[datetime]


class SummaryItemRow(Base):
    """Which items a summary covers."""

    __tablename__ = "summary_items"
    summary_id: Mapped[int] = mapped_column(ForeignKey("summaries.id"), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True)


class SeedSummaryRow(Base):
    """The running summary a seed carries: what `Store.seed` folded, kept for the next seed.

    Derived data (a cache): it covers the live items up to `upto` (`items` of them, on the
    client's summary `base_id`), so the next seed folds only what came after.
    """

    __tablename__ = "seed_summaries"
    __table_args__ = (Index("ix_seed_summaries_key", "conversation_id", "policy"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"))
    policy: Mapped[str] = mapped_column(String(200))
    base_id: Mapped[int | None] = mapped_column(ForeignKey("summaries.id"))
    upto: Mapped[int]
    items: Mapped[int]
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


USAGE_FIELDS = (
    "input_text", "input_audio", "input_image", "cached_text", "cached_audio", "cached_image",
    "output_text", "output_audio",
)  # fmt: skip
"""A response's token counts by modality, as `UsageRow` columns (each also as ``predicted_``)."""


class UsageRow(Base):
    """One response's usage: what the server reported and what the model predicted.

    The observed counts are the server's ``response.done`` usage; the ``predicted_`` ones (null
    when nothing was predicted) are the server model's, so the two can be compared later.
    """

    __tablename__ = "usage"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id"))
    response_id: Mapped[str | None] = mapped_column(String(64))
    input_text: Mapped[int]
    input_audio: Mapped[int]
    input_image: Mapped[int] = mapped_column(default=0, server_default="0")
    cached_text: Mapped[int]
    cached_audio: Mapped[int]
    cached_image: Mapped[int] = mapped_column(default=0, server_default="0")
    output_text: Mapped[int]
    output_audio: Mapped[int]
    predicted_input_text: Mapped[int | None]
    predicted_input_audio: Mapped[int | None]
    predicted_input_image: Mapped[int | None]
    predicted_cached_text: Mapped[int | None]
    predicted_cached_audio: Mapped[int | None]
    predicted_cached_image: Mapped[int | None]
    predicted_output_text: Mapped[int | None]
    predicted_output_audio: Mapped[int | None]
    cost_usd: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime]
    out_of_band: Mapped[bool] = mapped_column(default=False, server_default=false())
    """A response outside the conversation (``conversation: "none"``)."""
    response_metadata: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """The response's ``metadata``, as the application set it."""


class CompactionRow(Base):
    """One client-side compaction: what ran and what it did."""

    __tablename__ = "compactions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id"))
    strategy: Mapped[str] = mapped_column(String(80))
    summary_id: Mapped[int | None] = mapped_column(ForeignKey("summaries.id"))
    items_removed: Mapped[int]
    tokens_before: Mapped[int]
    tokens_after: Mapped[int]
    created_at: Mapped[datetime]
