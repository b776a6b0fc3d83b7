"""Workloads: seeded batches of synthetic (or resampled) voice calls.

A workload draws calls from a generative model of a voice conversation, with an injected
``numpy.random.Generator`` (no global random state). A call is a run of turns, each a user
utterance, optionally a tool call and its JSON output, and the assistant's spoken answer:

* utterance lengths are log-normal (median and spread per speaker), clipped to
  [0.4 s, 60 s] for the user and [0.6 s, 60 s] for the assistant;
* the assistant starts ``response_latency_s`` after the user stops (after the tool's output
  when it calls one, which takes ``tool_latency_s``); the user answers after an exponential
  pause of mean ``user_pause_s``;
* a transcript has round(seconds x words per second x tokens per word) tokens (at least one);
* an assistant turn calls a tool with probability ``tool_call_rate``; argument and output
  sizes are log-normal in tokens;
* turns continue while the response would start before the call's length.

The defaults are assumptions, not measurements: conversational English runs about 150 words a
minute (2.5 a second) and o200k_base spends about 1.3 tokens on an English word; a telephone
agent answers in under a second; the turn-length medians give a caller speaking about a third
of the time, the agent about half. Every parameter can be set. The numbers of a batch (token
counts, durations, times) are generated as NumPy arrays, so the vectorized path never
tokenizes; `CallBatch.items` writes a call out as items whose texts have exactly those token
counts, for the reference path.

Calls can carry planted facts (`FactSpec`): a statement said in a user turn at a chosen point
of the call, with the strings whose presence shows it survived compaction, and for updated
values the stale string that should be gone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from functools import cache, partial
from typing import Any, Literal

import numpy as np

from ..errors import ConfigurationError
from ..items import FunctionCall, FunctionCallOutput, Item, Message
from ..tokens import get_encoding
from .limits import MOST_MINUTES, check_size
from .texts import compose, filler_count, filler_counts, vocabulary

__all__ = [
    "DEFAULT_FACTS",
    "WORKLOADS",
    "CallBatch",
    "FactKind",
    "FactSpec",
    "PlantedFact",
    "WorkloadSpec",
    "generate",
    "workload",
]

# Item kinds in a batch.
USER, ASSISTANT, CALL, OUTPUT, SYSTEM = 0, 1, 2, 3, 4

FactKind = Literal[
    "name", "code", "preference", "constraint", "decision", "open_task", "updated", "entity_role"
]


@dataclass(frozen=True, slots=True)
class FactSpec:
    """A fact to plant: its kind, when it is said, and the value pools it draws from.

    Attributes:
        kind: the fact type.
        at: when it is said, as a fraction of the call (0 = first turn).
        template: the statement, with ``{value}`` (and, for ``updated``, ``{old}``).
        values: values to draw from; one is chosen per call.
        update_at: for ``updated``: when the new value is said (fraction of the call).
        update_template: for ``updated``: the correcting statement, with ``{value}``.
    """

    kind: FactKind
    at: float
    template: str
    values: tuple[str, ...]
    update_at: float | None = None
    update_template: str | None = None


@dataclass(frozen=True, slots=True)
class PlantedFact:
    """A fact as planted in one call (or, for an external benchmark, one question's answer)."""

    kind: str
    """A `FactKind` for planted facts; an external benchmark's own question category."""
    item: int
    """Index (in the call) of the user item that says it (the correction, for ``updated``)."""
    statement: str
    probes: tuple[str, ...]
    """Strings that show the fact survived."""
    stale: tuple[str, ...] = ()
    """Strings that should no longer be believed (the old value of an update)."""


# fmt: off
DEFAULT_FACTS: tuple[FactSpec, ...] = (
    FactSpec("name", 0.02, "Hi, this is {value}.",
             ("Priya Raman", "Tomasz Nowak", "Amara Okafor", "Lucía Fernández",
              "Kenji Watanabe")),
    FactSpec("code", 0.05, "My booking reference is {value}.",
             ("QX-4471", "K7QX2P", "seven four two nine alpha", "BR 5512 ZK", "M9-Tango-33")),
    FactSpec("preference", 0.08, "I always prefer {value}.",
             ("an aisle seat near the front", "morning departures", "the vegetarian meal",
              "a quiet room")),
    FactSpec("constraint", 0.12, "Whatever we do, I cannot {value}.",
             ("fly before ten in the morning", "spend more than six hundred euros",
              "connect through Frankfurt")),
    FactSpec("decision", 0.2, "Okay, let's go with {value}.",
             ("the Tuesday option", "the refundable fare", "the later train",
              "the hotel by the station")),
    FactSpec("open_task", 0.25, "Please remember to {value} before we finish.",
             ("send the invoice to finance", "book a taxi for Friday", "email me the receipt")),
    FactSpec("updated", 0.1, "My phone number is {old}.",
             ("555 0142", "0171 889 2210", "+44 7700 900123", "212 555 0188"),
             update_at=0.5, update_template="Sorry, my number changed: it is now {value}."),
    FactSpec("entity_role", 0.15, "{value} is my travel manager, so copy them on everything.",
             ("Dana Whitfield", "Omar Haddad", "Li Wei", "Sofia Conti")),
)
# fmt: on
"""One fact of each kind, early in the call, with varied surface forms."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadSpec:
    """The parameters of a workload (see the module docstring for the model)."""

    name: str = "voice-agent"
    minutes: float = 60.0
    """Length of each call."""
    user_turn_s: float = 3.5
    """Median length of a user utterance (log-normal)."""
    user_turn_sigma: float = 0.6
    assistant_turn_s: float = 5.0
    """Median length of an assistant answer (log-normal)."""
    assistant_turn_sigma: float = 0.5
    response_latency_s: float = 0.8
    """From the end of the user's speech (or the tool's output) to the assistant's answer."""
    user_pause_s: float = 1.2
    """Mean pause before the user speaks again (exponential)."""
    words_per_second: float = 2.5
    tokens_per_word: float = 1.3
    tool_call_rate: float = 0.1
    """Probability that an answer starts with a tool call."""
    tool_latency_s: float = 0.4
    tool_argument_tokens: float = 24.0
    """Median tokens of a call's JSON arguments (log-normal, sigma 0.5, at least 8)."""
    tool_output_tokens: float = 150.0
    """Median tokens of a tool's JSON output (log-normal, at least 8)."""
    tool_output_sigma: float = 0.7
    hold_rate: float = 0.0
    """Probability that the caller is put on hold after a turn (the line goes quiet)."""
    hold_s: float = 360.0
    """Length of a hold (longer than a cached prefix lives, by default)."""
    facts: tuple[FactSpec, ...] = ()
    """Facts to plant in every call."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            number = isinstance(value, float | int) and not isinstance(value, bool)
            if number and (not math.isfinite(value) or value < 0):
                raise ConfigurationError(
                    f"workload {f.name} must be a finite number >= 0, got {value}"
                )
        for rate in ("tool_call_rate", "hold_rate"):
            if not 0.0 <= getattr(self, rate) <= 1.0:
                raise ConfigurationError(f"{rate} must be in [0, 1], got {getattr(self, rate)}")
        for name in ("minutes", "user_turn_s", "assistant_turn_s"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"workload {name} must be > 0, got {getattr(self, name)}")
        if self.minutes > MOST_MINUTES:
            raise ConfigurationError(
                f"workload minutes must be at most {MOST_MINUTES:,} (a week), got {self.minutes:g}"
            )

    def with_(self, **changes: Any) -> WorkloadSpec:
        """A copy with some parameters changed (unknown names are an error)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ConfigurationError(
                f"unknown workload parameter(s) {', '.join(unknown)};"
                f" known: {', '.join(sorted(known))}"
            )
        return replace(self, **changes)


