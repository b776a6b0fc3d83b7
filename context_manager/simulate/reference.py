"""The reference path: a call run against `ServerModel`, response by response, with rollover.

The conversation file (DESIGN.md, "Formats") lists items in order. Each run of consecutive
assistant-produced items (assistant messages and function calls) is the output of one
response, created after the item before it. Times: an item's ``t`` when given; otherwise the
previous item's start plus its audio duration plus a fixed gap (`GAP_SECONDS`). A response is
created at the start time of its first output item.

When the provider's maximum session duration has passed, the next operation finds the session
expired; with a `RolloverPolicy` the call goes on in a new session seeded with its most recent
turns as text (the prompt cache is shared by the call's sessions, so under ``scope =
"organization"`` a live instructions prefix still hits); without one, the call ends there.

>>> from context_manager.items import Message
>>> from context_manager.profiles import get_model_profile
>>> talk = [Message(role="user", text="Say a short greeting."),
...         Message(role="assistant", text="Hi there!", audio_ms=750)]
>>> config = SessionConfig(instructions="Answer in two or three words.")
>>> result = simulate_conversation(talk, get_model_profile("gpt-realtime"), config=config)
>>> result.totals()["input_tokens"], result.totals()["output_tokens"]
(16, 18)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..compaction.strategies import (
    LEDGER_PREFIX,
    SUMMARY_PREFIX,
    CompactionContext,
    CompactionStrategy,
)
from ..items import FunctionCall, Item, Message
from ..profiles import ModelProfile, ProviderProfile, get_provider_profile
from ..rollover import DEFAULT_ROLLOVER, RolloverPolicy, seed_text_tokens
from ..server import ManualClock, PromptCache, ResponseResult, ServerModel, SessionConfig
from ..server.pricing import Cost, seed_cost

__all__ = [
    "GAP_SECONDS",
    "item_times",
    "Rollover",
    "SimulationResult",
    "Turn",
    "plan_turns",
    "simulate_call",
    "simulate_conversation",
]

GAP_SECONDS = 0.5
"""Seconds between one item's end and the next item's start when the file gives no ``t``."""


def _is_output(item: Item) -> bool:
    return isinstance(item, FunctionCall) or (
        isinstance(item, Message) and item.role == "assistant"
    )


def _duration(item: Item) -> float:
    return item.audio_ms / 1000 if isinstance(item, Message) and item.audio_ms is not None else 0.0


@dataclass(frozen=True, slots=True)
class Turn:
    """Items the client adds, then the response whose output is `output` (none at the end)."""

    inputs: tuple[tuple[float, Item], ...]
    """(time, item) pairs the client creates before the response."""
    output: tuple[Item, ...]
    """The response's output items (empty for trailing input with no response)."""
    t: float
    """When the response is created."""


def item_times(items: Sequence[Item], *, gap: float = GAP_SECONDS) -> list[float]:
    """Each item's start time: its ``t``, else the previous start plus its audio plus `gap`.

    Times never go back: a ``t`` earlier than the item before it is moved up to it.
    """
    times: list[float] = []
    clock = 0.0
    previous: Item | None = None
    for item in items:
        if item.t is not None:
            start = item.t
        else:
            start = clock + _duration(previous) + gap if previous is not None else 0.0
        clock = max(start, clock)
        times.append(clock)
        previous = item
    return times


def plan_turns(items: Sequence[Item], *, gap: float = GAP_SECONDS) -> list[Turn]:
    """Split a conversation into turns: client input, then one response's output."""
    turns: list[Turn] = []
    inputs: list[tuple[float, Item]] = []
    output: list[Item] = []
    output_t = 0.0
    for item, start in zip(items, item_times(items, gap=gap), strict=True):
        if _is_output(item):
            if not output:
                output_t = start
            output.append(item)
        else:
            if output:
                turns.append(Turn(tuple(inputs), tuple(output), output_t))
                inputs, output = [], []
            inputs.append((start, item))
    if output or inputs:
        last = inputs[-1][0] if inputs else 0.0
        turns.append(Turn(tuple(inputs), tuple(output), output_t if output else last))
    return turns


