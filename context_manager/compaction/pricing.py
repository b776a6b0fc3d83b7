"""Pricing a compaction: "compact now" against "let the server truncate later".

Compacting rewrites the history, so the next request misses the cache from the first changed
item; not compacting keeps the cache but re-reads the longer history at every response, and the
server truncates (a miss from the start) when the history passes its limit. Which is cheaper
depends on the state of the session and on how many responses are ahead. `price_compaction`
answers with the server model itself: it copies the session twice, applies the plan to one
copy, runs the same `responses` turns of typical size on both, and compares their cost. No
second price rule: the copies price every response as `ServerModel` does.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigurationError
from ..items import Message
from ..server import ManualClock, ServerModel
from .plan import CompactionPlan

__all__ = ["CompactionPrice", "price_compaction"]


@dataclass(frozen=True, slots=True)
class CompactionPrice:
    """The cost of the next responses with the plan applied now, and without it."""

    now_usd: float
    later_usd: float
    responses: int

    @property
    def saving_usd(self) -> float:
        """What compacting now saves over the next responses (negative: it costs more)."""
        return self.later_usd - self.now_usd

    @property
    def compact_now(self) -> bool:
        """Whether compacting now is the cheaper choice."""
        return self.now_usd < self.later_usd


def _filler(tokens: int, word: str) -> str:
    # One o200k_base token per word after the first, so a turn has the size asked for.
    return word + f" {word}" * max(tokens - 1, 0)


def price_compaction(
    server: ServerModel,
    plan: CompactionPlan,
    *,
    responses: int = 20,
    user_tokens: int = 40,
    reply_tokens: int = 60,
    seconds_between: float = 10.0,
) -> CompactionPrice:
    """Price applying `plan` now against not applying it, over the next `responses` turns.

    Each turn adds a user text item of `user_tokens` and a response whose output is an
    assistant text item of `reply_tokens`, `seconds_between` apart, up to the session's end
    (`CompactionPrice.responses` says how many were priced); the session is not changed.

    Raises:
        ConfigurationError: `responses` < 1, or a session without a `ManualClock`.
    """
    if responses < 1:
        raise ConfigurationError(f"responses must be >= 1, got {responses}")
    # A session ends at the provider's limit: the future is priced up to it.
    left = server.provider.max_session_seconds - (server.clock() - server.started_at)
    responses = min(responses, max(int(left // seconds_between) - 1, 0))
    totals = []
    for apply in (True, False):
        future = server.fork()
        clock = future.clock
        assert isinstance(clock, ManualClock)  # fork() guarantees it
        if apply:
            plan.apply(future)
        cost = 0.0
        for n in range(responses):
            clock.advance(seconds_between)
            future.create_item(Message(role="user", text=_filler(user_tokens, "word")))
            reply = Message(
                role="assistant", text=_filler(reply_tokens, "yes" if n % 2 else "sure")
            )
            cost += future.create_response([reply]).cost.total
        totals.append(cost)
    return CompactionPrice(now_usd=totals[0], later_usd=totals[1], responses=responses)
