"""The ``context-manager`` command.

Every command takes ``--json`` and then prints exactly one JSON object on stdout. Errors go
to stderr as one line (``error: ...``) with exit status 2, never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from .budget import BudgetBreakdown, compute_budget
from .errors import ConfigurationError, ContextManagerError, InputFormatError
from .items import read_jsonl
from .profiles import (
    ModelProfile,
    ProviderProfile,
    get_model_profile,
    get_provider_profile,
    load_model_profile,
    load_provider_profile,
    model_names,
    save_profile,
)
from .replay import ReplayReport, fit_profile, iter_rows, read_event_log
from .replay import replay as run_replay
from .server import SessionConfig, Truncation
from .simulate import SimulationResult, simulate_conversation
from .tokens import TokenCounter
from .tools import validate_tools

__all__ = ["app", "main"]

app = typer.Typer(
    name="context-manager",
    help="Model the context window, truncation, prompt cache and cost of OpenAI Realtime sessions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
ModelOption = Annotated[
    str | None, typer.Option("--model", help="A built-in model profile (default gpt-realtime).")
]
ProfileOption = Annotated[
    Path | None, typer.Option("--profile", help="A model profile file (.json or .toml).")
]


def _emit_json(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


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


@app.command()
def budget(
    instructions: Annotated[
        Path, typer.Option("--instructions", help="A text file with the session instructions.")
    ],
    tools: Annotated[
        Path | None,
        typer.Option(
            "--tools", help="A JSON file: the session's tools array (or {'tools': [...]})."
        ),
    ] = None,
    model: ModelOption = None,
    profile: ProfileOption = None,
    post_instructions: Annotated[
        int | None,
        typer.Option(
            "--post-instructions",
            help="truncation.token_limits.post_instructions: the history limit to use.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show how the model's window divides: reserve, instructions, tools, history."""
    prof = _profile(model, profile)
    text, tool_list = _session_files(instructions, tools)
    result = compute_budget(
        prof, instructions=text, tools=tool_list, post_instructions=post_instructions
    )
    if as_json:
        _emit_json(result.to_dict())
    else:
        _print_budget(result)


def _print_budget(b: BudgetBreakdown) -> None:
    table = Table(title=f"Context budget: {b.model}", title_justify="left")
    table.add_column("part")
    table.add_column("tokens", justify="right")
    table.add_column("share", justify="right")

    def row(name: str, value: int) -> None:
        table.add_row(name, f"{value:,}", f"{value / b.context_window:.1%}")

    row("response reserve (max output)", b.max_output_tokens)
    row("instructions", b.instructions_tokens)
    row("tools", b.tools_tokens)
    limit_name = "post_instructions" if b.post_instructions is not None else "input limit"
    row(f"history limit (from {limit_name})", b.history_limit)
    if b.slack_tokens:
        row("unused by the limits", b.slack_tokens)
    table.add_section()
    row("context window", b.context_window)
    console = Console()
    console.print(table)
    used = b.instructions_tokens + b.tools_tokens
    console.print(
        f"instructions + tools: {used:,} of {b.instructions_tools_limit:,}"
        f" ({used / b.instructions_tools_limit:.1%}); input limit {b.input_limit:,}"
    )