@dataclass(frozen=True, slots=True)
class Rollover:
    """One switch to a new session."""

    t: float
    """When the old session was found expired."""
    seed_items: int
    """Items re-sent to the new session."""
    seed_tokens: int
    """Their tokens (as text, with overhead)."""
    cost_usd: float
    """Re-sending them: the seed's tokens at the text input price (a new item is never cached)."""


@dataclass(slots=True)
class SimulationResult:
    """Responses of one simulated call (one session, or several joined by rollovers)."""

    model: str
    provider: str
    truncation: str
    responses: list[ResponseResult] = field(default_factory=list)
    sessions: list[int] = field(default_factory=list)
    """The session (0, 1, ...) of each response."""
    rollovers: list[Rollover] = field(default_factory=list)
    session_expired: bool = False
    """Whether the call ended at a session limit it could not roll over (no policy)."""
    expired_at: float | None = None
    compactions: int = 0
    """Compaction plans applied."""
    final_items: list[Item] = field(default_factory=list)
    """The conversation the server holds at the end (for fact presence)."""

    def __iter__(self) -> Iterator[ResponseResult]:
        return iter(self.responses)

    def cost(self) -> Cost:
        """Total cost of the responses, by modality."""
        total = Cost()
        for r in self.responses:
            total += r.cost
        return total

    def totals(self) -> dict[str, Any]:
        """Totals over the call, with the keys the command line prints."""
        input_tokens = sum(r.usage.input_tokens for r in self.responses)
        cached = sum(r.usage.cached_tokens for r in self.responses)
        cost = self.cost()
        return {
            "model": self.model,
            "provider": self.provider,
            "truncation": self.truncation,
            "responses": len(self.responses),
            "input_tokens": input_tokens,
            "cached_tokens": cached,
            "output_tokens": sum(r.usage.output_tokens for r in self.responses),
            "cache_hit_ratio": cached / input_tokens if input_tokens else 0.0,
            "truncations": sum(1 for r in self.responses if r.dropped_items),
            "dropped_items": sum(len(r.dropped_items) for r in self.responses),
            "overflows": sum(1 for r in self.responses if not r.ok),
            "cost_usd": cost.total,
            "cost_usd_by_modality": {"text": cost.text, "audio": cost.audio, "image": cost.image},
            "sessions": 1 + len(self.rollovers),
            "rollovers": len(self.rollovers),
            "rollover_seed_tokens": sum(r.seed_tokens for r in self.rollovers),
            "rollover_cost_usd": sum(r.cost_usd for r in self.rollovers),
            "compactions": self.compactions,
            "session_expired": self.session_expired,
        }

    def per_response(self) -> list[dict[str, Any]]:
        """One row per response."""
        return [
            {
                "response": n,
                "session": session,
                "t": r.t,
                "input_tokens": r.usage.input_tokens,
                "cached_tokens": r.usage.cached_tokens,
                "output_tokens": r.usage.output_tokens,
                "retained_items": r.retained_items,
                "dropped_items": len(r.dropped_items),
                "overflow": not r.ok,
                "cost_usd": r.cost.total,
            }
            for n, (r, session) in enumerate(zip(self.responses, self.sessions, strict=True))
        ]

    def to_dict(self, *, per_response: bool = False) -> dict[str, Any]:
        """Totals, and the per-response rows when asked."""
        out = self.totals()
        if per_response:
            out["per_response"] = self.per_response()
        return out


def _cold(server: ServerModel, last_response: float | None, now: float) -> bool:
    """Whether the next request of `server` misses the cache from its start anyway."""
    fresh = server.responses_created == 0  # a new session (caches of others aside)
    expired = last_response is not None and now - last_response >= server.profile.cache.ttl_seconds
    return fresh or expired