WORKLOADS: dict[str, WorkloadSpec] = {
    "voice-agent": WorkloadSpec(),
    "support-call": WorkloadSpec(
        name="support-call", user_turn_s=6.0, user_turn_sigma=0.7, assistant_turn_s=7.0,
        tool_call_rate=0.2, tool_output_tokens=250.0, user_pause_s=1.5,
    ),
    "tool-heavy": WorkloadSpec(
        name="tool-heavy", tool_call_rate=0.6, tool_argument_tokens=40.0, tool_output_tokens=400.0,
        tool_output_sigma=0.8,
    ),
}  # fmt: skip
"""The built-in workloads."""


def workload(name: str, **changes: Any) -> WorkloadSpec:
    """A built-in workload by name, with parameters changed.

    Raises:
        ConfigurationError: an unknown name or parameter.
    """
    if name not in WORKLOADS:
        raise ConfigurationError(
            f"unknown workload {name!r}; known: {', '.join(sorted(WORKLOADS))}"
        )
    return WORKLOADS[name].with_(**changes)


# ------------------------------------------------------------------------- batches


@dataclass(frozen=True)
class CallBatch:
    """Calls as flat NumPy arrays (one entry per item), with offsets per call.

    Item kinds: 0 user message, 1 assistant message, 2 function call, 3 function call output,
    4 system message.
    ``audio_ms`` is -1 for a text item; ``text_tokens`` is the transcript's, text's, or (for a
    function call) name's plus arguments' tokens.
    """

    spec: WorkloadSpec
    offsets: np.ndarray
    kind: np.ndarray
    audio_ms: np.ndarray
    text_tokens: np.ndarray
    t: np.ndarray
    text_seed: np.ndarray
    facts: tuple[tuple[PlantedFact, ...], ...] = ()
    source_items: tuple[tuple[Item, ...], ...] | None = field(default=None, repr=False)
    """For batches resampled from files: each call's items, to write them out verbatim."""
    derived: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """What runs read of the items, kept for the next run of the same batch (a cache)."""

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def call_slice(self, call: int) -> slice:
        """The call's items in the flat arrays."""
        return slice(int(self.offsets[call]), int(self.offsets[call + 1]))

    def items(self, call: int) -> list[Item]:
        """The call as items, each text exactly as many tokens as the batch says."""
        if self.source_items is not None:
            return list(self.source_items[call])
        span = self.call_slice(call)
        drawn, counts = self.filler_draw(call)
        spelled = _spelled()[drawn].tolist()  # one pass over the words, as a list
        ends = np.cumsum(counts).tolist()
        facts = {f.item: f.statement for f in (self.facts[call] if self.facts else ())}
        out: list[Item] = []
        call_ids = 0
        for n, (kind, ms, t) in enumerate(
            zip(self.kind[span], self.audio_ms[span], self.t[span], strict=True)
        ):
            when = float(t)
            audio = int(ms) if ms >= 0 else None
            said = spelled[ends[n] - int(counts[n]) : ends[n]]
            if kind == USER:
                text = compose(said, lead=facts.get(n, ""))
                out.append(Message(role="user", text=text, audio_ms=audio, t=when))
            elif kind == ASSISTANT:
                out.append(Message(role="assistant", text=compose(said), audio_ms=audio, t=when))
            elif kind == CALL:
                call_ids += 1
                out.append(
                    FunctionCall(
                        name=_TOOL_NAME,
                        call_id=f"call_{call}_{call_ids}",
                        arguments=compose(said, wrap=_FRAMES[CALL]),
                        t=when,
                    )
                )
            else:
                output = compose(said, wrap=_FRAMES[OUTPUT])
                out.append(
                    FunctionCallOutput(call_id=f"call_{call}_{call_ids}", output=output, t=when)
                )
        return out

    def filler(self, call: int) -> list[np.ndarray]:
        """Each item's filler words (indices into `texts.vocabulary`), drawn at once per call.

        Item texts are `texts.compose` of these words around the item's lead or frame.
        """
        drawn, counts = self.filler_draw(call)
        return np.split(drawn, np.cumsum(counts)[:-1]) if len(counts) else []

    def filler_draw(self, call: int) -> tuple[np.ndarray, np.ndarray]:
        """The call's filler words, all items' in a row, and how many each item has."""
        span = self.call_slice(call)
        facts = {f.item: f.statement for f in (self.facts[call] if self.facts else ())}
        kind, tokens = self.kind[span], self.text_tokens[span]
        counts = np.empty(len(kind), dtype=np.int64)
        # Most texts hold filler only (or a frame): their counts follow from arrays.
        plain = (kind == USER) | (kind == ASSISTANT)
        counts[plain] = tokens[plain]
        for k, size in ((CALL, tokens - _name_tokens()), (OUTPUT, tokens)):
            framed = kind == k
            if framed.any():
                counts[framed] = filler_counts(size[framed], _FRAMES[k])
        for n, lead in facts.items():
            counts[n] = filler_count(int(tokens[n]), lead)
        rng = np.random.default_rng(int(self.text_seed[call]))
        drawn = rng.integers(0, len(vocabulary()), size=int(counts.sum()), dtype=np.uint8)
        return drawn, counts