@app.command()
def count(
    file: Annotated[Path, typer.Argument(help="A text file, or a conversation .jsonl file.")],
    conversation: Annotated[
        bool,
        typer.Option(
            "--conversation",
            help="Read FILE as conversation JSONL and count its items in context.",
        ),
    ] = False,
    model: ModelOption = None,
    profile: ProfileOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Count the tokens of a file (o200k_base, offline)."""
    prof = _profile(model, profile)
    counter = TokenCounter(prof)
    result: dict[str, Any]
    if conversation:
        items = read_jsonl(file)
        tokens = counter.items(items)
        result = {
            "tokens": tokens.total,
            "encoding": prof.encoding,
            "model": prof.name,
            "items": len(items),
            "text_tokens": tokens.text,
            "audio_tokens": tokens.audio,
            "image_tokens": tokens.image,
        }
    else:
        result = {"tokens": counter.text(_read_text(file, "input")), "encoding": prof.encoding}
    if as_json:
        _emit_json(result)
    else:
        Console().print(
            ", ".join(
                f"{k}: {v:,}" if isinstance(v, int) else f"{k}: {v}" for k, v in result.items()
            )
        )


ProviderOption = Annotated[
    str, typer.Option("--provider", help="A provider name (openai, azure) or a provider file.")
]
InstructionsOption = Annotated[
    Path | None, typer.Option("--instructions", help="A text file with the session instructions.")
]
ToolsOption = Annotated[
    Path | None, typer.Option("--tools", help="A JSON file with the session's tools array.")
]
TruncationOption = Annotated[
    str,
    typer.Option(
        "--truncation",
        help="auto | disabled | retention_ratio:R | retention_ratio:R:POST_INSTRUCTIONS",
    ),
]


@app.command()
def simulate(
    conversation: Annotated[
        Path, typer.Option("--conversation", help="A conversation JSONL file to run.")
    ],
    model: ModelOption = None,
    profile: ProfileOption = None,
    provider: ProviderOption = "openai",
    instructions: InstructionsOption = None,
    tools: ToolsOption = None,
    truncation: TruncationOption = "auto",
    per_response: Annotated[
        bool, typer.Option("--per-response", help="Also list every response.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Run a conversation against the server model: tokens, cache hits, truncation, cost."""
    prof = _profile(model, profile)
    prov = _provider(provider)
    setting = Truncation.parse(truncation)
    text, tool_list = _session_files(instructions, tools)
    items = read_jsonl(conversation)
    config = SessionConfig(instructions=text, tools=tuple(tool_list), truncation=setting)
    result = simulate_conversation(items, prof, prov, config=config)
    if as_json:
        _emit_json(result.to_dict(per_response=per_response))
    else:
        _print_simulation(result, per_response)


def _print_simulation(result: SimulationResult, per_response: bool) -> None:
    console = Console()
    totals = result.totals()
    if per_response:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="Responses", title_justify="left")
        for col in ("#", "t (s)", "input", "cached", "output", "items", "dropped", "USD"):
            table.add_column(col, justify="right")
        for row in result.per_response():
            table.add_row(
                str(row["response"]),
                f"{row['t']:.1f}",
                f"{row['input_tokens']:,}",
                f"{row['cached_tokens']:,}",
                f"{row['output_tokens']:,}",
                str(row["retained_items"]),
                "overflow" if row["overflow"] else str(row["dropped_items"] or ""),
                f"{row['cost_usd']:.5f}",
            )
        console.print(table)
    summary = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        title=f"{totals['model']} on {totals['provider']}, truncation {totals['truncation']}",
        title_justify="left",
    )
    summary.add_column("measure")
    summary.add_column("value", justify="right")
    summary.add_row("responses", f"{totals['responses']:,}")
    summary.add_row("input tokens", f"{totals['input_tokens']:,}")
    summary.add_row("cached tokens", f"{totals['cached_tokens']:,}")
    summary.add_row("cache-hit ratio", f"{totals['cache_hit_ratio']:.1%}")
    summary.add_row("output tokens", f"{totals['output_tokens']:,}")
    summary.add_row(
        "truncations (items dropped)", f"{totals['truncations']} ({totals['dropped_items']})"
    )
    summary.add_row("overflows", str(totals["overflows"]))
    summary.add_row("cost", f"${totals['cost_usd']:.4f}")
    console.print(summary)
    if result.session_expired:
        console.print(
            f"[yellow]the session reached the {result.provider} maximum at"
            f" {result.expired_at:.0f} s; later turns were not run[/yellow]"
        )


@app.command()
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
    as_json: JsonFlag = False,
) -> None:
    """Replay recorded Realtime event logs: predicted vs observed usage, per response."""
    forced = _profile(model, profile) if (model or profile) else None
    prov = _provider(provider)
    events = [read_event_log(path) for path in logs]
    reports = [run_replay(log, forced, prov, follow_session_model=forced is None) for log in events]
    result: dict[str, Any] = {"logs": []}
    for path, report in zip(logs, reports, strict=True):
        result["logs"].append({"file": str(path)} | report.to_dict())
    if fit:
        base = forced or reports[0].profile
        fitted, error, baseline = fit_profile(events, base, prov)
        result["fit"] = {"baseline_error": baseline, "error": error, "profile": fitted.to_dict()}
        if output is not None:
            save_profile(fitted, output)
    if as_json:
        _emit_json(result)
        return
    console = Console()
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


def _print_replay(console: Console, name: str, report: ReplayReport) -> None:
    table = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        title=f"{name} ({report.profile.name})",
        title_justify="left",
    )
    for col in ("s", "#", "status", "input", "text", "audio", "cached", "err"):
        table.add_column(col, justify="right")
    for row in iter_rows(report):
        table.add_row(
            str(row["session"]),
            str(row["response"]),
            row["status"],
            *(
                f"{p:,} / {o:,}"
                for p, o in (row["input"], row["text"], row["audio"], row["cached"])
            ),
            f"{row['error_pct']:+.1f}%",
        )
    console.print(table)
    summary = report.to_dict()
    console.print(
        f"predicted / observed; {summary['compared']} compared: input audio exact"
        f" {summary['input_audio_exact']}, input text within 5%"
        f" {summary['input_text_within_5pct']}, cached exact {summary['cached_exact']}"
    )
    for note in report.notes:
        console.print(f"note: {note}")


@app.command()
def profiles(as_json: JsonFlag = False) -> None:
    """List the built-in model profiles with their limits and prices."""
    rows = [get_model_profile(name) for name in model_names()]
    if as_json:
        _emit_json({"models": [p.to_dict() for p in rows]})
        return
    table = Table(
        title="Model profiles (token limits; USD per 1M tokens)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("model", no_wrap=True)
    for col in ("window", "max out", "input", "$ audio in", "$ audio out"):
        table.add_column(col, justify="right")
    for p in rows:
        pr = p.prices_per_million
        table.add_row(
            p.name,
            f"{p.context_window:,}",
            f"{p.max_output_tokens:,}",
            f"{p.input_limit:,}",
            f"{pr.audio_input:g}",
            f"{pr.audio_output:g}",
        )
    Console().print(table)


def _fail(message: str) -> NoReturn:
    # One line, whatever the message held.
    sys.stderr.write("error: " + " ".join(message.split()) + "\n")
    raise SystemExit(2)


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
