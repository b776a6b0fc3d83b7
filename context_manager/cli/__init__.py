"""The ``context-manager`` command.

Every command takes ``--json`` and then prints exactly one JSON object on stdout. Errors go
to stderr as one line (``error: ...``) with exit status 2, never a traceback.

The commands live one group a module (`inspect`: budget, count, profiles; `simulate`: simulate,
sweep; `replay`; `bench`; `db`), their shared options and input helpers in `options`, their
output in `render`; this module puts them on the one `app`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

import typer

from ..errors import ContextManagerError
from . import bench, db, inspect, replay, simulate
from .options import _fail

__all__ = ["app", "main"]


def _no_args_errors() -> tuple[type[BaseException], ...]:
    """The "no arguments, help shown" exception: Typer's own click (0.2x), or click's."""
    found: list[type[BaseException]] = []
    for module in ("typer._click.exceptions", "click.exceptions"):
        try:
            found.append(__import__(module, fromlist=["NoArgsIsHelpError"]).NoArgsIsHelpError)
        except (ImportError, AttributeError):
            continue  # recent Typer does not need click installed at all
    return tuple(found)


_NO_ARGS = _no_args_errors()

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
    """Run the command line; errors print one line on stderr and exit with status 2.

    SIGTERM ends a command as Ctrl-C does (its worker processes stopped, nothing left
    running). A failure the command did not foresee is one line too (exit status 70, the
    traceback only with ``CONTEXT_MANAGER_DEBUG=1``): a bug to report, not a usage error.
    """
    previous = _on_sigterm()
    try:
        status = app(args=argv, standalone_mode=False)
        # Outside standalone mode Typer returns an exit code instead of exiting: 130 is its
        # Ctrl-C (and our SIGTERM), which it would otherwise leave as a silent success.
        if status == _INTERRUPTED:
            _fail("interrupted")
        if isinstance(status, int) and status:
            raise SystemExit(status)
    except ContextManagerError as exc:
        _fail(str(exc))
    except _NO_ARGS:
        raise SystemExit(2) from None  # the help is printed: nothing to add
    except typer.TyperException as exc:  # usage errors: unknown option, bad value, ...
        message = exc.format_message()
        if not message.strip():  # a group without its command: the help says it all
            raise SystemExit(2) from None
        _fail(message)
    except typer.Abort:
        _fail("aborted")
    except KeyboardInterrupt:
        _fail("interrupted")
    except (SystemExit, BrokenPipeError):
        raise
    except Exception as exc:
        if os.environ.get("CONTEXT_MANAGER_DEBUG"):
            raise
        sys.stderr.write(
            f"error: internal error ({type(exc).__name__}); please report it, with the command"
            " (CONTEXT_MANAGER_DEBUG=1 shows the traceback)\n"
        )
        raise SystemExit(70) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


_INTERRUPTED = 130


def _on_sigterm() -> Any:
    """Make SIGTERM interrupt the command like Ctrl-C (only in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, interrupt)
