"""Persistence: conversations, sessions, items, summaries and usage in SQLite or PostgreSQL.

Needs the ``store`` extra (SQLAlchemy, Alembic; psycopg for PostgreSQL).
"""

from .aio import AsyncStore
from .models import ITEM_STATUSES, ItemStatus
from .repository import DEFAULT_URL, Store, StoredConversation, downgrade, upgrade

__all__ = [
    "DEFAULT_URL",
    "AsyncStore",
    "ITEM_STATUSES",
    "ItemStatus",
    "Store",
    "StoredConversation",
    "downgrade",
    "upgrade",
]
