"""Persistence: conversations, sessions, items, summaries and usage in SQLite or PostgreSQL.

Needs the ``store`` extra (SQLAlchemy, Alembic; psycopg for PostgreSQL).
"""

from ..errors import ConfigurationError

try:
    import alembic  # noqa: F401
    import sqlalchemy  # noqa: F401
except ImportError as exc:  # the [store] extra is missing
    raise ConfigurationError(
        f"the conversation store needs {exc.name}: pip install 'context-manager[store]'"
    ) from None

from .aio import AsyncStore
from .database import DEFAULT_URL
from .migrate import downgrade, upgrade
from .models import ITEM_STATUSES, ItemStatus
from .repository import Store, StoredConversation

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
