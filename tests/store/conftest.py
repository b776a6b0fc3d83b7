"""Every store test runs on SQLite and on PostgreSQL.

PostgreSQL needs a server: set CONTEXT_MANAGER_TEST_PG_URL to a database URL the tests may create
and drop databases from (`.ci/postgres` starts one and prints it). Without it the PostgreSQL cases
skip, saying so, unless CONTEXT_MANAGER_REQUIRE_PG is set (CI sets it): then they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

PG_URL = os.environ.get("CONTEXT_MANAGER_TEST_PG_URL")
REQUIRE_PG = bool(os.environ.get("CONTEXT_MANAGER_REQUIRE_PG"))


@contextmanager
def fresh_database(kind: str, directory: Path) -> Iterator[str]:
    """The URL of a new, empty database of `kind` (``sqlite`` or ``postgresql``), dropped after."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'store.db'}"
        return
    if not PG_URL:
        message = "PostgreSQL: set CONTEXT_MANAGER_TEST_PG_URL (see .ci/postgres) to run this case"
        if REQUIRE_PG:
            pytest.fail(message + " (CONTEXT_MANAGER_REQUIRE_PG is set)")
        pytest.skip(message)
    name = f"cm_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database of each kind, dropped afterwards."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A URL of a database of each kind shared by a module's tests (for long tables of cases)."""
    with fresh_database(request.param, tmp_path_factory.mktemp("db")) as url:
        yield url
