"""A summarizer that asks an OpenAI model, and falls back to the extractive one on failure.

It sends the history with a prompt that asks to keep facts, decisions, constraints, entities
and open tasks, to distil tool results into the facts they established, and to stay within the
token budget; through the Responses API (default) or Chat Completions. Each call has a timeout
and is retried with exponential backoff; when every attempt fails, the `fallback` summarizer
(extractive by default) writes the summary instead and the failure is recorded
(`failures`) and logged, so compaction never stalls and never loses history.

The ``openai`` package is imported when this module is, so ``import context_manager`` does not
need it. The network is reached only through the client you pass (or the default client, which
reads ``OPENAI_API_KEY``), never at import.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import openai

from ..errors import ConfigurationError
from ..items import FunctionCall, FunctionCallOutput, Item, Message
from ..tokens import get_encoding
from .summarizers import ExtractiveSummarizer, Summarizer

__all__ = ["SUMMARY_PROMPT", "OpenAISummarizer"]

log = logging.getLogger(__name__)

SUMMARY_PROMPT = """\
You compress the early part of a spoken customer conversation so that a voice assistant can \
continue it without the original turns. Write at most {budget} tokens of plain text, short \
lines, no preamble. Keep, exactly as said: names and roles of people, numbers, codes, dates, \
amounts and addresses; the customer's preferences and constraints; decisions taken; open tasks \
and promises. When a value was corrected, keep only the latest value. Reduce tool results to \
the facts they established. Drop greetings, small talk and anything already resolved.{previous}
"""


def _transcript(items: Sequence[Item]) -> str:
    lines = []
    for item in items:
        if isinstance(item, Message):
            lines.append(f"{item.role}: {item.text}")
        elif isinstance(item, FunctionCall):
            lines.append(f"tool call {item.name}({item.arguments})")
        elif isinstance(item, FunctionCallOutput):
            lines.append(f"tool result: {item.output}")
    return "\n".join(lines)


@dataclass
class OpenAISummarizer:
    """Summaries written by an OpenAI model (see the module docstring).

    Args:
        client: an ``openai.OpenAI`` client (``None``: a default one, reading the environment).
        async_client: an ``openai.AsyncOpenAI`` client for `asummarize` (``None``: a default
            one, made on first use), so async callers never hold a worker thread.
        model: the model to ask.
        api: ``responses`` or ``chat``.
        timeout: seconds per attempt.
        retries: attempts after the first.
        backoff: seconds before the first retry; doubled each time.
        fallback: the summarizer used when every attempt fails.
        sleep: how to wait between attempts (injected, so tests do not wait).
        async_sleep: the same for `asummarize`.
    """

    client: Any = None
    async_client: Any = None
    model: str = "gpt-4.1-mini"
    api: Literal["responses", "chat"] = "responses"
    timeout: float = 20.0
    retries: int = 2
    backoff: float = 0.5
    fallback: Summarizer = field(default_factory=ExtractiveSummarizer)
    sleep: Callable[[float], None] = time.sleep
    async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    failures: list[str] = field(default_factory=list)
    """One line per summary that fell back, saying why."""

    def __post_init__(self) -> None:
        if self.api not in ("responses", "chat"):
            raise ConfigurationError(f"api must be responses or chat, got {self.api!r}")
        if self.retries < 0 or self.timeout <= 0 or self.backoff < 0:
            raise ConfigurationError("retries >= 0, timeout > 0 and backoff >= 0 are required")
        if self.client is None:
            self.client = openai.OpenAI()

    def prompt(self, budget_tokens: int, previous: str | None) -> str:
        """The instructions sent with the history."""
        earlier = (
            f"\nThe summary so far, to fold in (it is older than the turns below):\n{previous}"
            if previous
            else ""
        )
        return SUMMARY_PROMPT.format(budget=budget_tokens, previous=earlier)

    def _request(self, instructions: str, transcript: str, budget_tokens: int) -> dict[str, Any]:
        """The keyword arguments of the create call, for either client."""
        if self.api == "responses":
            return {
                "model": self.model,
                "instructions": instructions,
                "input": transcript,
                "max_output_tokens": max(budget_tokens, 16),
                "timeout": self.timeout,
            }
        return {
            "model": self.model,
            "messages": [
                {"role": "system", "content": instructions},
                {"role": "user", "content": transcript},
            ],
            "max_completion_tokens": max(budget_tokens, 16),
            "timeout": self.timeout,
        }

    def _text(self, reply: Any) -> str:
        if self.api == "responses":
            return str(reply.output_text).strip()
        return str(reply.choices[0].message.content or "").strip()

    def _endpoint(self, client: Any) -> Any:
        return (
            client.responses.create if self.api == "responses" else client.chat.completions.create
        )

    def _fall_back(
        self, reason: str, items: Sequence[Item], budget_tokens: int, previous: str | None
    ) -> str:
        self.failures.append(reason)
        log.warning("summary by %s failed (%s); using %s", self.model, reason,
                    type(self.fallback).__name__)  # fmt: skip
        return self.fallback.summarize(items, budget_tokens=budget_tokens, previous=previous)

    def summarize(
        self, items: Sequence[Item], *, budget_tokens: int, previous: str | None = None
    ) -> str:
        """A summary of `items` (and `previous`) of at most `budget_tokens` tokens."""
        request = self._request(
            self.prompt(budget_tokens, previous), _transcript(items), budget_tokens
        )
        create = self._endpoint(self.client)
        reason = ""
        for attempt in range(self.retries + 1):
            try:
                return _within(self._text(create(**request)), budget_tokens)
            except _RETRIED as exc:
                reason = f"{type(exc).__name__}: {exc}"
                if attempt < self.retries:
                    self.sleep(self.backoff * 2**attempt)
        return self._fall_back(reason, items, budget_tokens, previous)

    async def asummarize(
        self, items: Sequence[Item], *, budget_tokens: int, previous: str | None = None
    ) -> str:
        """`summarize` on the async client: same request, retries and fallback."""
        if self.async_client is None:
            self.async_client = openai.AsyncOpenAI()
        request = self._request(
            self.prompt(budget_tokens, previous), _transcript(items), budget_tokens
        )
        create = self._endpoint(self.async_client)
        reason = ""
        for attempt in range(self.retries + 1):
            try:
                return _within(self._text(await create(**request)), budget_tokens)
            except _RETRIED as exc:
                reason = f"{type(exc).__name__}: {exc}"
                if attempt < self.retries:
                    await self.async_sleep(self.backoff * 2**attempt)
        return self._fall_back(reason, items, budget_tokens, previous)


_RETRIED = (openai.APIError, openai.APITimeoutError, openai.APIConnectionError)


def _within(text: str, budget_tokens: int) -> str:
    """`text`, cut at a line (or token) boundary to fit the budget the model may overrun."""
    encoding = get_encoding("o200k_base")
    if len(encoding.encode_ordinary(text)) <= budget_tokens:
        return text
    lines = text.split("\n")
    while lines and len(encoding.encode_ordinary("\n".join(lines))) > budget_tokens:
        lines.pop()
    if lines:
        return "\n".join(lines)
    return encoding.decode(encoding.encode_ordinary(text)[:budget_tokens])
