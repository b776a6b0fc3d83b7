"""Summaries written by the realtime model itself, out of band, in the live session.

With input transcription off, the user's turns are audio no text summarizer can read; the
realtime model heard them. A `RealtimeSummarizer` asks it: a ``response.create`` with
``conversation: "none"`` and text output, whose ``input`` references the items to cover (by
id, in conversation order, so the request rides the session's cached prefix under the
session's own instructions) and ends with one inline system item stating the task. Items no
longer in the session go in inline as text; audio the session no longer holds cannot.

It is a `Summarizer` like the others: the adapter runs it in a worker thread with a deadline
and falls back to the extractive summary when it is slow or fails; its response is priced and
recorded as an out-of-band response, and its events never reach the application. It needs a
live connection: `context_manager.realtime.connect` binds it (as the compaction strategy's
summarizer or the rollover policy's).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

from ..errors import SummarizerError
from ..items import Item, Message
from ..rollover import SeedSummary, is_unheard
from ..wire import item_to_wire

if TYPE_CHECKING:
    from ..live import ContextEngine

__all__ = [
    "DEFAULT_SUMMARY_TASK",
    "OutOfBand",
    "RealtimeSummarizer",
    "SummaryAhead",
    "summary_ahead",
]

DEFAULT_SUMMARY_TASK = (
    "Do not answer anyone. Summarize the conversation above for your own memory, in at most"
    " {words} words of plain text: who the caller is, what they asked for, and every name,"
    " number, date and decision, in the caller's own words."
)
"""The task of the inline system item (``{words}``: about three quarters of the budget)."""

log = logging.getLogger(__name__)

_TAG = "context_manager"
_serial = itertools.count()


class RealtimeSummarizer:
    """A `Summarizer` whose summaries the realtime model writes, out of band, in the session.

    Args:
        task: the summarizing instruction (``{words}`` is filled in).
        timeout_seconds: the longest wait for the model's answer (the adapter's own
            deadline, ``summary_timeout_seconds``, applies as well).
    """

    def __init__(self, task: str = DEFAULT_SUMMARY_TASK, timeout_seconds: float = 20.0) -> None:
        self.task = task
        self.timeout_seconds = timeout_seconds
        self._oob: OutOfBand | None = None
        self.requests = 0
        """Summaries asked of the model."""
        self.failures = 0
        """Of those, the ones that failed or timed out (the caller fell back)."""

    def bind(self, oob: OutOfBand | None) -> None:
        """Send through `oob` from now on (``None``: no live connection)."""
        self._oob = oob

    @property
    def live(self) -> bool:
        """Whether a live session can take a request now."""
        return self._oob is not None and self._oob.open

    def summarize(
        self, items: Sequence[Item], *, budget_tokens: int, previous: str | None = None
    ) -> str:
        """Ask the model (blocks the calling thread; never call it on the event loop).

        Raises:
            SummarizerError: no live session, a refusal, a failed response or the timeout.
        """
        oob = self._oob
        if oob is None or not oob.open:
            raise SummarizerError("the realtime summarizer has no live session now")
        self.requests += 1
        words = max(int(budget_tokens * 0.75), 1)
        try:
            return oob.ask(items, budget_tokens, previous, self.task.format(words=words),
                           self.timeout_seconds)  # fmt: skip
        except Exception:
            self.failures += 1
            raise

    def __repr__(self) -> str:
        return f"RealtimeSummarizer(live={self.live}, requests={self.requests})"


class OutOfBand:
    """The adapter's side: requests sent into the live session, their events kept apart.

    `send` sends one client event into the current session (on the loop); `server_ids` gives
    the current session's server id of each item it holds, by history key. `loop` is the
    event loop (set when the connection opens).
    """

    def __init__(
        self,
        send: Callable[[dict[str, Any]], Awaitable[None]],
        server_ids: Callable[[], Mapping[str, str]],
    ) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._send = send
        self._server_ids = server_ids
        self._waiting: dict[str, asyncio.Future[str]] = {}
        self._responses: dict[str, str] = {}  # response id -> request tag
        self.open = True
        """A live session takes requests (the adapter closes it while it switches)."""

    # ------------------------------------------------------------------ thread side

    def ask(
        self,
        items: Sequence[Item],
        budget_tokens: int,
        previous: str | None,
        task: str,
        timeout: float,
    ) -> str:
        """Send a summary request and wait for its text (in a worker thread)."""
        if self.loop is None:
            raise SummarizerError("the connection is not open")
        future = asyncio.run_coroutine_threadsafe(
            self._request(items, budget_tokens, previous, task), self.loop
        )
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise SummarizerError(f"no summary from the model within {timeout:g} s") from None

    # ------------------------------------------------------------------ loop side

    async def _request(
        self, items: Sequence[Item], budget_tokens: int, previous: str | None, task: str
    ) -> str:
        tag = f"cm_summary_{next(_serial)}"
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting[tag] = done
        try:
            await self._send(self.event(tag, items, budget_tokens, previous, task))
            return await done
        finally:
            self._waiting.pop(tag, None)

    def event(
        self,
        tag: str,
        items: Sequence[Item],
        budget_tokens: int,
        previous: str | None,
        task: str,
    ) -> dict[str, Any]:
        """The ``response.create`` of one summary request."""
        refs: list[dict[str, Any]] = []
        inline: list[dict[str, Any]] = []
        ids = self._server_ids()
        for item in items:
            sid = ids.get(item.id) if item.id is not None else None
            if sid is not None and not inline:
                refs.append({"type": "item_reference", "id": sid})
            elif not is_unheard(item):
                # Not in the session (or after an item that is not): its text, inline.
                form = item.as_text() if isinstance(item, Message) else item
                inline.append(item_to_wire(_without_id(form)))
        head = []
        if previous:
            head = [_system(f"Summary of what came before:\n{previous}")]
        return {
            "type": "response.create",
            "event_id": tag,
            "response": {
                "conversation": "none",
                "output_modalities": ["text"],
                "max_output_tokens": max(budget_tokens, 1),
                "tool_choice": "none",
                "metadata": {_TAG: tag},
                "input": [*refs, *head, *inline, _system(task)],
            },
        }

    @property
    def pending(self) -> bool:
        """Whether a request is waiting for its answer."""
        return bool(self._waiting)

    @property
    def waiting(self) -> list[asyncio.Future[str]]:
        """The answers being waited for."""
        return list(self._waiting.values())

    def claim(self, raw: Mapping[str, Any]) -> bool:
        """Whether a server event belongs to a request of ours (the application never sees it).

        A ``response.done`` or an error of ours answers its request.
        """
        kind = raw.get("type")
        if kind == "error":
            error = raw.get("error") if isinstance(raw.get("error"), Mapping) else {}
            tag = error.get("event_id") if isinstance(error, Mapping) else None
            if isinstance(tag, str) and tag in self._waiting:
                code = error.get("code") if isinstance(error, Mapping) else None
                self._fail(tag, f"the session refused the summary request ({code})")
                return True
            return False
        response = raw.get("response")
        if isinstance(response, Mapping):
            metadata = response.get("metadata")
            tag = metadata.get(_TAG) if isinstance(metadata, Mapping) else None
            rid = response.get("id")
            if isinstance(tag, str) and isinstance(rid, str):
                self._responses[rid] = tag
            if kind == "response.done" and isinstance(rid, str) and rid in self._responses:
                self._finish(self._responses.pop(rid), response)
                return True
            return isinstance(tag, str)
        rid = raw.get("response_id")
        return isinstance(rid, str) and rid in self._responses

    def close(self) -> None:
        """The session is gone (or switching): requests fail now, until `open` is set again."""
        self.open = False
        for tag in list(self._waiting):
            self._fail(tag, "the session ended before the summary came")
        self._responses.clear()

    def _finish(self, tag: str, response: Mapping[str, Any]) -> None:
        status = response.get("status")
        if status != "completed":
            self._fail(tag, f"the summary response ended {status}")
            return
        texts = []
        for output in response.get("output") or []:
            for part in (output or {}).get("content") or []:
                text = (part or {}).get("text") or (part or {}).get("transcript")
                if isinstance(text, str):
                    texts.append(text)
        future = self._waiting.get(tag)
        if future is not None and not future.done():
            future.set_result("".join(texts).strip())

    def _fail(self, tag: str, why: str) -> None:
        future = self._waiting.get(tag)
        if future is not None and not future.done():
            future.set_exception(SummarizerError(why))


def _system(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "system", "content": [{"type": "input_text", "text": text}]}


def _without_id(item: Item) -> Item:
    from dataclasses import replace

    return replace(item, id=None)


async def summary_ahead(
    engine: ContextEngine,
    summarizer: RealtimeSummarizer,
    executor: Executor,
    deadline_seconds: float,
    *,
    resent: tuple[str, ...] = (),
) -> SeedSummary | None:
    """The summary a rollover's seed carries, asked of the model while the old session runs.

    ``None`` when there is nothing older to summarize, or the model did not answer in time
    (the seed's own extractive summary is made at the switch then).
    """
    history, summary = engine.rollover_source(resent=resent)
    older, room = engine.rollover.older(history, engine.counter, engine.audio.snapshot())
    if not older or not room:
        return None
    loop = asyncio.get_running_loop()
    try:
        text = await asyncio.wait_for(loop.run_in_executor(
            executor, lambda: summarizer.summarize(older, budget_tokens=room, previous=summary)
        ), deadline_seconds)  # fmt: skip
    except Exception as exc:
        log.warning("rollover summary failed (%s); falling back", type(exc).__name__)
        return None
    return SeedSummary(text, frozenset(str(i.id) for i in older)) if text else None


class SummaryAhead:
    """The summary a planned rollover's seed carries, asked of the model before the switch.

    `ready` starts it when the rollover falls due and says whether the switch may go on. A
    summary that no longer covers everything a text seed cannot carry (the caller spoke
    again while it was being written) is asked again, at most `retries` times: after that
    the switch goes on and the turns it misses are reported as not carried.
    """

    def __init__(self, retries: int = 3) -> None:
        self.retries = retries
        self.future: asyncio.Future[SeedSummary | None] | None = None
        self._asked = 0

    @property
    def running(self) -> bool:
        """Whether a summary is being written now."""
        return self.future is not None and not self.future.done()

    @property
    def result(self) -> SeedSummary | None:
        """The summary, once written (``None`` before, or when the model gave none)."""
        future = self.future
        return future.result() if future is not None and future.done() else None

    def ready(
        self, engine: ContextEngine, ask: Callable[[], Awaitable[SeedSummary | None]]
    ) -> bool:
        """Whether the switch may go on now (`ask` starts a summary)."""
        future = self.future
        if future is None or (future.done() and self._stale(engine)):
            self._asked += 1
            self.future = asyncio.ensure_future(ask())
            return False
        return future.done()

    def reset(self) -> None:
        """The switch happened: the next rollover asks afresh."""
        self.future, self._asked = None, 0

    def _stale(self, engine: ContextEngine) -> bool:
        done = self.result
        if done is None or self._asked > self.retries:
            return False
        history, _ = engine.rollover_source()
        older, _ = engine.rollover.older(history, engine.counter, engine.audio.snapshot())
        return any(is_unheard(i) and str(i.id) not in done.covers for i in older)
