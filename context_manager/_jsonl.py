"""Reading JSON Lines: one object a line, errors with the line number."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from .errors import InputFormatError

__all__ = ["json_objects"]


def json_objects(
    lines: Iterable[str], *, source: str | None
) -> Iterator[tuple[int, dict[str, Any]]]:
    r"""Each non-blank line's object, with its 1-based line number.

    Split text on ``"\n"`` only (as iterating a file does), not with ``str.splitlines``, which
    also splits on characters such as U+0085 that JSON strings may hold unescaped.

    Raises:
        InputFormatError: a line is not JSON (or nested beyond Python's recursion limit), or
            not a JSON object.
    """
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputFormatError(
                f"not valid JSON: {exc.msg} (column {exc.colno})", source=source, line=number
            ) from exc
        except RecursionError:
            raise InputFormatError("JSON nested too deeply", source=source, line=number) from None
        if not isinstance(data, dict):
            raise InputFormatError(
                f"each line must be a JSON object, got {type(data).__name__}",
                source=source,
                line=number,
            )
        yield number, data
