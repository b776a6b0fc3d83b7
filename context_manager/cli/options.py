"""The options the commands share, and the helpers that read their values.

Each ``...Option`` / ``...Flag`` is an ``Annotated`` type: a command parameter annotated with one
gets that option, spelled and documented the same way everywhere. The helpers turn option values
into the library's objects (files read, profiles loaded, workloads built); a bad value raises a
`ContextManagerError`, which `main` prints as one line.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import typer

from ..errors import ConfigurationError, InputFormatError
from ..items import read_jsonl
from ..profiles import (
    ModelProfile,
    ProviderProfile,
    get_model_profile,
    get_provider_profile,
    load_model_profile,
    load_provider_profile,
)
from ..simulate.workloads import WorkloadSpec, workload
from ..tools import validate_tools

__all__ = [
    "CompactionOption",
    "DaskSchedulerOption",
    "FactsFlag",
    "InstructionsOption",
    "JsonFlag",
    "ModelOption",
    "ProfileOption",
    "ProviderOption",
    "RolloverOption",
    "ToolsOption",
    "TruncationOption",
    "WorkersOption",
]

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
ModelOption = Annotated[
    str | None, typer.Option("--model", help="A built-in model profile (default gpt-realtime).")
]
ProfileOption = Annotated[
    Path | None, typer.Option("--profile", help="A model profile file (.json or .toml).")
]
ProviderOption = Annotated[
    str, typer.Option("--provider", help="A provider name (openai, azure) or a provider file.")
]
InstructionsOption = Annotated[
    Path | None, typer.Option("--instructions", help="A text file with the session instructions.")
]
ToolsOption = Annotated[
    Path | None, typer.Option("--tools", help="A JSON file with the session's tools array.")
]
RolloverOption = Annotated[
    str,
    typer.Option(
        "--rollover",
        help="At the session limit: recent[:BUDGET] re-sends recent turns; summary[:BUDGET[:S]]"
        " or ledger[:BUDGET[:S]] puts a summary or the fact ledger (S tokens) before them;"
        " none ends the call.",
    ),
]
CompactionOption = Annotated[
    str,
    typer.Option(
        "--compaction",
        help="Client-side compaction: none, drop-oldest, audio-to-text, rolling-summary,"
        " hierarchical, ledger, each with :KEY=VALUE,... (see docs/compaction.md).",
    ),
]
FactsFlag = Annotated[
    bool,
    typer.Option("--facts", help="Plant the default facts and report how many survive."),
]
TruncationOption = Annotated[
    str,
    typer.Option(
        "--truncation",
        help="auto | disabled | retention_ratio:R | retention_ratio:R:POST_INSTRUCTIONS",
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        help="Local worker processes (default: every core when the work pays for them).",
        show_default=False,
    ),
]
DaskSchedulerOption = Annotated[
    str | None, typer.Option("--dask-scheduler", help="Address of a dask.distributed scheduler.")
]


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputFormatError(f"{what} file not found", source=str(path)) from exc
    except IsADirectoryError as exc:
        raise InputFormatError(f"{what} path is a directory", source=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise InputFormatError(f"{what} file is not UTF-8 text", source=str(path)) from exc
    except OSError as exc:
        raise InputFormatError(
            f"cannot read {what} file: {exc.strerror}", source=str(path)
        ) from exc


def _read_json(path: Path, what: str) -> Any:
    text = _read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFormatError(
            f"{what} file is not valid JSON: {exc.msg} (column {exc.colno})",
            source=str(path),
            line=exc.lineno,
        ) from exc
    except RecursionError:
        raise InputFormatError(f"{what} file: JSON nested too deeply", source=str(path)) from None


def _conversation(path: str | Path) -> list[Any]:
    """A conversation file's items; an empty file is an error, not an empty answer."""
    items = read_jsonl(path)
    if not items:
        raise InputFormatError("no conversation items in it (an empty file)", source=str(path))
    return items


def _session_files(instructions: Path | None, tools: Path | None) -> tuple[str, list[Any]]:
    """The instructions text and the tools list of a session, read from their files."""
    text = _read_text(instructions, "instructions") if instructions is not None else ""
    tool_list = validate_tools(_read_json(tools, "tools"), source=str(tools)) if tools else []
    return text, tool_list


def _provider(value: str) -> ProviderProfile:
    """A provider by name, or from a profile file when `value` names one."""
    path = Path(value)
    if path.suffix.lower() in (".json", ".toml"):
        return load_provider_profile(path)
    return get_provider_profile(value)


def _profile(model: str | None, profile: Path | None) -> ModelProfile:
    if model is not None and profile is not None:
        raise ConfigurationError("give --model or --profile, not both")
    if profile is not None:
        return load_model_profile(profile)
    return get_model_profile(model or "gpt-realtime")


def _workload(name: str, minutes: float | None, params: list[str]) -> tuple[WorkloadSpec, Any]:
    """A workload by name (``files:A.jsonl,B.jsonl`` resamples files), with parameters set."""
    changes: dict[str, Any] = {}
    for param in params:
        key, sep, value = param.partition("=")
        if not sep:
            raise ConfigurationError(f"--param wants KEY=VALUE, got {param!r}")
        try:
            changes[key.strip()] = float(value)
        except ValueError:
            raise ConfigurationError(f"--param {key}: {value!r} is not a number") from None
    if minutes is not None:
        changes["minutes"] = minutes
    if name.startswith("files:"):
        paths = [p for p in name[len("files:") :].split(",") if p]
        if not paths:
            raise ConfigurationError("files: needs at least one conversation file")
        return WorkloadSpec(name="files").with_(**changes), [_conversation(p) for p in paths]
    return workload(name, **changes), None


