"""`ServerModel`: a pure, deterministic model of one Realtime session on the server.

It holds the conversation, applies truncation when a response is created, tracks the prompt
cache, and produces the usage a ``response.done`` would carry (DESIGN.md, "The central idea").
It does no I/O and reads time only from an injected clock.

The client events it models: ``session.update`` (`update_session`),
``conversation.item.create`` (`create_item`, with ``previous_item_id`` insertion including
``"root"``), ``conversation.item.delete`` (`delete_item`), ``conversation.item.truncate``
(`truncate_item`) and ``response.create`` (`create_response`, given the response's output
items). Mistakes the server would reject raise `ServerModelError` carrying the server's
``error`` event; an overflow under ``disabled`` truncation is a failed response, not an
exception, because the session goes on.

>>> from context_manager.items import Message
>>> from context_manager.profiles import get_model_profile
>>> clock = ManualClock()
>>> server = ServerModel(get_model_profile("gpt-realtime"), clock=clock,
...                      config=SessionConfig(instructions="Answer in two or three words."))
>>> _ = server.create_item(Message(role="user", text="Say a short greeting."))
>>> result = server.create_response([Message(role="assistant", text="Hi there!", audio_ms=750)])
>>> result.usage.input, result.usage.output  # recorded: input text 16; output audio 15
(ModalityTokens(text=16, audio=0, image=0), ModalityTokens(text=3, audio=15, image=0))
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..budget import BudgetBreakdown, compute_budget
from ..errors import (
    ConfigurationError,
    ContextOverflowError,
    ServerModelError,
    SessionExpiredError,
)
from ..items import Item, Message
from ..profiles import ModelProfile, ProviderProfile, get_provider_profile
from ..tokens import ModalityTokens, TokenCounter
from ..tools import render_tools
from .cache import PromptCache, Segment
from .clock import ManualClock
from .pricing import Cost, price
from .request import ResponseParams, ResponseResult, custom_response, request_model
from .retained import Entry, Retained, entry_of
from .truncation import Truncation, plan_truncation_at
from .usage import Usage

__all__ = ["ManualClock", "ResponseResult", "ServerModel", "SessionConfig"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionConfig:
    """The session settings the model uses (the rest of ``session.update`` does not matter here)."""

    instructions: str = ""
    tools: tuple[Mapping[str, Any], ...] = ()
    truncation: Truncation = field(default_factory=Truncation)
    max_output_tokens: int | None = None
    """The session's ``max_output_tokens``; ``None`` is the API's ``"inf"``."""


_ROOT = "root"


class ServerModel:
    """One Realtime session as the server sees it.

    Args:
        profile: the model profile.
        provider: the provider profile (or name); sets the session's maximum duration.
        config: the session settings at the start.
        cache: a prompt cache to use; share one between sessions for an organization-wide cache.
        clock: a callable returning seconds; a `ManualClock` at 0 by default.
        session_id: this session's id (the cache scope under ``scope = "session"``).
        counter: a token counter for `profile` to share.
    """

    def __init__(
        self,
        profile: ModelProfile,
        provider: ProviderProfile | str = "openai",
        *,
        config: SessionConfig | None = None,
        cache: PromptCache | None = None,
        clock: Callable[[], float] | None = None,
        session_id: str = "session",
        counter: TokenCounter | None = None,
    ) -> None:
        self.profile = profile
        self.provider = get_provider_profile(provider) if isinstance(provider, str) else provider
        self.counter = counter if counter is not None else TokenCounter(profile)
        self.cache = cache if cache is not None else PromptCache(profile.cache)
        self.clock: Callable[[], float] = clock if clock is not None else ManualClock()
        self.session_id = session_id
        self.started_at = self.clock()
        # The retained items with their request segments and token sums kept running: the
        # live engine asks for the retained tokens at every event, and every response reads
        # its request from them.
        self._retained = Retained(self.counter)
        self._dropped: set[str] = set()
        self._ids = itertools.count()
        self._responses = 0
        self._tag = ""  # a request copy's own mark, so its response priming is its own
        # The previous request's path in the cache: its first `_stable` segments are known
        # unchanged since, so the next look-up resumes after them (while none can have expired).
        self._path: list[Any] = []
        self._path_time = -math.inf
        self._stable = 0
        self._stored_latest = -1
        self._keep_latest = self.counter.keeps_audio(is_latest_assistant=True)
        self._keep_earlier = self.counter.keeps_audio(is_latest_assistant=False)
        self.config = SessionConfig()
        self._budget = compute_budget(profile, counter=self.counter)
        self._head: list[Segment] = []
        self._head_tokens = ModalityTokens()
        self.update_session(**_fields(config or SessionConfig()))

    # ------------------------------------------------------------------ session

    def fork(self) -> ServerModel:
        """An independent copy of this session: conversation, cache and clock.

        For trying a future without touching this session. Needs a `ManualClock`.
        """
        if not isinstance(self.clock, ManualClock):
            raise ConfigurationError("fork needs a ManualClock, to run the copy's own time")
        twin = copy.copy(self)
        twin.clock = ManualClock(self.clock.now)
        twin.cache = self.cache.copy()
        twin._retained = self._retained.copy()
        twin._dropped = set(self._dropped)
        twin._ids = copy.copy(self._ids)
        twin._head = list(self._head)
        twin._path = []  # the copy's cache has its own nodes
        return twin

    @property
    def budget(self) -> BudgetBreakdown:
        """The window's breakdown for the current instructions, tools and truncation."""
        return replace(self._budget, history_tokens=self.retained_tokens().total)

    @property
    def history_limit(self) -> int:
        """The history limit L: truncation runs when the retained items exceed it."""
        return self._budget.history_limit

    def _check_open(self) -> None:
        elapsed = self.clock() - self.started_at
        if elapsed >= self.provider.max_session_seconds:
            raise SessionExpiredError(
                max_session_seconds=self.provider.max_session_seconds, elapsed=elapsed
            )

    @property
    def responses_created(self) -> int:
        """Responses this session has created."""
        return self._responses

    @property
    def expired(self) -> bool:
        """Whether the provider's maximum session duration has passed."""
        return self.clock() - self.started_at >= self.provider.max_session_seconds

    def update_session(
        self,
        *,
        instructions: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        truncation: Truncation | None = None,
        max_output_tokens: int | None = None,
    ) -> SessionConfig:
        """Apply a ``session.update``; unspecified settings keep their value.

        Raises:
            InstructionsToolsLimitError: the instructions and tools exceed the model's cap.
            ConfigurationError: ``post_instructions`` is above window − max output.
            SessionExpiredError: the session is over.
        """
        self._check_open()
        cap = self.profile.max_output_tokens
        if max_output_tokens is not None and not 1 <= max_output_tokens <= cap:
            raise ConfigurationError(
                f"max_output_tokens must be between 1 and {cap:,} for {self.profile.name},"
                f" got {max_output_tokens:,}"
            )
        new = SessionConfig(
            instructions=self.config.instructions if instructions is None else instructions,
            tools=self.config.tools if tools is None else tuple(tools),
            truncation=self.config.truncation if truncation is None else truncation,
            max_output_tokens=(
                self.config.max_output_tokens if max_output_tokens is None else max_output_tokens
            ),
        )
        self._budget = compute_budget(
            self.profile,
            instructions=new.instructions,
            tools=new.tools,
            post_instructions=new.truncation.post_instructions,
            counter=self.counter,
        )
        self.config = new
        # Instructions and tools lead every request: their keys are their content, so a
        # change breaks the cached prefix right there.
        head = []
        if self._budget.preamble_tokens:  # the model's own text first (reasoning models)
            head.append(
                Segment(("preamble", bool(new.tools)), ModalityTokens(self._budget.preamble_tokens))
            )
        if self._budget.instructions_tokens:
            head.append(
                Segment(
                    ("instructions", new.instructions),
                    ModalityTokens(self._budget.instructions_tokens),
                )
            )
        if self._budget.tools_tokens:
            head.append(
                Segment(
                    ("tools", render_tools(new.tools)), ModalityTokens(self._budget.tools_tokens)
                )
            )
        self._head = head
        self._head_tokens = sum((seg.tokens for seg in head), ModalityTokens())
        self._stable = 0  # the head of every request changed
        return new

    # ------------------------------------------------------------------ items

    def _entry(self, item: Item) -> Entry:
        return entry_of(item, self.counter)

    def _changed(self, index: int) -> None:
        """The item at `index` (and all after it) no longer stands where the last request had it."""
        self._stable = min(self._stable, len(self._head) + index)

    def _resume_from(self, segments: Sequence[Segment], now: float, latest: int) -> list[Any]:
        """The cache nodes of the leading segments the previous request had too, all still live.

        `latest` is the index of the request's latest assistant audio item.
        """
        if not self._path or now - self._path_time >= self.profile.cache.ttl_seconds:
            return []
        stable = self._stable
        if self._keep_latest and not self._keep_earlier:
            # Under "latest", a new latest assistant item demotes the one before it.
            before = self._stored_latest
            if latest != before:
                known = [i for i in (latest, before) if i >= 0]
                stable = min(stable, len(self._head) + min(known))
        return self._path[: min(stable, len(self._path), len(segments))]

    def create_item(self, item: Item, previous_item_id: str | None = None) -> str:
        """Add an item (``conversation.item.create``); returns its id.

        Args:
            item: the item; an id is assigned when it has none.
            previous_item_id: ``None`` appends; ``"root"`` puts it first; an id puts it right
                after that item (after an item truncation dropped, it goes first among the
                retained items).

        Raises:
            ServerModelError: the id exists already, or `previous_item_id` is unknown.
            SessionExpiredError: the session is over.
        """
        self._check_open()
        if item.id is None:
            item = replace(item, id=f"item_{next(self._ids):06d}")
        assert item.id is not None
        retained = self._retained
        if item.id in self._dropped or item.id in retained.ids:
            raise ServerModelError(
                f"Item with id '{item.id}' already exists.", code="item_id_exists", param="item.id"
            )
        entry = self._entry(item)
        entries = retained.entries
        if previous_item_id is None or (
            entries and entries[-1].item.id == previous_item_id
        ):  # after the newest item: the common case, without a search
            retained.insert(entry)
        elif previous_item_id == _ROOT or previous_item_id in self._dropped:
            retained.insert(entry, 0)
            self._changed(0)
        else:
            try:
                at = retained.index(previous_item_id) + 1
            except ServerModelError:
                # As this model has always done (a known flaw, kept while only speed changes):
                # the refused item's id stays taken and its tokens counted, though it stands
                # nowhere.
                retained.count_refused(entry)
                raise
            retained.insert(entry, at)
            self._changed(at)
        return item.id

    def delete_item(self, item_id: str) -> None:
        """Remove an item (``conversation.item.delete``).

        Raises:
            ServerModelError: no item has this id.
        """
        self._check_open()
        if item_id in self._dropped:
            self._dropped.discard(item_id)
            return
        n = self._retained.index(item_id)
        self._retained.remove(n)
        self._changed(n)

    def truncate_item(self, item_id: str, audio_end_ms: int) -> None:
        """Cut an assistant item's audio at `audio_end_ms` (``conversation.item.truncate``).

        The server deletes the transcript so no unheard text stays in context: the item keeps
        ``audio_end_ms`` of audio and no text.

        Raises:
            ServerModelError: the item is not assistant audio, or is shorter than `audio_end_ms`.
        """
        self._check_open()
        n = self._retained.index(item_id)
        item = self._retained.entries[n].item
        if not (
            isinstance(item, Message) and item.role == "assistant" and item.audio_ms is not None
        ):
            raise ServerModelError(
                "Only model output audio messages can be truncated",
                code="unsupported_content_type",
                param="item_id",
            )
        if audio_end_ms < 0 or audio_end_ms > item.audio_ms:
            raise ServerModelError(
                f"Audio content of {item.audio_ms}ms is already shorter than {audio_end_ms}ms",
                code="invalid_value",
                param="audio_end_ms",
            )
        self._retained.replace(n, self._entry(replace(item, text="", audio_ms=audio_end_ms)))
        self._changed(n)

    @property
    def items(self) -> list[Item]:
        """The retained conversation items, in order."""
        return list(self._retained.items)

    @property
    def dropped_ids(self) -> frozenset[str]:
        """Ids of the items truncation has dropped (they never come back)."""
        return frozenset(self._dropped)

    # ------------------------------------------------------------------ requests

    def retained_tokens(self) -> ModalityTokens:
        """Tokens of the retained items as the next request would count them."""
        return self._retained.tokens()

    def _plan_drop(self, total: int, extra: Sequence[int] = ()) -> int:
        truncation = self.config.truncation
        return plan_truncation_at(
            total - self._retained.refused.total,  # truncation sums the items it holds
            self._retained.sizes(extra),
            limit=self._budget.history_limit,
            ratio=truncation.retention_ratio,
            disabled=truncation.mode == "disabled",
        )

    def preview_truncation(self, pending: Sequence[Item] = ()) -> tuple[str, ...]:
        """Ids of the items the next response would drop, without changing anything.

        What a response would see is `items` without these: the fake server gives that to
        its responder before the response is made. `pending` are items about to join the
        conversation after the retained ones (the live engine's items not yet requested).

        Raises:
            ContextOverflowError: the next response would fail (an overflow).
        """
        extra = [self.counter.item(i).full.total for i in pending]
        total = self.retained_tokens().total + sum(extra)
        if total <= self._budget.history_limit:
            return ()  # under the limit: nothing drops (the common case, in O(1))
        drop = self._plan_drop(total, extra)
        return tuple(e.item.id for e in self._retained.entries[:drop] if e.item.id is not None)

    def request_model(self, params: ResponseParams) -> ServerModel:
        """The session as the request of a response with `params` sees it.

        A copy sharing this session's clock, prompt cache and item ids, holding the request's
        items (``input``, else the conversation) under the response's instructions and tools
        (`ResponseParams` gives the rules). A response created on it is priced against the
        shared cache like any other; nothing else it does reaches this session.

        Raises:
            ServerModelError: an item reference to an item not in the conversation.
            InstructionsToolsLimitError: the response's instructions and tools exceed the cap.
            SessionExpiredError: the session is over.
        """
        return request_model(self, params)

    def create_response(
        self, output: Sequence[Item] = (), params: ResponseParams | None = None
    ) -> ResponseResult:
        """Create a response (``response.create``) whose output items are `output`.

        Truncation runs first; the request is priced against the prompt cache; the output
        items join the conversation. Under ``disabled`` truncation, an over-limit
        conversation gives a failed response (``error`` set, zero usage, no output added).

        `params` are the response's own parameters: its request is then built by
        `request_model`; out of band (``conversation: "none"``) its output joins nothing and
        its index is -1; with its own ``input``, truncation drops nothing from the
        conversation.

        Raises:
            SessionExpiredError: the session is over.
            ServerModelError: an ``input`` reference to an item not in the conversation.
        """
        if params is not None and not params.plain:
            return custom_response(self, output, params)
        self._check_open()
        now = self.clock()
        index = self._responses
        self._responses += 1
        retained = self._retained
        try:
            total = retained.tokens().total
            drop = self._plan_drop(total) if total > self._budget.history_limit else 0
        except ContextOverflowError as exc:
            zero = Usage(input=ModalityTokens(), cached=ModalityTokens(), output=ModalityTokens())
            failed = ServerModelError(str(exc), code="context_length_exceeded")
            return ResponseResult(
                index=index,
                t=now,
                usage=zero,
                cost=Cost(),
                retained_items=len(retained),
                error=failed.event,
            )
        dropped: tuple[str, ...] = ()
        if drop:
            dropped = retained.drop(drop)
            self._dropped.update(dropped)
            self._changed(0)
        items = len(retained)
        segments = retained.segments(self._head)
        # The request's tokens from the running sums (the same as summing its segments).
        input_tokens = retained.tokens() + self._head_tokens
        if self.profile.response_overhead_tokens:
            # The priming of the response: unique to this request, never a cache hit.
            overhead = ModalityTokens(self.profile.response_overhead_tokens)
            segments.append(Segment(("response", self.session_id, index, self._tag), overhead))
            input_tokens += overhead
        latest = retained.latest()
        start = self._resume_from(segments, now, latest)
        cached = self.cache.lookup(
            segments, now=now, session=self.session_id, start=start, total=input_tokens
        )
        output_ids = []
        output_tokens = ModalityTokens(self.profile.reasoning_output_tokens)
        # The output continues the request: cached as it will stand in the next request (the
        # request list is not read again, so it grows into the stored one).
        stored = segments if self.profile.cache.include_output else None
        for item in output:
            item_id = self.create_item(item)
            output_ids.append(item_id)
            entry = retained.entries[-1]
            output_tokens += entry.tokens.output
            if stored is not None:
                stored.append(entry.kept if self._keep_latest else entry.demoted)
        self._path = self.cache.store(segments, now=now, session=self.session_id, start=start)
        self._path_time = now
        self._stable = len(self._head) + items
        self._stored_latest = latest  # as it stood in the request, before the output
        usage = Usage(input=input_tokens, cached=cached, output=output_tokens)
        return ResponseResult(
            index=index,
            t=now,
            usage=usage,
            cost=price(usage, self.profile.prices_per_million),
            retained_items=items,
            dropped_items=dropped,
            output_item_ids=tuple(output_ids),
        )


def _fields(config: SessionConfig) -> dict[str, Any]:
    return {
        "instructions": config.instructions,
        "tools": config.tools,
        "truncation": config.truncation,
        "max_output_tokens": config.max_output_tokens,
    }
