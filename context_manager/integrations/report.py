"""What every framework integration shares: its reports, its relay, its argument checks.

Every integration reports the same figures (`ContextReport`, no conversation text), each in its
framework's own way: the Agents SDK as a model event, LiveKit as an event of its model and
session, Pipecat as an event handler call and a metrics frame.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ConfigurationError
from ..realtime import ConnectionLostEvent, RolloverEvent

if TYPE_CHECKING:
    from ..live import ContextEngine
    from ..realtime import ManagedConnection

__all__ = ["ContextReport", "check_arguments", "context_report", "relay"]


@dataclass(frozen=True, slots=True)
class ContextReport:
    """What the engine knows after a response or a rollover (no conversation text)."""

    kind: Literal["response", "rollover"]
    session: int
    """0-based index of the session in the call."""
    responses: int
    """Responses priced so far in the call, out-of-band ones included (the engine's too)."""
    cost_usd: float
    """The call's cost so far, by the profile's prices."""
    history_tokens: int
    """Tokens the conversation holds now."""
    history_limit: int
    """Tokens it may hold before the server truncates."""
    next_drops: int
    """Items the next response would make the server drop (the truncation forecast)."""
    prediction_error_tokens: float
    """The engine's mean absolute error predicting input tokens so far (its calibration)."""
    session_age_seconds: float
    rollovers: int
    compactions: int
    type: Literal["context_manager.report"] = "context_manager.report"


def context_report(
    engine: ContextEngine, kind: Literal["response", "rollover"], rollovers: int
) -> ContextReport:
    """The report of `engine` now (`rollovers`: the connection's so far)."""
    budget = engine.budget
    return ContextReport(
        kind=kind,
        session=engine.session_index,
        responses=engine.responses,
        cost_usd=engine.total_cost_usd,
        history_tokens=budget.history_tokens,
        history_limit=budget.history_limit,
        next_drops=len(engine.forecast().drops),
        prediction_error_tokens=engine.calibration.mean_abs_error,
        session_age_seconds=engine.session_age,
        rollovers=rollovers,
        compactions=engine.compactions,
    )


async def relay(
    conn: ManagedConnection, emit: Callable[[ContextReport], Awaitable[None]]
) -> AsyncIterator[dict[str, Any] | ConnectionLostEvent]:
    """The server's events for a framework, reported on as they pass.

    A rollover is not the framework's business: it is reported, not relayed. After a
    `ConnectionLostEvent` (the connection gave up reconnecting) nothing more comes.
    """
    async for event in conn:
        if isinstance(event, RolloverEvent):
            await emit(context_report(conn.engine, "rollover", len(conn.rollovers)))
        elif isinstance(event, ConnectionLostEvent):
            yield event
            return
        else:
            yield event
            if event.get("type") == "response.done":
                await emit(context_report(conn.engine, "response", len(conn.rollovers)))


def check_arguments(owner: str, client: object, options: Mapping[str, Any],
                    refused: Iterable[str] = ()) -> None:  # fmt: skip
    """Refuse, in one line, a client that cannot open sessions, or a refused option.

    `refused` names the framework's options the managed connection decides instead (its URL,
    its key, its recycling).

    Raises:
        ConfigurationError: naming the argument.
    """
    if not callable(getattr(getattr(client, "realtime", None), "connect", None)):
        raise ConfigurationError(
            f"client must be an AsyncOpenAI or AsyncAzureOpenAI client, got {type(client).__name__}"
        )
    taken = sorted(set(options) & set(refused))
    if taken:
        raise ConfigurationError(f"{owner} makes its own connection; drop {', '.join(taken)}")