@cache
def _spelled() -> np.ndarray:
    """`texts.vocabulary` as an array of objects, so a draw is spelled by one look-up."""
    return np.array(vocabulary(), dtype=object)


_TOOL_NAME = "search_flights"
_FRAMES = {CALL: ('{"query": "', '"}'), OUTPUT: ('{"results": "', '"}')}


@cache
def _name_tokens() -> int:
    return len(get_encoding().encode_ordinary(_TOOL_NAME))


_TOOL_NAME = "search_flights"


def _lognormal(rng: np.random.Generator, median: float, sigma: float, size: Any) -> np.ndarray:
    return np.asarray(rng.lognormal(math.log(median), sigma, size=size))


_Draws = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _draw(spec: WorkloadSpec, calls: int, turns: int, rng: np.random.Generator) -> _Draws:
    shape = (calls, turns)
    user_s = np.clip(_lognormal(rng, spec.user_turn_s, spec.user_turn_sigma, shape), 0.4, 60.0)
    assistant_s = np.clip(
        _lognormal(rng, spec.assistant_turn_s, spec.assistant_turn_sigma, shape), 0.6, 60.0
    )
    pause = (
        rng.exponential(spec.user_pause_s, size=shape) if spec.user_pause_s > 0 else np.zeros(shape)
    )
    if spec.hold_rate > 0:  # drawn only when asked, so runs without holds keep their numbers
        pause = pause + np.where(rng.random(shape) < spec.hold_rate, spec.hold_s, 0.0)
    tool = rng.random(shape) < spec.tool_call_rate
    args = np.maximum(np.rint(_lognormal(rng, spec.tool_argument_tokens, 0.5, shape)), 8)
    outputs = np.maximum(
        np.rint(_lognormal(rng, spec.tool_output_tokens, spec.tool_output_sigma, shape)), 8
    )
    return user_s, assistant_s, pause, tool, args.astype(np.int64), outputs.astype(np.int64)


