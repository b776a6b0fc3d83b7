"""The ``db`` command group: the conversation store's schema."""

from __future__ import annotations

from typing import Annotated

import typer

from .options import JsonFlag
from .render import _emit_json

__all__ = ["db_app", "db_upgrade"]

db_app = typer.Typer(help="The conversation store: migrate its schema.", no_args_is_help=True)


DbUrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="CONTEXT_MANAGER_DB_URL",
        help="SQLAlchemy URL (default sqlite:///context_manager.db; PostgreSQL:"
        " postgresql+psycopg://user@host/db).",
    ),
]


@db_app.command("upgrade")
def db_upgrade(
    url: DbUrlOption = None,
    revision: Annotated[str, typer.Option(help="The revision to reach.")] = "head",
    as_json: JsonFlag = False,
) -> None:
    """Create or migrate the store's tables (Alembic) at URL."""
    from ..store import DEFAULT_URL, upgrade

    where = upgrade(url or DEFAULT_URL, revision)
    if as_json:
        _emit_json({"url": where, "revision": revision})
        return
    typer.echo(f"{where}: at revision {revision}")
