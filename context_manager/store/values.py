"""The values the store accepts, checked before the database sees them.

SQLite and PostgreSQL disagree about bad values: SQLite stores a 300-character string in a
``VARCHAR(64)``, an integer of any size in an ``INTEGER`` column and a NaN cost; PostgreSQL
refuses the first two, stores the third, and cannot hold a NUL character in a string at all.
So the store checks every value itself, with one rule for both:

* a string column takes a `str` of at most the column's length (in characters), valid Unicode
  (no lone surrogates) and without NUL characters;
* an integer column takes an `int` (not a `bool`) within PostgreSQL's ``INTEGER``
  (-2,147,483,648 .. 2,147,483,647), the narrower of the two, and counts are at least 0;
* a cost is a finite number, at least 0;
* a time is a `datetime`; one with a time zone is stored as UTC, a naive one as given;
* an item's content is its JSON record (`items.item_to_dict`), where every string is escaped:
  any text, NUL characters and lone surrogates included, is stored and read back unchanged (a
  NaN or infinite number is already null there).

A refused value raises `StoreError` (reason ``invalid``) naming the field and the rule, never
the value: it may be conversation text.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String

from ..errors import StoreError

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "check_cost",
    "check_int",
    "check_text",
    "check_time",
    "column_length",
]

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
"""The range of an ``INTEGER`` column on PostgreSQL (SQLite's is wider): every integer column's."""


def column_length(column: Any) -> int | None:
    """The length of a string column (``None`` for unbounded text)."""
    kind = getattr(column, "type", None)
    return kind.length if isinstance(kind, String) else None


def _invalid(field: str, rule: str) -> StoreError:
    return StoreError(f"{field} {rule}", reason="invalid")


def check_text(field: str, value: object, limit: int | None) -> str:
    """`value` if it is a string a column of `limit` characters can hold on both databases."""
    if not isinstance(value, str):
        raise _invalid(field, f"must be a string, not {type(value).__name__}")
    if limit is not None and len(value) > limit:
        raise _invalid(field, f"is {len(value):,} characters long; at most {limit:,} fit")
    if "\x00" in value:
        raise _invalid(field, "contains a NUL character, which PostgreSQL cannot store")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _invalid(field, "is not valid Unicode (a lone surrogate)") from None
    return value


def check_int(field: str, value: object, *, minimum: int = INT_MIN) -> int:
    """`value` if it is an integer an ``INTEGER`` column holds on both databases."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(field, f"must be an integer, not {type(value).__name__}")
    if not minimum <= value <= INT_MAX:
        raise _invalid(field, f"is out of range: it must be within {minimum:,} .. {INT_MAX:,}")
    return value


def check_cost(field: str, value: object) -> float:
    """`value` as a float if it is a finite number at least 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(field, f"must be a number, not {type(value).__name__}")
    cost = float(value)
    if not math.isfinite(cost):
        raise _invalid(field, f"must be finite, not {cost}")
    if cost < 0:
        raise _invalid(field, "must be at least 0")
    return cost


def check_time(field: str, value: object) -> datetime:
    """`value` as a naive UTC datetime (the columns hold no time zone)."""
    if not isinstance(value, datetime):
        raise _invalid(field, f"must be a datetime, not {type(value).__name__}")
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value
