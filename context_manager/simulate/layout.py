"""The vectorized path's arrays: each item's tokens under a profile, and the unit-item layout.

`item_tokens` applies `TokenCounter.item`'s rules to a whole batch; `build_layout` puts every
session's items in request order (`sessions.Units`) with the prefix sums the rank loop and the
figures read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..profiles import ModelProfile
from ..tokens import keeps_assistant_audio
from .sessions import Units
from .workloads import ASSISTANT, CALL, OUTPUT, USER, CallBatch

__all__ = ["ItemTokens", "Layout", "build_layout", "item_tokens", "with_notes"]

I64 = np.int64


@dataclass(slots=True)
class ItemTokens:
    """Token arrays of items under a profile (rows: text, audio; batches hold no images)."""

    kept: np.ndarray  # (2, n) with its audio kept
    demoted: np.ndarray  # (2, n) when an assistant item's audio is not kept
    as_text: np.ndarray  # (n,) total of the item re-sent as text (a rollover seed)
    output: np.ndarray  # (2, n) text, audio as a response's output
    is_aa: np.ndarray  # (n,) assistant audio


def item_tokens(batch: CallBatch, profile: ModelProfile) -> ItemTokens:
    """The token counting rules of `TokenCounter.item`, for arrays of items."""
    kind, ms, n = batch.kind, batch.audio_ms, batch.text_tokens.astype(I64)
    p = profile
    ov = p.item_overhead_tokens
    audio = ms >= 0
    user_audio = (kind == USER) & audio
    assistant_audio = (kind == ASSISTANT) & audio
    function = (kind == CALL) | (kind == OUTPUT)

    # Text in context: text messages and function items as they are; audio items their
    # overheads, plus their transcripts where the profile keeps those in context.
    text = ov + n + np.where(function, p.function_overhead_tokens, 0)
    user_text = ov + p.user_audio_overhead_tokens + (n if p.user_transcript_in_context else 0)
    assistant_text = (
        ov + p.assistant_audio_overhead_tokens + (n if p.assistant_transcript_in_context else 0)
    )
    text = np.where(user_audio, user_text, np.where(assistant_audio, assistant_text, text))
    ratio = ms / np.where(kind == USER, p.audio_input_ms_per_token, p.audio_output_ms_per_token)
    rounded = np.floor(ratio) if p.audio_rounding == "floor" else np.ceil(ratio)
    audio_tokens = np.where(user_audio | assistant_audio, rounded, 0).astype(I64)
    kept = np.stack([text, audio_tokens])
    demoted = np.stack(
        [np.where(assistant_audio, ov + n, text), np.where(assistant_audio, 0, audio_tokens)]
    )
    # Re-sent as text: messages become text messages; function items stay as they are.
    as_text = np.where(function, text, ov + n)
    output = np.stack([n, np.where(assistant_audio, audio_tokens, 0)])
    return ItemTokens(kept, demoted, as_text, output, assistant_audio)


@dataclass(slots=True)
class Layout:
    """The unit-item arrays: every session's items in request order, and prefix sums."""

    kept: np.ndarray  # (2, n): an item with its audio kept (the latest assistant item)
    base: np.ndarray  # (2, n): every other item in a request
    prefix: np.ndarray  # (2, n + 1): prefix sums of `base`
    prefix_total: np.ndarray  # (n + 1,)
    out_prefix: np.ndarray  # (2, n + 1): prefix sums of output text and audio
    last_aa: np.ndarray  # (n,): the latest assistant audio position at or before each one
    next_aa: np.ndarray  # (n + 1,): the first assistant audio position at or after each one
    kept_total: np.ndarray  # (n,)
    base_total: np.ndarray  # (n,)


def with_notes(tok: ItemTokens, notes: np.ndarray) -> ItemTokens:
    """`tok` and, after its items, text items of `notes` tokens (seeds' carried summaries)."""
    if not len(notes):
        return tok
    zeros = np.zeros(len(notes), dtype=I64)
    text = np.stack([notes.astype(I64), zeros])
    return ItemTokens(
        np.concatenate([tok.kept, text], axis=1),
        np.concatenate([tok.demoted, text], axis=1),
        np.concatenate([tok.as_text, notes.astype(I64)]),
        np.concatenate([tok.output, np.zeros((2, len(notes)), dtype=I64)], axis=1),
        np.concatenate([tok.is_aa, np.zeros(len(notes), dtype=bool)]),
    )


def build_layout(tok: ItemTokens, units: Units, mode: str) -> Layout:
    """The unit-item arrays of `units` under the assistant-audio `mode`."""
    # Every item's form in a request, but for the latest assistant item under "latest": with
    # "all" each assistant item keeps its audio, with "none" or "latest" it does not.
    base_src = tok.kept if keeps_assistant_audio(mode, is_latest_assistant=False) else tok.demoted
    if units.identity:  # no session rolled over: the batch's own order, nothing to gather
        kept, base, is_aa, out = tok.kept, base_src, tok.is_aa, tok.output
    else:
        src, seeded = units.src, units.seeded
        kept = tok.kept[:, src]
        base = base_src[:, src]
        kept[:, seeded] = 0
        kept[0, seeded] = tok.as_text[src[seeded]]
        base[:, seeded] = kept[:, seeded]
        is_aa = tok.is_aa[src] & ~seeded
        out = tok.output[:, src]
        out[:, seeded] = 0
    n = kept.shape[1]
    prefix = np.zeros((2, n + 1), dtype=I64)
    np.cumsum(base, axis=1, out=prefix[:, 1:])
    out_prefix = np.zeros((2, n + 1), dtype=I64)
    np.cumsum(out, axis=1, out=out_prefix[:, 1:])
    positions = np.arange(n, dtype=I64)
    last_aa = np.maximum.accumulate(np.where(is_aa, positions, -1)) if n else positions
    nxt = np.full(n + 1, n, dtype=I64)
    if n:
        nxt[:n] = np.minimum.accumulate(np.where(is_aa, positions, n)[::-1])[::-1]
    return Layout(
        kept, base, prefix, prefix[0] + prefix[1], out_prefix, last_aa, nxt,
        kept[0] + kept[1], base[0] + base[1],
    )  # fmt: skip