def _path(value: str) -> Literal["vectorized", "reference"]:
    if value == "vectorized":
        return "vectorized"
    if value == "reference":
        return "reference"
    raise ConfigurationError(f"--path must be vectorized or reference, got {value!r}")


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigurationError(f"--seeds takes comma-separated integers, got {text!r}") from None
    if not seeds:
        raise ConfigurationError("--seeds needs at least one seed")
    negative = [x for x in seeds if x < 0]
    if negative:
        raise ConfigurationError(f"--seeds must be >= 0, got {negative[0]}")
    repeated = sorted({x for x in seeds if seeds.count(x) > 1})
    if repeated:
        raise ConfigurationError(f"--seeds repeats {repeated[0]}: each seed runs the same calls")
    return seeds


POOL_PAYS_SECONDS = 3.0
"""Estimated work (seconds on one core) from which worker processes pay for their start-up
(a fork, imports and the tokenizer: about half a second each)."""


def _executor(
    stack: contextlib.ExitStack[Any],
    workers: int | None,
    dask_scheduler: str | None,
    work: tuple[int, float] = (1, 0.0),
) -> Executor | None:
    """Where `--workers` / `--dask-scheduler` say to run: ``None`` is this process.

    Without `--workers` the command uses every core when the `work` (its number of tasks and
    its estimated seconds on one core) is large enough to pay for the processes, and this
    process otherwise. Local workers are at most the machine's cores (more is capped, with a
    warning), and never outlive the command: the pool is shut down (its processes terminated)
    however the command ends, and each worker exits by itself when its parent is gone (a
    SIGKILL leaves no orphan).
    """
    cores = os.cpu_count() or 1
    if dask_scheduler is not None and not dask_scheduler.strip():
        raise ConfigurationError("--dask-scheduler is empty: give the scheduler's HOST:PORT")
    if workers is None:
        tasks, seconds = work
        auto = min(cores, tasks) if seconds >= POOL_PAYS_SECONDS and not dask_scheduler else 1
        workers = max(auto, 1)
    if workers < 1:
        raise ConfigurationError(f"--workers must be >= 1, got {workers}")
    if workers > cores:
        sys.stderr.write(f"warning: --workers {workers} is more than this machine's {cores} cores;"
                         f" using {cores}\n")  # fmt: skip
        workers = cores
    if dask_scheduler:
        if workers > 1:
            raise ConfigurationError("give --workers or --dask-scheduler, not both")
        try:
            from distributed import Client
        except ImportError:
            raise ConfigurationError(
                "--dask-scheduler needs the dask extra: pip install 'context-manager[dask]'"
            ) from None
        try:
            client = Client(dask_scheduler, timeout="10s")  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError, ValueError) as exc:
            reason = " ".join(str(exc).split())[:200]
            raise ConfigurationError(
                f"cannot reach the Dask scheduler at {dask_scheduler!r}: {reason}"
            ) from None
        return stack.enter_context(client).get_executor()  # type: ignore[no-any-return]
    if workers > 1:
        pool = ProcessPoolExecutor(workers, initializer=_orphan_guard, initargs=(os.getpid(),))
        stack.callback(_stop_pool, pool)
        return pool
    return None


def _orphan_guard(parent: int) -> None:
    """In a worker: exit as soon as the command that started it is gone (even by SIGKILL).

    A forked worker inherits the command's signal handlers: it takes the defaults back (the
    command stops its workers itself; Ctrl-C reaches the whole process group).
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="orphan-guard").start()


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Stop the workers now: pending work cancelled, running work killed."""
    processes = list(getattr(pool, "_processes", {}).values())  # the stdlib keeps no public list
    # The pool's manager thread, taken before `shutdown` forgets it (the stdlib keeps no
    # public handle either).
    manager = getattr(pool, "_executor_manager_thread", None)
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()
    for process in processes:
        with contextlib.suppress(Exception):
            process.join(5)
    # Join the manager thread too, now that its workers are gone, and take its wake-up pipe
    # (which it closed) out of the stdlib's exit hook: otherwise Python 3.11's exit writes to
    # the closed pipe, a traceback after the one-line error (seen under load).
    with contextlib.suppress(Exception):
        pool.shutdown(wait=True)
    if manager is not None:
        with contextlib.suppress(Exception):
            manager.join(5)
        with contextlib.suppress(Exception):
            from concurrent.futures import process as stdlib_process

            stdlib_process._threads_wakeups.pop(manager, None)


@contextlib.contextmanager
def _writing(path: Path, what: str) -> Iterator[None]:
    """Writing an output file: a failure (a full disk, a read-only place) is one line."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigurationError(f"cannot write {what} {str(path)!r}: {reason}") from None


PLOT_FORMATS = ("png", "svg", "pdf", "jpg", "jpeg", "webp", "tif", "tiff", "eps", "ps")
"""The image formats a plot is written in (matplotlib's, by the file name's suffix)."""


def _output(path: Path | None, what: str) -> Path | None:
    """Check an output file's path before any work: not a directory, its directory there."""
    if path is None:
        return None
    if str(path).endswith(("/", os.sep)) or path.is_dir():
        raise ConfigurationError(f"{what} {str(path)!r} is a directory; give a file name")
    if what == "--plot" and path.suffix.lower().lstrip(".") not in PLOT_FORMATS:
        raise ConfigurationError(
            f"--plot {str(path)!r}: give a file name ending in one of"
            f" {', '.join('.' + f for f in PLOT_FORMATS)}"
        )
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ConfigurationError(f"{what} {str(path)!r}: directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise ConfigurationError(f"{what} {str(path)!r}: directory {str(parent)!r} is not writable")
    return path


def _fail(message: str) -> NoReturn:
    # One line, whatever the message held.
    sys.stderr.write("error: " + " ".join(message.split()) + "\n")
    raise SystemExit(2)
