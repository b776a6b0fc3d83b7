"""Batches of calls given as items (from files) rather than generated.

`batch_from_items` holds them verbatim; `resample_files` draws new calls from their turns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ..errors import ConfigurationError
from ..items import FunctionCall, FunctionCallOutput, Item, Message, turn_starts
from .workloads import ASSISTANT, CALL, OUTPUT, SYSTEM, USER, CallBatch, WorkloadSpec

__all__ = ["batch_from_items", "resample_files"]


def batch_from_items(
    calls: Sequence[Sequence[Item]],
    spec: WorkloadSpec | None = None,
    tokens: Sequence[Sequence[int] | None] | None = None,
) -> CallBatch:
    """A batch holding given calls verbatim (their numbers counted from the items).

    Items without a time get the one the reference path gives them (`item_times`), written
    into the items, so both paths see the same times. `tokens`, per call, are its items'
    text tokens when already known (``None``: counted here): a message's text, a function
    call's name and arguments, a tool's output, in gpt-realtime's encoding.
    """
    from ..profiles import get_model_profile
    from ..tokens import TokenCounter
    from .reference import item_times

    counter = TokenCounter(get_model_profile("gpt-realtime"))
    kinds: list[int] = []
    ms: list[int] = []
    counts: list[int] = []
    times: list[float] = []
    offsets = [0]
    held: list[tuple[Item, ...]] = []
    roles = {"user": USER, "assistant": ASSISTANT, "system": SYSTEM}
    for n, call in enumerate(calls):
        timed = [i if i.t == t else replace(i, t=t)
                 for i, t in zip(call, item_times(call), strict=True)]  # fmt: skip
        held.append(tuple(timed))
        known = tokens[n] if tokens is not None else None
        counts.extend(known if known is not None else [_text_tokens(counter, i) for i in timed])
        for item in timed:
            if isinstance(item, Message):
                kinds.append(roles[item.role])
                ms.append(item.audio_ms if item.audio_ms is not None else -1)
            else:
                kinds.append(CALL if isinstance(item, FunctionCall) else OUTPUT)
                ms.append(-1)
            times.append(float(item.t or 0.0))
        offsets.append(len(kinds))
        if len(counts) != len(kinds):
            raise ConfigurationError(
                f"call {n} has {len(timed)} items but {len(known or ())} token counts"
            )
    return CallBatch(
        spec or WorkloadSpec(name="files"),
        np.array(offsets, dtype=np.int64),
        np.array(kinds, dtype=np.int8),
        np.array(ms, dtype=np.int64),
        np.array(counts, dtype=np.int64),
        np.array(times, dtype=np.float64),
        np.zeros(len(calls), dtype=np.int64),
        source_items=tuple(held),
    )


def _text_tokens(counter: Any, item: Item) -> int:
    """What a batch counts of an item: its text, a call's name and arguments, an output."""
    if isinstance(item, Message):
        return int(counter.text(item.text))
    if isinstance(item, FunctionCall):
        return int(counter.text(item.name) + counter.text(item.arguments))
    assert isinstance(item, FunctionCallOutput)
    return int(counter.text(item.output))


def resample_files(
    conversations: Sequence[Sequence[Item]], calls: int, minutes: float, rng: np.random.Generator
) -> CallBatch:
    """Calls of `minutes` made of turns drawn (with replacement) from given conversations.

    A turn runs from a user item to the next turn's first user item. Each drawn turn keeps its
    inner timing and starts where the previous one ended, plus a second.
    """
    from .reference import item_times

    pool: list[list[Item]] = []
    for conversation in conversations:
        timed = [
            replace(i, t=t) for i, t in zip(conversation, item_times(conversation), strict=True)
        ]
        starts = turn_starts(timed)
        ends = [*starts[1:], len(timed)] if starts else []
        for a, b in zip(starts, ends, strict=True):
            pool.append(timed[a:b])
    if not pool:
        raise ConfigurationError(
            "the conversation files hold no turn (a turn starts with a user item)"
        )
    horizon = minutes * 60.0
    out: list[list[Item]] = []
    for _ in range(calls):
        clock = 0.0
        call: list[Item] = []
        while clock < horizon:
            turn = pool[int(rng.integers(0, len(pool)))]
            base = turn[0].t or 0.0
            last = turn[-1]
            duration = ((last.t or base) - base) + (
                (last.audio_ms or 0) / 1000 if isinstance(last, Message) else 0.0
            )
            if clock + duration >= horizon:
                break
            call.extend(
                replace(i, t=round(clock + ((i.t or base) - base), 6), id=None) for i in turn
            )
            clock += duration + 1.0
        out.append(call)
    return batch_from_items(out, WorkloadSpec(name="files", minutes=minutes))
