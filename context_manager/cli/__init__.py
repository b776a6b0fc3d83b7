"""The ``context-manager`` command.

Every command takes ``--json`` and then prints exactly one JSON object on stdout. Errors go
to stderr as one line (``error: ...``) with exit status 2, never a traceback.

The commands live one group a module (`inspect`: budget, count, profiles; `simulate`: simulate,
sweep; `replay`; `bench`; `db`), their shared options and input helpers in `options`, their
output in `render`; this module puts them on the one `app`.
"""

from __future__ import annotations

import typer

from ..errors import ContextManagerError
from . import bench, db, inspect, replay, simulate
from .options import _fail

__all__ = ["app", "main"]

app = typer.Typer(
    name="context-manager",
    help="Model the context window, truncation, prompt cache and cost of OpenAI Realtime sessions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# In the order `--help` lists them.
app.command()(inspect.budget)
app.command()(inspect.count)
app.command()(simulate.simulate)
app.command()(simulate.sweep)
app.command()(replay.replay)
app.command()(bench.bench)
app.add_typer(db.db_app, name="db")
app.command()(inspect.profiles)


def main(argv: list[str] | None = None) -> None:
    """Run the command line; errors print one line on stderr and exit with status 2."""
    try:
        app(args=argv, standalone_mode=False)
    except ContextManagerError as exc:
        _fail(str(exc))
    except typer.TyperException as exc:  # usage errors: unknown option, bad value, ...
        _fail(exc.format_message())
    except typer.Abort:
        _fail("aborted")
    except KeyboardInterrupt:
        _fail("interrupted")
