"""The fake server's refusals: a client event it rejects becomes an ``error`` event.

The codes and messages are the real server's (``missing_required_parameter``,
``invalid_value``, ...), plus ``unsupported_by_fake`` for what the fake does not model. The
checks here refuse a client field the way the real server does (with a `_Reject`).

>>> missing("item").message
"Missing required parameter: 'item'."
>>> invalid("item.role", "bot", "expected system, user or assistant").code
'invalid_value'
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from ..errors import ServerModelError

# `_Reject` stays private to the package: every public error class is in context_manager.errors.
__all__ = ["b64decode", "invalid", "missing", "required_text", "server_param"]


class _Reject(Exception):
    """A client event the server refuses: becomes an ``error`` event; nothing changes."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param


def missing(param: str) -> _Reject:
    """The refusal of an event that lacks `param` (``missing_required_parameter``)."""
    return _Reject("missing_required_parameter", f"Missing required parameter: '{param}'.", param)


def invalid(param: str, value: object, expected: str) -> _Reject:
    """The refusal of `value` for `param`, saying what was `expected` (``invalid_value``)."""
    return _Reject("invalid_value", f"Invalid value for '{param}': {value!r}; {expected}.", param)


def server_param(exc: ServerModelError) -> str | None:
    """The ``param`` of the error event a `ServerModelError` stands for, if it names one."""
    error = exc.event.get("error")
    param = error.get("param") if isinstance(error, dict) else None
    return param if isinstance(param, str) else None


def required_text(obj: Mapping[str, Any], key: str, where: str = "item") -> str:
    """``obj[key]``, which must be a string (else the event misses ``where.key``)."""
    value = obj.get(key)
    if not isinstance(value, str):
        raise missing(f"{where}.{key}")
    return value


def b64decode(data: object, param: str) -> bytes:
    r"""The bytes of base64 audio `data` (strictly base64, as the real server wants it).

    >>> b64decode("AAAA", "audio")
    b'\x00\x00\x00'
    """
    if not isinstance(data, str):
        raise missing(param)
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise _Reject("invalid_value", f"Invalid base64 audio in '{param}'.", param) from None
