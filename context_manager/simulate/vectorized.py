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

Client compaction runs in the same loop (`compacting`, `summarizing`); seeds that carry a
summary or a ledger depend on the session before them, so those calls are run in passes, each
settling one more session's seed (the summaries already made are kept).

The property tests ``tests/simulate/test_paths_agree.py`` (and ``..._texts.py``, calls from
files) check that both paths give identical per-response figures on random workloads and
policies. What this path does not cover, it hands back: a call whose conversation overflows
(``disabled`` truncation over the limit, or one item larger than the limit), whose items could
share cache keys (repeated texts in a resampled batch, or a window beginning at a repeated
transcript's text form), whose seed would hold a user turn with no transcript, or whose
sessions could match each other's items under an organization-wide cache in ways the arrays do
not follow, is run on the reference path instead (`VectorResult.fallback`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..budget import compute_budget
from ..compaction.strategies import LEDGER_PREFIX, SUMMARY_PREFIX, CompactionStrategy
from ..compaction.summarizers import ExtractiveSummarizer
from ..errors import ConfigurationError
from ..items import FunctionCall, FunctionCallOutput, Message
from ..profiles import ModelProfile, ProviderProfile, get_provider_profile
from ..rollover import DEFAULT_ROLLOVER, RolloverPolicy, is_unheard
from ..server import SessionConfig
from ..server.pricing import seed_cost
from ..tokens import TokenCounter, keeps_assistant_audio
from .compacting import (
    ConvertRule,
    RankCompaction,
    Rule,
    SummaryRule,
    rank_compaction,
    vector_rule,
)
from .extractive import Summary, filler_stats, from_text
from .held import held_items
from .layout import Layout, build_layout, item_tokens, with_notes
from .ranks import Windows, advance
from .sessions import Carried, Units, plan_sessions, prefix_sums
from .summarizing import Fronts, carried_seeds, final_texts
from .workloads import CallBatch

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
    final: list[list[str]] | None = None
    """With `final`: per call, the texts its last session holds at the end that can hold a
    planted fact (summaries, ledgers, notes, statements), in order, with ``""`` where filler
    items lie between them (for `facts.fact_presence`); for calls from files, every item's."""
    held: list[list[int | str]] | None = None
    """With `held`: per call, its last session's items at the end (`held.held_items`)."""


def simulate_batch(
    batch: CallBatch,
    profile: ModelProfile,
    provider: ProviderProfile | str = "openai",
    *,
    config: SessionConfig | None = None,
    rollover: RolloverPolicy | None = DEFAULT_ROLLOVER,
    keep_responses: bool = False,
    compaction: CompactionStrategy | None = None,
    final: bool = False,
    held: bool = False,
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
        final: also return what each call's last session holds that can hold a fact
            (`VectorResult.final`; calls from files: every item's text).
        held: also return each call's last session's items at the end (`VectorResult.held`).

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
    shared = profile.cache.scope == "organization"
    mode = profile.assistant_audio_in_context
    latest_only = keeps_assistant_audio(
        mode, is_latest_assistant=True
    ) and not keeps_assistant_audio(mode, is_latest_assistant=False)
    generated = batch.source_items is None
    rule, summarizing = _rules(compaction, rollover, budget.history_limit)
    tok = item_tokens(batch, profile)
    counter = TokenCounter(profile)
    # Filler arrays for a generated batch's summaries (given calls' items are read as they are).
    summaries = isinstance(rule, SummaryRule) or summarizing
    stats = filler_stats(batch) if generated and summaries else None
    # Summaries made, kept with the batch: another strategy often folds the same items.
    memo: dict[Any, Summary] = batch.derived.setdefault("summaries", {})
    # Calls from files: what the hand-back checks read of their items (once per batch).
    given = batch.derived.get("given") or batch.derived.setdefault("given", _Given.of(batch))
    seeds: Carried = {}
    notes: dict[tuple[int, int], str] = {}
    # A seed that carries a summary depends on the session before it: each pass settles the
    # seeds of one more session of every call (summaries already made are kept in `memo`).
    while True:
        units = plan_sessions(batch, tok.as_text, provider.max_session_seconds, rollover,
                              shared, seeds)  # fmt: skip
        fallback = units.fallback | _shared_keys(batch, given, units, isinstance(rule, ConvertRule))
        full_tok = with_notes(tok, units.notes)
        lay = build_layout(full_tok, units, mode)

        # Responses, unit by unit, in order: request end, output end, time.
        r_unit, e, o, now = units.responses
        n_units = len(units.start)
        r_offsets = np.searchsorted(r_unit, np.arange(n_units + 1), side="left").astype(I64)
        rank = np.arange(len(r_unit), dtype=I64) - r_offsets[r_unit]
        unit_first = units.start[r_unit]
        lat = lay.last_aa[np.maximum(e - 1, 0)] if len(e) else e
        lat = np.where(latest_only & (e > unit_first) & (lat >= unit_first), lat, -1)
        by_src = {len(batch.kind) + j: notes[key] for j, key in enumerate(units.note_keys)}
        rc = rank_compaction(batch, units, lay, full_tok, rule, latest_only, o, now,
                             profile.cache.ttl_seconds, counter, shared, stats, by_src,
                             memo)  # fmt: skip

        # 1. Truncation (and compaction), the one sequential part: where each request's
        # retained window starts, and (converting) up to where it holds text forms.
        win = advance(lay, r_offsets, e, lat, unit_first, budget.history_limit, config, rc)
        if not summarizing or rollover is None:
            break
        fronts = rc.fronts if rc is not None else None
        memory = fronts.final() if fronts is not None else {}
        settled, carried, clashes = carried_seeds(batch, stats, memo, units, memory, rollover,
                                                  counter, fronts, shared)  # fmt: skip
        fallback[sorted(clashes)] = True
        if settled == seeds and carried == notes:
            break
        seeds, notes = settled, carried
    if rc is not None and rc.fronts is not None:
        fallback[sorted(rc.fronts.clashes)] = True
    if given is not None and len(r_unit):
        fronts = rc.fronts if rc is not None else None
        fallback |= _restarts(batch, given, units, r_unit, win, by_src, fronts, shared)
    s, dropped, compactions, cc, lat = (win.start, win.dropped, win.compactions, win.converted,
                                        win.latest)  # fmt: skip
    if win.overflow.any():
        fallback[units.call[r_unit[win.overflow]]] = True
    if cc is not None and shared and len(r_unit):
        fallback[_converted_seed_heads(units, r_unit, s, cc)] = True

    # 2. Everything else, for all responses at once.
    head = budget.preamble_tokens + budget.instructions_tokens + budget.tools_tokens
    fig = _figures(lay, profile, head, r_unit, rank, e, o, now, lat, s, units, cc, rc, win)
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
            "retained_items": e - s + win.front_items, "dropped_items": dropped,
            "cost_usd": cost_text + cost_audio + cost_image,
        }  # fmt: skip
        responses = {name: np.asarray(v)[keep] for name, v in columns.items()}
    fronts = rc.fronts if rc is not None else None
    texts = None
    if final:
        words = stats if stats is not None or not generated else filler_stats(batch)
        texts = final_texts(batch, words, units, win, r_offsets, notes, fronts)
    windows = held_items(batch, units, win, r_offsets, notes, fronts) if held else None
    return VectorResult(calls, totals, responses, sorted(int(c) for c in np.flatnonzero(fallback)),
                        texts, windows)  # fmt: skip


def _rules(compaction: CompactionStrategy | None, rollover: RolloverPolicy | None,
           limit: int) -> tuple[Rule | None, bool]:  # fmt: skip
    """The compaction's rule, and whether seeds summarize.

    Summaries are extractive: a generated call's made on its filler arrays, a given call's by
    the summarizer itself.

    Raises:
        ConfigurationError: a compaction or a seed the arrays cannot run.
    """
    rule = None
    if compaction is not None:
        rule = vector_rule(compaction, limit)
        if rule is None:
            raise ConfigurationError(f"the vectorized path cannot run {compaction.name}")
    summarizing = rollover is not None and (
        rollover.carry != "recent" or isinstance(rule, SummaryRule))  # fmt: skip
    if rollover is not None and summarizing and rollover.carry != "ledger" and type(
            rollover.summarizer) not in (type(None), ExtractiveSummarizer):  # fmt: skip
        raise ConfigurationError("the vectorized path summarizes seeds extractively only")
    return rule, summarizing


def _figures(
    lay: Layout,
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
    win: Windows | None = None,
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
    if win is not None:
        inputs[0] += win.front  # the summary item, first after the instructions and tools

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
    if win is not None:
        # The window's items match only after the previous request's own summary item.
        same &= shifted(win.front_id) == win.front_id
    m_end = np.where(same, np.maximum(m_end, s), s)
    before = units.head_last_used[r_unit]
    head_live = np.where(has_prev, live, org & (now - before < ttl))
    in_lm = same & (s <= lat) & (lat < m_end) & (lat >= 0)
    matched = window(s, m_end) + np.where(in_lm, extra, 0)
    matched[0] += np.where(head_live, head, 0)
    if win is not None:
        matched[0] += win.front_matched
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


def _converted_seed_heads(units: Units, r_unit: np.ndarray, s: np.ndarray,
                          cc: np.ndarray) -> np.ndarray:  # fmt: skip
    """Calls a new session of which may match converted items of the session before.

    Under an organization-wide cache a seed's text forms are the same cache keys as the
    items the session before converted: when a request of that session began its window
    at the seed's first item, already converted, the new session can match past the
    instructions. Rare; such calls go to the reference path.
    """
    seed_head = np.full(len(units.call), -1, dtype=I64)  # per unit: its seed's first item
    later = np.flatnonzero(units.index > 0)
    seeded = units.seeded[np.minimum(units.start[later], len(units.seeded) - 1)]
    seed_head[later[seeded]] = units.src[units.start[later[seeded]]]
    nxt = np.minimum(r_unit + 1, len(units.call) - 1)
    follows = (r_unit + 1 < len(units.call)) & (units.index[nxt] > 0)
    hit = follows & (cc > s) & (units.src[s] == seed_head[nxt])
    out: np.ndarray = np.unique(units.call[r_unit[hit]])
    return out


@dataclass(frozen=True, slots=True)
class _Given:
    """What the hand-back checks read of given calls' items (calls from files), found once."""

    repeats: np.ndarray  # per call: a text item repeats, or a system item has a memory's id
    unconverted: np.ndarray  # per call: an audio message `AudioToText` converts unlike the arrays
    unheard: np.ndarray  # per item: a user audio turn with no transcript (`is_unheard`)
    text_keys: np.ndarray  # per item: its text form's cache key (equal keys, equal ids)

    @classmethod
    def of(cls, batch: CallBatch) -> _Given | None:
        """The checks' view of `batch` (``None``: generated, every item distinct)."""
        if batch.source_items is None:
            return None
        repeats, unconverted, unheard = [], [], []
        ids: dict[Any, int] = {}
        keys: list[int] = []  # one Python pass over every item: no NumPy scalar in it
        for items in batch.source_items:
            seen: set[int] = set()
            repeat = odd = False
            for item in items:
                if isinstance(item, Message):
                    key = ids.setdefault(("m", item.role, item.text, item.images), len(ids))
                    if item.role == "system":
                        repeat |= (item.id or "").startswith(_MEMORY)
                    if item.audio_ms is not None:
                        if not item.text.strip() or item.role == "system":  # rare
                            # `AudioToText` leaves an item with no transcript; the arrays
                            # convert user and assistant items only.
                            odd |= not item.text or item.role == "system"
                            if is_unheard(item):
                                unheard.append(len(keys))
                        keys.append(key)
                        continue  # audio is unique to its item (its text forms: `_restarts`)
                elif isinstance(item, FunctionCall):
                    key = ids.setdefault(("c", item.name, item.call_id, item.arguments), len(ids))
                elif isinstance(item, FunctionCallOutput):
                    key = ids.setdefault(("o", item.call_id, item.output), len(ids))
                else:  # pragma: no cover
                    raise ConfigurationError(f"unknown item {type(item).__name__}")
                keys.append(key)
                repeat |= key in seen
                seen.add(key)
            repeats.append(repeat)
            unconverted.append(odd)
        silent = np.zeros(len(keys), dtype=bool)
        silent[unheard] = True
        return cls(np.array(repeats, dtype=bool), np.array(unconverted, dtype=bool), silent,
                   np.array(keys, dtype=I64))  # fmt: skip


_MEMORY = (SUMMARY_PREFIX, LEDGER_PREFIX)


def _shared_keys(batch: CallBatch, given: _Given | None, units: Units,
                 converting: bool) -> np.ndarray:  # fmt: skip
    """Calls of given items the arrays cannot follow exactly (generated calls have none).

    * A text item that repeats: equal cache keys the arrays cannot tell apart.
    * A system message whose id the strategies and the rollover read as their own summary's.
    * `converting`: an audio message the strategy leaves as it is (no transcript) or converts
      where the arrays do not (a system one).
    * A user audio turn with no transcript in a seed, or in the turn before it: a seed leaves
      it out (it costs nothing), and a summarized seed's recent turns end at it; the arrays
      do neither.
    """
    if given is None:
        return np.zeros(len(batch), dtype=bool)
    out = given.repeats | given.unconverted if converting else given.repeats.copy()
    later = np.flatnonzero(units.index > 0)
    if not len(later) or not given.unheard.any():
        return out
    # Each later session's seed: from its first seeded item (none: its boundary) to its
    # boundary; and the turn before that, which a seed without the silent turn might hold.
    first = units.boundary.copy()
    seeded = np.flatnonzero(units.seeded & (units.src < len(batch.kind)))
    np.minimum.at(first, np.searchsorted(units.start, seeded, side="right") - 1,
                  units.src[seeded])  # fmt: skip
    assert units.turns is not None
    starts = units.turns.ts_pos
    before = np.searchsorted(starts, first[later], side="left") - 1
    call_first = batch.offsets[units.call[later]]
    lo = np.where(before >= 0, np.maximum(starts[np.maximum(before, 0)], call_first), call_first)
    silent = prefix_sums(given.unheard.astype(I64))
    out[units.call[later[silent[units.boundary[later]] > silent[lo]]]] = True
    return out


def _restarts(batch: CallBatch, given: _Given, units: Units, r_unit: np.ndarray,
              win: Windows, notes: dict[int, str], fronts: Fronts | None,
              shared: bool) -> np.ndarray:  # fmt: skip
    """Calls of given items where a window began at two items with equal cache keys.

    A request whose window begins at a new item matches, on the arrays, no more than its
    front: on the server it matches an earlier path of its scope that began with the same
    lead (its front items, and a seed's note first in its window) and then an equal item (a
    text form, as seeded or converted, of a repeated transcript). Such calls go to the
    reference path.
    """
    out = np.zeros(len(batch), dtype=bool)
    s, n = win.start, len(batch.kind)
    lead = units.src[np.minimum(s, len(units.src) - 1)]
    lead = np.where((s < units.end[r_unit]) & (lead >= n), lead, -1)  # a note first
    pos = s + (lead >= 0)
    own = pos < units.end[r_unit]
    pos, unit, lead, fid = pos[own], r_unit[own], lead[own], win.front_id[own]
    item = units.src[pos]
    # Each lead's id: equal keys (front items' idents, then the note's), equal ids.
    idents = fronts.idents() if fronts is not None else {}
    pairs, which = np.unique(np.stack([fid, lead]), axis=1, return_inverse=True)
    ids: dict[tuple[Any, ...], int] = {}
    lead_id = np.array([
        ids.setdefault(idents.get(f, ()) + ((from_text(notes[x]).ident,) if x >= 0 else ()),
                       len(ids))
        for f, x in pairs.T.tolist()
    ], dtype=I64)[which.ravel()]  # fmt: skip
    text = (batch.audio_ms[np.minimum(item, n - 1)] < 0) | units.seeded[pos]
    if win.converted is not None:
        text |= pos < win.converted[own]
    # Audio is unique to its item: its key is the item's own.
    key = np.where(text, given.text_keys[np.minimum(item, n - 1)], len(given.text_keys) + item)
    scope = units.call[unit] if shared else unit
    begun = np.unique(np.stack([scope, lead_id, key, unit, item]), axis=1)  # each once
    _, first, count = np.unique(begun[:3], axis=1, return_index=True, return_counts=True)
    out[units.call[begun[3, first[count > 1]]]] = True
    return out
