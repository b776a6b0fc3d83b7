"""The ``replay`` command: recorded Realtime event logs against the model's predictions."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import ConfigurationError, InputFormatError
from ..profiles import save_profile
from ..replay import fit_profile, read_event_log
from ..replay import replay as run_replay
from .options import (
    JsonFlag,
    ModelOption,
    ProfileOption,
    ProviderOption,
    _output,
    _profile,
    _provider,
    _writing,
)
from .render import _console, _emit_json, _print_replay

__all__ = ["replay"]


def replay(
    logs: Annotated[
        list[Path], typer.Argument(help="Event log files (JSONL), one session or more.")
    ],
    model: ModelOption = None,
    profile: ProfileOption = None,
    provider: ProviderOption = "openai",
    fit: Annotated[
        bool,
        typer.Option("--fit", help="Search the uncertain switches for the best-matching profile."),
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--output", help="With --fit: write the fitted profile here.")
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict", help="Fail (exit status 2) on any note: a line skipped, an anomaly."
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Replay recorded Realtime event logs: predicted vs observed usage and cost, per response.

    Out-of-band responses are replayed too. An imperfect log (lines that are not events, a
    response without response.done, a log that starts mid-session, audio of unknown length)
    still replays: each anomaly is a note in the report, or, with --strict, an error.
    """
    if output is not None and not fit:
        raise ConfigurationError("--output writes the fitted profile: give it with --fit")
    _output(output, "--output")
    forced = _profile(model, profile) if (model or profile) else None
    prov = _provider(provider)
    events = [read_event_log(path) for path in logs]
    reports = [run_replay(log, forced, prov, follow_session_model=forced is None) for log in events]
    if strict:
        for path, report in zip(logs, reports, strict=True):
            notes = report.note_counts()
            if notes:
                more = f" (and {len(notes) - 1} more)" if len(notes) > 1 else ""
                raise InputFormatError(f"--strict: {notes[0]}{more}", source=str(path))
    result: dict[str, Any] = {"logs": []}
    for path, report in zip(logs, reports, strict=True):
        result["logs"].append({"file": str(path)} | report.to_dict())
    if fit:
        base = forced or reports[0].profile
        if not any(r.compared() for r in reports):
            raise ConfigurationError(
                "--fit: nothing to fit, no response of the logs is compared (see the notes)"
            )
        fitted, error, baseline = fit_profile(events, base, prov)
        result["fit"] = {"baseline_error": baseline, "error": error, "profile": fitted.to_dict()}
        if output is not None:
            with _writing(output, "--output"):
                save_profile(fitted, output)
    if as_json:
        _emit_json(result)
        return
    console = _console()
    for path, report in zip(logs, reports, strict=True):
        _print_replay(console, str(path), report)
    if fit:
        f = result["fit"]
        console.print(f"fit: total absolute error {f['baseline_error']} -> {f['error']}")
        base_dict = (forced or reports[0].profile).to_dict()
        changed = {k: v for k, v in f["profile"].items() if base_dict.get(k) != v}
        console.print("changed: " + (json.dumps(changed) if changed else "nothing"))
        if output is None:
            sys.stdout.write(json.dumps(f["profile"], indent=2) + "\n")