def simulate_call(
    items: Sequence[Item],
    profile: ModelProfile,
    provider: ProviderProfile | str = "openai",
    *,
    config: SessionConfig | None = None,
    rollover: RolloverPolicy | None = DEFAULT_ROLLOVER,
    compaction: CompactionStrategy | None = None,
    pinned: frozenset[str] = frozenset(),
    gap: float = GAP_SECONDS,
) -> SimulationResult:
    """Run a call's `items` through `ServerModel` sessions, rolling over at the provider's limit.

    Args:
        items: the call, in order (DESIGN.md, "Formats").
        profile: the model profile.
        provider: the provider (its maximum session duration ends sessions).
        config: instructions, tools and truncation of every session of the call.
        rollover: how a new session is seeded; ``None`` ends the call at the first limit.
        compaction: a client-side strategy, asked after every response (the client's safe
            point); its plans are applied to the session at once.
        pinned: ids of items no compaction removes.
        gap: seconds between items that carry no time.
    """
    provider = get_provider_profile(provider) if isinstance(provider, str) else provider
    config = config or SessionConfig()
    clock = ManualClock()
    cache = PromptCache(profile.cache)  # shared by the call's sessions, not with other calls
    server = ServerModel(
        profile, provider, config=config, cache=cache, clock=clock, session_id="s0"
    )
    result = SimulationResult(profile.name, provider.name, str(config.truncation))
    history: list[Item] = []  # the client's view of the call: every item, original form

    def roll_over() -> bool:
        nonlocal server
        if rollover is None:
            result.session_expired = True
            result.expired_at = clock.now
            return False
        number = len(result.rollovers) + 1
        # The strategy's own memory (its summary or ledger) goes into the seed: a compacting
        # call keeps at the provider's limit what its compaction kept.
        memory = [
            i.text
            for i in server.items
            if isinstance(i, Message)
            and i.role == "system"
            and (i.id or "").startswith((SUMMARY_PREFIX, LEDGER_PREFIX))
        ]
        server = ServerModel(
            profile, provider, config=config, cache=cache, clock=clock, session_id=f"s{number}"
        )
        seed = rollover.seed(history, server.counter, previous="\n".join(memory) or None)
        for item in seed:
            server.create_item(item)
        tokens = sum(seed_text_tokens(i, server.counter) for i in seed)
        cost = seed_cost(tokens, profile.prices_per_million)
        result.rollovers.append(Rollover(clock.now, len(seed), tokens, cost))
        return True

    def compact(server: ServerModel, *, cold: bool) -> None:
        assert compaction is not None
        budget = server.budget.history_limit
        # The server's running total: counting every retained item again at every response
        # would cost more than the strategy itself.
        context = CompactionContext(
            server.items, server.counter, budget, pinned, cold, server.retained_tokens().total
        )
        plan = compaction.plan(context)
        if plan is not None and not plan.empty:
            plan.apply(server)
            result.compactions += 1

    last_response: float | None = None
    for turn in plan_turns(items, gap=gap):
        for t, item in turn.inputs:
            clock.set(max(t, clock.now))
            if server.expired and not roll_over():
                result.final_items = server.items
                return result
            server.create_item(item)
            history.append(item)
        if turn.output:
            clock.set(max(turn.t, clock.now))
            if server.expired and not roll_over():
                result.final_items = server.items
                return result
            if compaction is not None and _cold(server, last_response, clock.now):
                # The next request misses the cache anyway: a chance to compact for free.
                compact(server, cold=True)
            response = server.create_response(turn.output)
            last_response = clock.now
            result.responses.append(response)
            result.sessions.append(len(result.rollovers))
            if response.ok:  # a failed response produced nothing the client could re-send
                history.extend(turn.output)
            if compaction is not None:
                compact(server, cold=False)
    result.final_items = server.items
    return result


def simulate_conversation(
    items: Sequence[Item],
    profile: ModelProfile,
    provider: ProviderProfile | str = "openai",
    *,
    config: SessionConfig | None = None,
    gap: float = GAP_SECONDS,
) -> SimulationResult:
    """Run `items` in one session; the call ends if the provider's limit is reached."""
    return simulate_call(items, profile, provider, config=config, rollover=None, gap=gap)
