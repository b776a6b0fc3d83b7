"""Commands that look at a session without running it: ``budget``, ``count``, ``profiles``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from ..budget import compute_budget
from ..profiles import get_model_profile, model_names
from ..tokens import TokenCounter
from .options import (
    JsonFlag,
    ModelOption,
    ProfileOption,
    _conversation,
    _profile,
    _read_text,
    _session_files,
)
from .render import _console, _emit_json, _print_budget

__all__ = ["budget", "count", "profiles"]


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
        items = _conversation(file)
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
        _console().print(
            ", ".join(
                f"{k}: {v:,}" if isinstance(v, int) else f"{k}: {v}" for k, v in result.items()
            )
        )


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
    _console().print(table)
