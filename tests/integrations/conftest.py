"""The engine's end-to-end tests write to both databases, as the store's tests do."""

from tests.store.conftest import db_url

__all__ = ["db_url"]
