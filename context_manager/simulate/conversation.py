"""Run one recorded or written conversation against the server model.

The conversation file (DESIGN.md, "Formats") lists items in order. Each run of consecutive
assistant-produced items (assistant messages and function calls) is the output of one
response, created after the item before it. Times: an item's ``t`` when given; otherwise the
previous item's start plus its audio duration plus a fixed gap (`GAP_SECONDS`). A response is
created at the start time of its first output item.

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

from ..errors import SessionExpiredError
from ..items import FunctionCall, Item, Message
from ..profiles import ModelProfile, ProviderProfile, get_provider_profile
from ..server import ManualClock, PromptCache, ResponseResult, ServerModel, SessionConfig
from ..server.pricing import Cost

__all__ = ["GAP_SECONDS", "SimulationResult", "Turn", "plan_turns", "simulate_conversation"]

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


def plan_turns(items: Sequence[Item], *, gap: float = GAP_SECONDS) -> list[Turn]:
    """Split a conversation into turns: client input, then one response's output."""
    turns: list[Turn] = []
    inputs: list[tuple[float, Item]] = []
    output: list[Item] = []
    output_t = 0.0
    clock = 0.0
    previous: Item | None = None
    for item in items:
        start = (
            item.t
            if item.t is not None
            else (clock + _duration(previous) + gap if previous is not None else 0.0)
        )
        start = max(start, clock)  # times never go back
        if _is_output(item):
            if not output:
                output_t = start
            output.append(item)
        else:
            if output:
                turns.append(Turn(tuple(inputs), tuple(output), output_t))
                inputs, output = [], []
            inputs.append((start, item))
        clock, previous = start, item
    if output or inputs:
        turns.append(Turn(tuple(inputs), tuple(output), output_t if output else clock))
    return turns


@dataclass(slots=True)
class SimulationResult:
    """Responses of one simulated session, with totals."""

    model: str
    provider: str
    truncation: str
    responses: list[ResponseResult] = field(default_factory=list)
    session_expired: bool = False
    """Whether the provider's maximum duration ended the session before the conversation did."""
    expired_at: float | None = None

    def __iter__(self) -> Iterator[ResponseResult]:
        return iter(self.responses)

    def cost(self) -> Cost:
        """Total cost by modality."""
        total = Cost()
        for r in self.responses:
            total += r.cost
        return total

    def totals(self) -> dict[str, Any]:
        """Totals over the session, with the keys the command line prints."""
        input_tokens = sum(r.usage.input_tokens for r in self.responses)
        cached = sum(r.usage.cached_tokens for r in self.responses)
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
            "cost_usd": self.cost().total,
            "cost_usd_by_modality": {
                "text": self.cost().text,
                "audio": self.cost().audio,
                "image": self.cost().image,
            },
            "session_expired": self.session_expired,
        }

    def per_response(self) -> list[dict[str, Any]]:
        """One row per response."""
        return [
            {
                "response": r.index,
                "t": r.t,
                "input_tokens": r.usage.input_tokens,
                "cached_tokens": r.usage.cached_tokens,
                "output_tokens": r.usage.output_tokens,
                "retained_items": r.retained_items,
                "dropped_items": len(r.dropped_items),
                "overflow": not r.ok,
                "cost_usd": r.cost.total,
            }
            for r in self.responses
        ]

    def to_dict(self, *, per_response: bool = False) -> dict[str, Any]:
        """Totals, and the per-response rows when asked."""
        out = self.totals()
        if per_response:
            out["per_response"] = self.per_response()
        return out


def simulate_conversation(
    items: Sequence[Item],
    profile: ModelProfile,
    provider: ProviderProfile | str = "openai",
    *,
    config: SessionConfig | None = None,
    cache: PromptCache | None = None,
    gap: float = GAP_SECONDS,
) -> SimulationResult:
    """Run `items` through one `ServerModel` session and collect every response.

    A session the provider ends before the conversation does stops there
    (``session_expired``); carrying the conversation into a new session is the rollover's job.
    """
    provider = get_provider_profile(provider) if isinstance(provider, str) else provider
    config = config or SessionConfig()
    clock = ManualClock()
    server = ServerModel(profile, provider, config=config, cache=cache, clock=clock)
    result = SimulationResult(profile.name, provider.name, str(config.truncation))
    try:
        for turn in plan_turns(items, gap=gap):
            for t, item in turn.inputs:
                clock.set(max(t, clock.now))
                server.create_item(item)
            if turn.output:
                clock.set(max(turn.t, clock.now))
                result.responses.append(server.create_response(turn.output))
    except SessionExpiredError:
        result.session_expired = True
        result.expired_at = clock.now
    return result