def _reaches(draws: _Draws, spec: WorkloadSpec, horizon: float) -> np.ndarray:
    """Whether each call's drawn turns run past its length (else more turns are needed)."""
    user_s, assistant_s, pause, tool, _, _ = draws
    span = user_s + assistant_s + pause + spec.response_latency_s
    span = span + np.where(tool, spec.tool_latency_s + spec.response_latency_s, 0.0)
    return np.asarray(span.sum(axis=1) > horizon + 120.0)


_LAYOUT_CELLS = 100_000
"""Turn slots (calls x turns) laid out as items at once by `generate`."""


def _layout(spec: WorkloadSpec, draws: _Draws, horizon: float) -> tuple[np.ndarray, ...]:
    """Drawn turns as items: per-call item counts, then kind, audio, tokens and times."""
    user_s, assistant_s, pause, tool, args, outputs = draws
    calls, turns = user_s.shape
    shape = (calls, turns)
    user_ms = (user_s * 1000).astype(np.int64)
    assistant_ms = (assistant_s * 1000).astype(np.int64)
    tool_gap = np.where(tool, spec.tool_latency_s + spec.response_latency_s, 0.0)
    # A turn's span: user speech, latency (and the tool), assistant speech, the pause after.
    span = user_ms / 1000 + spec.response_latency_s + tool_gap + assistant_ms / 1000 + pause
    user_start = np.concatenate([np.zeros((calls, 1)), np.cumsum(span, axis=1)[:, :-1]], axis=1)
    call_t = user_start + user_ms / 1000 + spec.response_latency_s
    output_t = call_t + spec.tool_latency_s
    answer_t = call_t + tool_gap
    keep = answer_t < horizon  # a turn counts if its response starts within the call

    rate = spec.words_per_second * spec.tokens_per_word
    user_tokens = np.maximum(np.rint(user_ms / 1000 * rate), 1).astype(np.int64)
    assistant_tokens = np.maximum(np.rint(assistant_ms / 1000 * rate), 1).astype(np.int64)
    name_tokens = len(get_encoding().encode_ordinary(_TOOL_NAME))

    # Four slots per turn (user, call, output, answer); unused slots are masked out.
    slot_kind = np.broadcast_to(np.array([USER, CALL, OUTPUT, ASSISTANT]), (calls, turns, 4))
    present = np.stack([keep, keep & tool, keep & tool, keep], axis=2)
    slot_ms = np.stack([user_ms, np.full(shape, -1), np.full(shape, -1), assistant_ms], axis=2)
    slot_tokens = np.stack([user_tokens, args + name_tokens, outputs, assistant_tokens], axis=2)
    slot_t = np.stack([user_start, call_t, output_t, answer_t], axis=2)
    mask = present.reshape(calls, -1)
    flat = mask.ravel()
    kind = slot_kind.reshape(calls, -1).ravel()[flat].astype(np.int8)
    audio_ms = slot_ms.reshape(calls, -1).ravel()[flat].astype(np.int64)
    text_tokens = slot_tokens.reshape(calls, -1).ravel()[flat].astype(np.int64)
    # Times to the microsecond, so the written-out items carry exactly the batch's times.
    t = np.round(slot_t.reshape(calls, -1).ravel()[flat].astype(np.float64), 6)
    return mask.sum(axis=1), kind, audio_ms, text_tokens, t


