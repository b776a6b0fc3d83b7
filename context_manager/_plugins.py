"""Loading a user's own object by name: ``module:attribute``, or an installed entry point.

A researcher's strategy need not live in this package: ``--strategies my_lab.keep:KeepFacts``
imports ``my_lab.keep`` and takes ``KeepFacts``; an installed package can register a name in an
entry-point group (``context_manager.compaction`` for compaction strategies,
``context_manager.bench_strategies`` for benchmark strategies) and be run by that name.
"""

from __future__ import annotations

import importlib
import re
from importlib.metadata import entry_points
from typing import Any

from .errors import ConfigurationError

__all__ = ["is_reference", "load_object"]

_REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def is_reference(text: str) -> bool:
    """Whether `text` has the shape ``module:attribute`` (dotted names both sides)."""
    return bool(_REFERENCE.match(text.strip()))


def load_object(text: str, group: str) -> Any | None:
    """The object ``module:attribute`` names, or the entry point `text` in `group`.

    Returns ``None`` when `text` is neither (a built-in name, say).

    Raises:
        ConfigurationError: the module cannot be imported or has no such attribute (one line,
            naming both), or the entry point fails to load.
    """
    text = text.strip()
    if is_reference(text):
        module_name, _, attribute = text.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
        except Exception as exc:  # a user's module may fail in any way at import
            raise ConfigurationError(
                f"cannot import {module_name!r} for {text!r}: {type(exc).__name__}: {exc}"
            ) from None
        for part in attribute.split("."):
            if not hasattr(target, part):
                raise ConfigurationError(f"{module_name!r} has no attribute {attribute!r}")
            target = getattr(target, part)
        return target
    for point in entry_points(group=group):
        if point.name == text:
            try:
                return point.load()
            except Exception as exc:
                raise ConfigurationError(
                    f"entry point {text!r} ({group}) failed to load: {type(exc).__name__}: {exc}"
                ) from None
    return None
