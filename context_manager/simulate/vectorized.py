"""The vectorized path: many calls at once with NumPy, giving the reference path's figures.

The reference path (`simulate_call`) runs `ServerModel` one response at a time. This path
runs a whole `CallBatch` at once: the calls' items become flat arrays of token counts, the
rollovers and seeds are found for every call together, and then one loop over the response
rank advances every server session at once, each step a few array operations over all
sessions. It applies the same rules, written for arrays:

* tokens per item from the profile (overheads, audio rounding, transcript switches, the
  assistant-audio rule: with ``latest`` only the newest assistant audio item of a request is
  counted with its audio);
* truncation by prefix sums and a binary search for the first retained item;
* the prompt cache: within a session a request's longest live prefix is the previous
  response's stored path (request plus output), which breaks where the retained window moved
  or where an assistant item lost its audio; a new session can match only the instructions and
  tools, while they are live (``scope = "organization"``);
* block rounding, the minimum prefix, the positional modality split, and the price rule.

The property test ``tests/simulate/test_paths_agree.py`` checks that both paths give identical
per-response figures on random workloads and policies. What this path does not cover, it
hands back: a call whose conversation overflows (``disabled`` truncation over the limit, or one
item larger than the limit), or whose items could share cache keys (repeated texts in a
resampled batch), is run on the reference path instead (`VectorResult.fallback`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..budget import compute_budget
from ..compaction.strategies import CompactionStrategy
from ..errors import ConfigurationError
from ..items import FunctionCall, FunctionCallOutput, Message
from ..profiles import ModelProfile, ProviderProfile, get_provider_profile
from ..rollover import DEFAULT_ROLLOVER, RolloverPolicy
from ..server import SessionConfig
from ..server.pricing import seed_cost
from ..tokens import keeps_assistant_audio
from .compacting import ConvertRule, RankCompaction, Rule, vector_rule
from .sessions import Units, plan_sessions
from .workloads import ASSISTANT, CALL, OUTPUT, USER, CallBatch

__all__ = ["RESPONSE_FIELDS", "VectorResult", "simulate_batch"]


I64 = np.int64

RESPONSE_FIELDS = (
    "call", "session", "t", "input_text", "input_audio", "input_image", "cached_text",
    "cached_audio", "cached_image", "output_text", "output_audio", "retained_items",
    "dropped_items", "cost_usd",
)  # fmt: skip
"""Columns of the per-response records (`VectorResult.responses`)."""

# Per-call totals accumulated by the loop.
_TOTALS = (
    "responses", "input_tokens", "cached_tokens", "output_tokens", "truncations",
    "dropped_items", "cost_text", "cost_audio", "cost_image",
)  # fmt: skip


@dataclass(slots=True)
class VectorResult:
    """Per-call totals of a batch (and, when asked, every response)."""

    calls: int
    totals: dict[str, np.ndarray]
    """Per-call arrays: responses, tokens, truncations, dropped items, cost by modality,
    sessions, rollovers, rollover seed tokens and cost."""
    responses: dict[str, np.ndarray] | None = None
    """Per-response columns (`RESPONSE_FIELDS`), in call order then time order."""
    fallback: list[int] = field(default_factory=list)
    """Calls this path could not run exactly; their totals are zero here (see the module)."""


# ------------------------------------------------------------------------- tokens per item


@dataclass(slots=True)
class _ItemTokens:
    """Token arrays of items under a profile (rows: text, audio; batches hold no images)."""

    kept: np.ndarray  # (2, n) with its audio kept
    demoted: np.ndarray  # (2, n) when an assistant item's audio is not kept
    as_text: np.ndarray  # (n,) total of the item re-sent as text (a rollover seed)
    output: np.ndarray  # (2, n) text, audio as a response's output
    is_aa: np.ndarray  # (n,) assistant audio


def item_tokens(batch: CallBatch, profile: ModelProfile) -> _ItemTokens:
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
    return _ItemTokens(kept, demoted, as_text, output, assistant_audio)


# ------------------------------------------------------------------------- helpers


@dataclass(slots=True)
class _Layout:
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


def _layout(tok: _ItemTokens, units: Units, mode: str) -> _Layout:
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
    return _Layout(
        kept, base, prefix, prefix[0] + prefix[1], out_prefix, last_aa, nxt,
        kept[0] + kept[1], base[0] + base[1],
    )  # fmt: skip


def simulate_batch(
    batch: CallBatch,
    profile: ModelProfile,
    provider: ProviderProfile | str = "openai",
    *,
    config: SessionConfig | None = None,
    rollover: RolloverPolicy | None = DEFAULT_ROLLOVER,
    keep_responses: bool = False,
    compaction: CompactionStrategy | None = None,
) -> VectorResult:
    """Simulate every call of `batch` at once (see the module docstring).

    Args:
        batch: the calls.
        profile: the model profile.
        provider: the provider (its maximum session duration ends sessions).
        config: instructions, tools and truncation of every session.
        rollover: how a new session is seeded; ``None`` ends a call at its first limit.
        keep_responses: also return every response's figures.
        compaction: a client strategy the arrays run (`compacting.vector_rule`).

    Raises:
        ConfigurationError: a `compaction` the arrays cannot run.
    """
    provider = get_provider_profile(provider) if isinstance(provider, str) else provider
    config = config or SessionConfig()
    budget = compute_budget(
        profile,
        instructions=config.instructions,
        tools=config.tools,
        post_instructions=config.truncation.post_instructions,
    )
    calls = len(batch)
    tok = item_tokens(batch, profile)
    shared = profile.cache.scope == "organization"
    units = plan_sessions(batch, tok.as_text, provider.max_session_seconds, rollover, shared)
    fallback = units.fallback | _shared_keys(batch)
    mode = profile.assistant_audio_in_context
    lay = _layout(tok, units, mode)

    # Responses, unit by unit, in order: request end, output end, time.
    r_unit, e, o, now = units.responses
    n_units = len(units.start)
    r_offsets = np.searchsorted(r_unit, np.arange(n_units + 1), side="left").astype(I64)
    rank = np.arange(len(r_unit), dtype=I64) - r_offsets[r_unit]
    unit_first = units.start[r_unit]
    latest_only = keeps_assistant_audio(
        mode, is_latest_assistant=True
    ) and not keeps_assistant_audio(mode, is_latest_assistant=False)
    lat = lay.last_aa[np.maximum(e - 1, 0)] if len(e) else e
    lat = np.where(latest_only & (e > unit_first) & (lat >= unit_first), lat, -1)

    rule = None
    if compaction is not None:
        rule = vector_rule(compaction, budget.history_limit)
        if rule is None:
            raise ConfigurationError(f"the vectorized path cannot run {compaction.name}")
    rc = _rank_compaction(batch, units, lay, tok, rule, latest_only, o, now,
                          profile.cache.ttl_seconds)  # fmt: skip
    if isinstance(rule, ConvertRule) and batch.source_items is not None:
        fallback[:] = True  # a file's audio may lack a transcript (then it is not converted)

    # 1. Truncation (and compaction), the one sequential part: where each request's retained
    # window starts, and (converting) up to where it holds text forms.
    s, dropped, overflow, compactions, cc, lat = _truncate(
        lay, r_offsets, e, lat, unit_first, budget.history_limit, config, rc
    )
    if overflow.any():
        fallback[units.call[r_unit[overflow]]] = True

    # 2. Everything else, for all responses at once.
    head = budget.preamble_tokens + budget.instructions_tokens + budget.tools_tokens
    fig = _figures(lay, profile, head, r_unit, rank, e, o, now, lat, s, units, cc, rc)
    cost_text, cost_audio = fig["cost"]
    cost_image = np.zeros(len(e))
    sums = {
        "responses": np.ones(len(r_unit), dtype=I64),
        "input_tokens": fig["input"].sum(axis=0),
        "cached_tokens": fig["cached"].sum(axis=0),
        "output_tokens": fig["output"].sum(axis=0),
        "truncations": (dropped > 0).astype(I64),
        "dropped_items": dropped,
        "compactions": compactions,
        "cost_text": cost_text,
        "cost_audio": cost_audio,
        "cost_image": cost_image,
        # By modality, for the cost split (text and audio; batches hold no images).
        "input_text": fig["input"][0],
        "input_audio": fig["input"][1],
        "cached_text": fig["cached"][0],
        "cached_audio": fig["cached"][1],
        "output_text": fig["output"][0],
        "output_audio": fig["output"][1],
    }
    call_of_response = units.call[r_unit]
    # Responses come in call order: each call's are one contiguous run.
    starts = np.searchsorted(call_of_response, np.arange(calls), side="left")
    has = np.bincount(call_of_response, minlength=calls) > 0
    totals: dict[str, np.ndarray] = {}
    for name, values in sums.items():
        summed = np.zeros(calls, dtype=values.dtype)
        if len(values):
            summed[has] = np.add.reduceat(values, starts[has])
        totals[name] = summed
    totals["sessions"] = np.bincount(units.call, minlength=calls).astype(I64)
    totals["rollovers"] = np.maximum(totals["sessions"] - 1, 0)
    seed = np.bincount(units.call, weights=units.seed_tokens, minlength=calls)
    totals["rollover_seed_tokens"] = np.rint(seed).astype(I64)
    totals["rollover_cost"] = seed_cost(totals["rollover_seed_tokens"], profile.prices_per_million)
    totals["session_expired"] = units.expired.astype(I64)
    for name in totals:
        totals[name][fallback] = 0
    responses = None
    if keep_responses:
        keep = ~fallback[call_of_response]
        columns = {
            "call": call_of_response, "session": units.index[r_unit], "t": now,
            "input_text": fig["input"][0], "input_audio": fig["input"][1],
            "input_image": np.zeros(len(e), dtype=I64), "cached_text": fig["cached"][0],
            "cached_audio": fig["cached"][1], "cached_image": np.zeros(len(e), dtype=I64),
            "output_text": fig["output"][0], "output_audio": fig["output"][1],
            "retained_items": e - s, "dropped_items": dropped,
            "cost_usd": cost_text + cost_audio + cost_image,
        }  # fmt: skip
        responses = {name: np.asarray(v)[keep] for name, v in columns.items()}
    return VectorResult(calls, totals, responses, sorted(int(c) for c in np.flatnonzero(fallback)))


def _rank_compaction(batch: CallBatch, units: Units, lay: _Layout, tok: _ItemTokens,
                     rule: Rule | None, latest_only: bool, o: np.ndarray, now: np.ndarray,
                     ttl: float) -> RankCompaction | None:  # fmt: skip
    """The arrays a compaction in the rank loop reads (`compacting.RankCompaction`)."""
    if rule is None:
        return None
    kind = batch.kind if units.identity else batch.kind[units.src]
    src = np.arange(len(kind), dtype=I64) if units.identity else units.src
    seeded = np.zeros(len(kind), dtype=bool) if units.identity else units.seeded
    is_user = kind == USER
    n = len(is_user)
    # A turn starts at a user item after a non-user one; a window's first item always
    # begins one for drop-oldest (what is left of a turn the server cut counts as a turn).
    inner = is_user & ~np.concatenate([[False], is_user[:-1]]) if n else is_user
    positions = np.arange(n, dtype=I64)
    next_turn = np.full(n + 1, n, dtype=I64)
    prev_turn = np.full(max(n, 1), -1, dtype=I64)
    audio = ((kind == USER) | (kind == ASSISTANT)) & (batch.audio_ms[src] >= 0) & ~seeded
    next_audio = np.full(n + 1, n, dtype=I64)
    if n:
        next_turn[:n] = np.minimum.accumulate(np.where(inner, positions, n)[::-1])[::-1]
        prev_turn = np.maximum.accumulate(np.where(inner, positions, -1))
        next_audio[:n] = np.minimum.accumulate(np.where(audio, positions, n)[::-1])[::-1]
    ptx = np.zeros(n + 1, dtype=I64)
    np.cumsum(tok.as_text[src], out=ptx[1:])
    return RankCompaction(
        rule, lay.prefix_total, ptx, next_turn, prev_turn, np.flatnonzero(inner), is_user,
        next_audio, lay.last_aa, lay.kept_total - lay.base_total, latest_only, o, now, ttl,
    )  # fmt: skip


def _truncate(
    lay: _Layout,
    r_offsets: np.ndarray,
    e: np.ndarray,
    lat: np.ndarray,
    unit_first: np.ndarray,
    limit: int,
    config: SessionConfig,
    rc: RankCompaction | None = None,
) -> tuple[Any, ...]:
    """Each request's first retained position, the items it dropped, overflows, compactions.

    One step per response rank, all sessions at once: the retained window of a session
    depends on where its previous request (and a compaction after it) left it. Under a
    converting strategy also each request's conversion end (items before it in text form;
    ``None`` otherwise) and its latest assistant audio item still with its audio.
    """
    tr = config.truncation
    disabled = tr.mode == "disabled"
    target = math.floor(tr.retention_ratio * limit)
    pt = lay.prefix_total
    converting = rc is not None and isinstance(rc.rule, ConvertRule)
    ptx = rc.ptx if rc is not None else pt
    lat_safe = np.maximum(lat, 0)
    # What the latest assistant item adds when it keeps its audio.
    adj = np.where(lat >= 0, lay.kept_total[lat_safe] - lay.base_total[lat_safe], 0)
    last = np.maximum(e - 1, 0)
    newest = np.where(last == lat, lay.kept_total[last], lay.base_total[last])
    s_out = np.empty(len(e), dtype=I64)
    cc_out = np.empty(len(e), dtype=I64) if converting else None
    lat_out = lat.copy() if converting else lat
    dropped = np.zeros(len(e), dtype=I64)
    overflow = np.zeros(len(e), dtype=bool)
    compactions = np.zeros(len(e), dtype=I64)
    per_unit = np.diff(r_offsets)
    order = np.argsort(-per_unit, kind="stable")  # units with more responses first
    counts = per_unit[order]
    first_r = r_offsets[:-1][order]
    start = unit_first[np.minimum(first_r, max(len(e) - 1, 0))] if len(e) else first_r
    conv = start.copy()  # converting: each session's conversion end (nothing converted yet)
    for rank in range(int(counts[0]) if len(counts) else 0):
        k = int(np.searchsorted(-counts, -rank, side="left"))  # the units with > rank responses
        r = first_r[:k] + rank
        ss, cv = start[:k], conv[:k]
        ee, ll = e[r], lat[r]
        if rc is not None:  # a cold request: the strategy is asked first
            cold = rc.cold(r, rank)
            if cold.any():
                still = np.where(ll >= np.maximum(cv, ss), ll, -1)
                ss, cv, fired = rc.ask(ss, cv, ee, still, adj[r], cold, cold)
                compactions[r[fired]] += 1
        cc = np.maximum(cv, ss)
        ll = np.where(ll >= cc, ll, -1)  # gone, or converted: no audio kept
        with_l = ll >= 0
        total = pt[ee] - pt[cc] + ptx[cc] - ptx[ss] + np.where(with_l, adj[r], 0)
        over = total > limit
        if over.any():
            bad = over & (disabled | ((newest[r] > limit) & (ee > ss)))
            overflow[r[bad]] = True
            cut = np.flatnonzero(over & ~bad)
            if len(cut):
                ce, cs, cl, ca, ck = ee[cut], ss[cut], ll[cut], adj[r[cut]], cc[cut]
                # The first position whose suffix fits the target, with the latest item kept...
                low = np.maximum(cs, ck)
                cand_a = np.maximum(np.searchsorted(pt, pt[ce] + ca - target, side="left"), low)
                # ... or, past it, without.
                cand_b = np.searchsorted(pt, pt[ce] - target, side="left")
                cand_b = np.maximum(cand_b, np.maximum(low, cl + 1))
                first = np.where((cl >= low) & (cand_a <= cl), cand_a, cand_b)
                if converting:  # the converted items' suffix fits: the cut is among them
                    rest = pt[ce] - pt[ck] + np.where(cl >= 0, ca, 0)
                    fits = rest <= target
                    in_text = np.searchsorted(ptx, ptx[ck] + rest - target, side="left")
                    first = np.where(fits, np.maximum(in_text, cs), first)
                new = np.minimum(first, ce - 1)  # never the newest item
                dropped[r[cut]] = new - cs
                ss = ss.copy()
                ss[cut] = new
        s_out[r] = ss
        if converting:
            assert cc_out is not None
            cc = np.maximum(cv, ss)
            cc_out[r] = cc
            lat_out[r] = np.where(ll >= ss, ll, -1)
        if rc is not None:  # after the response, its output in
            oo = rc.out_end[r]
            la = rc.last_aa[np.maximum(oo - 1, 0)]
            la = np.where(rc.latest_only & (la >= np.maximum(cv, ss)), la, -1)
            add = rc.adj_total[np.maximum(la, 0)]
            warm = np.zeros(len(r), dtype=bool)
            ss, cv, fired = rc.ask(ss, cv, oo, la, add, warm, np.ones(len(r), dtype=bool))
            compactions[r[fired]] += 1
        start[:k] = ss
        conv[:k] = cv
    return s_out, dropped, overflow, compactions, cc_out, lat_out


def _figures(
    lay: _Layout,
    profile: ModelProfile,
    head: int,
    r_unit: np.ndarray,
    rank: np.ndarray,
    e: np.ndarray,
    o: np.ndarray,
    now: np.ndarray,
    lat: np.ndarray,
    s: np.ndarray,
    units: Units,
    cc: np.ndarray | None = None,
    rc: RankCompaction | None = None,
) -> dict[str, Any]:
    """Input, cached and output tokens and cost of every response, from the windows `s`.

    With `cc` (a converting strategy) the items of a window before `cc` count in their text
    form.
    """
    cache = profile.cache
    block, minimum, ttl = cache.block_tokens, cache.min_prefix_tokens, cache.ttl_seconds
    overhead = profile.response_overhead_tokens
    path_ends_at_request = overhead > 0 or not cache.include_output
    latest_only = profile.assistant_audio_in_context == "latest"
    org = cache.scope == "organization"
    p = lay.prefix
    lat_safe = np.maximum(lat, 0)
    extra = np.where(lat >= 0, lay.kept[:, lat_safe] - lay.base[:, lat_safe], 0)  # (2, R)

    ptx = rc.ptx if rc is not None and cc is not None else None

    def window(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Tokens by modality of positions [a, b), those before `cc` in text form."""
        if ptx is None or cc is None:
            out: np.ndarray = p[:, b] - p[:, a]
            return out
        c = np.clip(cc, a, b)
        mixed: np.ndarray = p[:, b] - p[:, c]
        mixed[0] += ptx[c] - ptx[a]
        return mixed

    # Input: instructions and tools, the retained items, the response's priming.
    in_l = (s <= lat) & (lat >= 0)
    inputs = window(s, e) + np.where(in_l, extra, 0)
    inputs[0] += head + overhead

    # The previous response of the same session: its stored path is the longest live prefix.
    has_prev = rank > 0

    def shifted(values: np.ndarray) -> np.ndarray:  # the row before (responses are in order)
        return np.concatenate([values[:1], values[:-1]])

    prev_s, prev_l, prev_e, prev_o, prev_t = (shifted(v) for v in (s, lat, e, o, now))
    live = has_prev & (now - prev_t < ttl)
    same = live & (prev_s == s)
    m_end = np.minimum(prev_e if path_ends_at_request else prev_o, e)
    if latest_only:
        moved = (prev_l >= 0) & (prev_l != lat) & (prev_l >= s)
        m_end = np.where(moved, np.minimum(m_end, prev_l), m_end)
        if not path_ends_at_request:
            x = lay.next_aa[prev_e]
            m_end = np.where((x < prev_o) & (x < lat), np.minimum(m_end, x), m_end)
    if cc is not None and rc is not None:
        # Items converted since the previous request changed there: the match ends at the first.
        prev_c = shifted(cc)
        changed = rc.next_audio[np.maximum(prev_c, s)]
        m_end = np.where((cc > prev_c) & (changed < cc), np.minimum(m_end, changed), m_end)
    m_end = np.where(same, np.maximum(m_end, s), s)
    before = units.head_last_used[r_unit]
    head_live = np.where(has_prev, live, org & (now - before < ttl))
    in_lm = same & (s <= lat) & (lat < m_end) & (lat >= 0)
    matched = window(s, m_end) + np.where(in_lm, extra, 0)
    matched[0] += np.where(head_live, head, 0)
    matched_total = matched.sum(axis=0)
    cached_total = matched_total - matched_total % block
    cached_total = np.where(cached_total < minimum, 0, cached_total)
    cached = np.where(cached_total > 0, matched, 0)
    excess = np.where(cached_total > 0, matched_total - cached_total, 0)
    # Trim the excess from the end: the last matched item's image, audio, text, and back.
    todo = np.flatnonzero(excess > 0)
    pos = m_end[todo] - 1
    while len(todo):
        inside = pos >= s[todo]
        rest = todo[~inside]
        cached[0, rest] -= excess[rest]  # what is left comes off the instructions and tools
        excess[rest] = 0
        todo, pos = todo[inside], pos[inside]
        if not len(todo):
            break
        keep_audio = pos == lat[todo]
        as_text = pos < cc[todo] if cc is not None and rc is not None else None
        for m in (1, 0):  # audio, then text (batches hold no images)
            have = np.where(keep_audio, lay.kept[m, pos], lay.base[m, pos])
            if as_text is not None and rc is not None:
                text_form = rc.ptx[pos + 1] - rc.ptx[pos] if m == 0 else 0
                have = np.where(as_text, text_form, have)
            take = np.minimum(excess[todo], have)
            cached[m, todo] -= take
            excess[todo] -= take
        left = excess[todo] > 0
        todo, pos = todo[left], pos[left] - 1

    outputs = lay.out_prefix[:, o] - lay.out_prefix[:, e]
    outputs[0] += profile.reasoning_output_tokens  # billed as output text, never in context
    pr = profile.prices_per_million
    fresh = inputs - cached
    # The price rule of `server.price`, term for term, so the floats come out the same.
    cost_text = fresh[0] * pr.text_input + cached[0] * pr.text_cached
    cost_text = (cost_text + outputs[0] * pr.text_output) / 1e6
    cost_audio = fresh[1] * pr.audio_input + cached[1] * pr.audio_cached
    cost_audio = (cost_audio + outputs[1] * pr.audio_output) / 1e6
    return {"input": inputs, "cached": cached, "output": outputs, "cost": (cost_text, cost_audio)}


# ------------------------------------------------------------------------- sessions


def _shared_keys(batch: CallBatch) -> np.ndarray:
    """Calls whose text items repeat (equal cache keys the arrays cannot tell apart)."""
    out = np.zeros(len(batch), dtype=bool)
    if batch.source_items is None:
        return out  # generated: every item is distinct (audio, or unique call ids)
    for c, items in enumerate(batch.source_items):
        seen: set[Any] = set()
        for item in items:
            if isinstance(item, Message) and item.audio_ms is not None:
                continue
            if isinstance(item, Message):
                key: Any = ("m", item.role, item.text, item.images)
            elif isinstance(item, FunctionCall):
                key = ("c", item.name, item.call_id, item.arguments)
            elif isinstance(item, FunctionCallOutput):
                key = ("o", item.call_id, item.output)
            else:  # pragma: no cover
                raise ConfigurationError(f"unknown item {item!r}")
            if key in seen:
                out[c] = True
                break
            seen.add(key)
    return out