def generate(spec: WorkloadSpec, calls: int, rng: np.random.Generator) -> CallBatch:
    """Draw `calls` calls of `spec` (vectorized; the same `rng` state gives the same batch)."""
    if calls < 0:
        raise ConfigurationError(f"calls must be >= 0, got {calls}")
    horizon = spec.minutes * 60.0
    mean_turn = (
        spec.user_turn_s + spec.assistant_turn_s + spec.response_latency_s + spec.user_pause_s
    )
    turns = int(horizon / max(mean_turn, 0.5) * 1.3) + 16  # a margin; grown below if short
    while True:
        check_size(calls, turns)
        draws = _draw(spec, calls, turns, rng)
        if calls == 0 or _reaches(draws, spec, horizon).all():
            break
        turns *= 2  # some call did not reach its length: draw again with room to spare
    text_seed = rng.integers(0, 2**63 - 1, size=calls)
    # The draws are laid out as items a block of calls at a time, so the per-slot temporaries
    # stay small however long the calls are.
    block = max(1, _LAYOUT_CELLS // max(turns, 1))
    parts = [_layout(spec, tuple(d[a : a + block] for d in draws), horizon)  # type: ignore[arg-type]
             for a in range(0, calls, block)]  # fmt: skip
    counts = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    kind, audio_ms, text_tokens, t = (
        np.concatenate([p[k] for p in parts]) if parts else np.zeros(0, dtype=dtype)
        for k, dtype in ((1, np.int8), (2, np.int64), (3, np.int64), (4, np.float64))
    )
    facts: tuple[tuple[PlantedFact, ...], ...] = ()
    if spec.facts:
        facts = _plant(spec.facts, offsets, kind, text_tokens, rng)
    return CallBatch(spec, offsets, kind, audio_ms, text_tokens, t, text_seed, facts)


def _free_user_turn(users: list[int], taken: set[int], at: float) -> int | None:
    """The first user item at or after fraction `at` of the call not yet holding a fact."""
    n = min(int(at * len(users)), len(users) - 1) if users else 0
    while n < len(users) and users[n] in taken:
        n += 1
    if n >= len(users):
        return None
    taken.add(users[n])
    return users[n]


def _plant(
    specs: Sequence[FactSpec],
    offsets: np.ndarray,
    kind: np.ndarray,
    text_tokens: np.ndarray,
    rng: np.random.Generator,
) -> tuple[tuple[PlantedFact, ...], ...]:
    """Choose each call's fact values and user turns; add the statements' tokens to those turns."""
    enc = get_encoding("o200k_base")
    planted: list[tuple[PlantedFact, ...]] = []
    for call in range(len(offsets) - 1):
        start, end = int(offsets[call]), int(offsets[call + 1])
        users = [int(u) for u in start + np.flatnonzero(kind[start:end] == USER)]
        taken: set[int] = set()
        facts: list[PlantedFact] = []
        slot = partial(_free_user_turn, users, taken)

        for spec in specs:
            value = spec.values[int(rng.integers(0, len(spec.values)))]
            if spec.kind == "updated" and spec.update_template and spec.update_at is not None:
                others = [v for v in spec.values if v != value] or [value]
                old = others[int(rng.integers(0, len(others)))]
                first, second = slot(spec.at), slot(spec.update_at)
                if first is None or second is None:
                    continue
                said = spec.template.format(old=old, value=old)
                fixed = spec.update_template.format(value=value)
                for index, statement in ((first, said), (second, fixed)):
                    text_tokens[index] += len(enc.encode_ordinary(statement)) + 1
                facts.append(PlantedFact(spec.kind, first - start, said, (old,)))
                facts.append(PlantedFact(spec.kind, second - start, fixed, (value,), (old,)))
                continue
            where = slot(spec.at)
            if where is None:
                continue
            statement = spec.template.format(value=value)
            text_tokens[where] += len(enc.encode_ordinary(statement)) + 1
            facts.append(PlantedFact(spec.kind, where - start, statement, (value,)))
        planted.append(tuple(facts))
    return tuple(planted)
