"""The token budget of a realtime session, and its running tally.

The window of a model splits as::

    context_window = response reserve (max_output_tokens)
                   + instructions + tools          (at most max_instructions_tools_tokens)
                   + preamble                      (reasoning models: text no setting holds)
                   + history limit                 (what the server lets the conversation use)
                   + slack                         (window the input limit leaves unused)

The history limit is what the server truncates against (DESIGN.md, "Truncation"): the
session's ``token_limits.post_instructions`` when set, else the model's input limit minus the
instructions, the tools and the preamble (that the preamble counts here is a guess: no
recording has reached the limit of a reasoning model). `compute_budget` makes this breakdown
once per configuration; `RunningBudget` keeps the history figure current as items come and
go, at a constant cost per item (the item is tokenized once; nothing already counted is
re-read).

>>> from context_manager.profiles import get_model_profile
>>> b = compute_budget(get_model_profile("gpt-realtime"), instructions="Be brief.")
>>> (b.instructions_tokens, b.history_limit)
(3, 28669)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from .errors import BudgetExceededError, ConfigurationError, InstructionsToolsLimitError
from .items import Item
from .profiles import ModelProfile
from .tokens import ItemTokens, ModalityTokens, TokenCounter

__all__ = ["BudgetBreakdown", "RunningBudget", "compute_budget", "preamble_tokens"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetBreakdown:
    """How a model's window divides for one session configuration (all figures in tokens)."""

    model: str
    """The profile's model name."""
    context_window: int
    """The whole window."""
    max_output_tokens: int
    """The response reserve: the model's maximum output, held back from input."""
    input_limit: int
    """The model's input limit (window minus reserve, or less: see the profile)."""
    instructions_tokens: int
    """Tokens of the session instructions."""
    tools_tokens: int
    """Tokens of the tool definitions, as rendered for the model."""
    instructions_tools_limit: int
    """The cap on instructions plus tools."""
    history_limit: int
    """Tokens the conversation may hold before the server truncates."""
    preamble_tokens: int = 0
    """Text the model adds to every request (`ModelProfile.request_preamble_tokens`, plus
    ``tools_preamble_tokens`` when the session has tools)."""
    post_instructions: int | None = None
    """The session's ``token_limits.post_instructions``, when it sets one."""
    history_tokens: int = 0
    """Tokens the conversation holds now (zero for a fresh configuration)."""

    @property
    def free_tokens(self) -> int:
        """History room left before truncation (negative when over)."""
        return self.history_limit - self.history_tokens

    @property
    def slack_tokens(self) -> int:
        """Window that neither the reserve, the instructions, the tools nor history may use."""
        return (
            self.context_window
            - self.max_output_tokens
            - self.instructions_tokens
            - self.tools_tokens
            - self.preamble_tokens
            - self.history_limit
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data: every field plus ``free_tokens`` and ``slack_tokens``."""
        return asdict(self) | {"free_tokens": self.free_tokens, "slack_tokens": self.slack_tokens}


def compute_budget(
    profile: ModelProfile,
    *,
    instructions: str = "",
    tools: Sequence[Mapping[str, Any]] = (),
    post_instructions: int | None = None,
    counter: TokenCounter | None = None,
) -> BudgetBreakdown:
    """The breakdown of `profile`'s window for a session with these instructions and tools.

    Args:
        profile: the model profile.
        instructions: the session instructions.
        tools: the session's tool definitions (counted as `render_tools` writes them).
        post_instructions: the session's ``truncation.token_limits.post_instructions``.
        counter: a counter for `profile` to reuse (one is made if omitted).

    Raises:
        InstructionsToolsLimitError: instructions plus tools exceed the model's cap; the
            message states both token counts and the limit.
        ConfigurationError: `post_instructions` is not a positive number within the window
            minus the response reserve (the server's own rule).
    """
    counter = counter if counter is not None else TokenCounter(profile)
    instructions_tokens = counter.text(instructions)
    tools_tokens = counter.tools(tools)
    preamble = preamble_tokens(profile, has_tools=bool(tools))
    cap = profile.max_instructions_tools_tokens
    if instructions_tokens + tools_tokens > cap:
        raise InstructionsToolsLimitError(
            model=profile.name,
            instructions_tokens=instructions_tokens,
            tools_tokens=tools_tokens,
            limit=cap,
        )
    if post_instructions is not None:
        ceiling = profile.context_window - profile.max_output_tokens
        if not 0 < post_instructions <= ceiling:
            raise ConfigurationError(
                f"post_instructions must be between 1 and context_window - max_output_tokens"
                f" = {ceiling:,} for {profile.name}, got {post_instructions:,}"
            )
        history_limit = post_instructions
    else:
        history_limit = profile.input_limit - instructions_tokens - tools_tokens - preamble
    return BudgetBreakdown(
        model=profile.name,
        context_window=profile.context_window,
        max_output_tokens=profile.max_output_tokens,
        input_limit=profile.input_limit,
        instructions_tokens=instructions_tokens,
        tools_tokens=tools_tokens,
        instructions_tools_limit=cap,
        history_limit=history_limit,
        preamble_tokens=preamble,
        post_instructions=post_instructions,
    )


def preamble_tokens(profile: ModelProfile, *, has_tools: bool) -> int:
    """The text a request begins with beyond instructions and tools (reasoning models).

    >>> from context_manager.profiles import get_model_profile
    >>> preamble_tokens(get_model_profile("gpt-realtime"), has_tools=True)
    0
    """
    return profile.request_preamble_tokens + (profile.tools_preamble_tokens if has_tools else 0)


class RunningBudget:
    """The budget kept current as conversation items are added and removed.

    Each `add` tokenizes the new item once (through the counter's memo) and updates the
    running totals in constant time. Under ``assistant_audio_in_context = "latest"`` the
    previous latest assistant audio item drops to its transcript when a newer one arrives,
    which is a constant-time adjustment too. Memory holds one small record per retained item.

    >>> from context_manager.profiles import get_model_profile
    >>> from context_manager.items import Message
    >>> p = get_model_profile("gpt-realtime")
    >>> running = RunningBudget(compute_budget(p), TokenCounter(p))
    >>> key = running.add(Message(role="user", text="", audio_ms=2796))
    >>> running.history
    ModalityTokens(text=8, audio=27, image=0)
    """

    def __init__(self, budget: BudgetBreakdown, counter: TokenCounter) -> None:
        self._budget = budget
        self._counter = counter
        self._items: dict[str, ItemTokens] = {}
        # Assistant audio items in order; the last one is the latest (keeps its audio under
        # "latest"). Earlier ones keep it only under "all".
        self._assistant_audio: OrderedDict[str, None] = OrderedDict()
        self._keep_latest = counter.keeps_audio(is_latest_assistant=True)
        self._keep_earlier = counter.keeps_audio(is_latest_assistant=False)
        self._latest_only = self._keep_latest and not self._keep_earlier
        # Running totals as plain ints: the hot path builds no objects.
        self._text = self._audio = self._image = 0
        self._next_key = 0

    @property
    def history(self) -> ModalityTokens:
        """Tokens of the retained items, by modality."""
        return ModalityTokens(self._text, self._audio, self._image)

    @property
    def history_tokens(self) -> int:
        """Tokens of the retained items."""
        return self._text + self._audio + self._image

    @property
    def free_tokens(self) -> int:
        """Room left before the server truncates (negative when over)."""
        return self._budget.history_limit - (self._text + self._audio + self._image)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def breakdown(self) -> BudgetBreakdown:
        """The breakdown with the current history figure."""
        return replace(self._budget, history_tokens=self.history_tokens)

    def _latest(self) -> str | None:
        return next(reversed(self._assistant_audio), None)

    def _audio_kept(self, tokens: ItemTokens, sign: int) -> None:
        # An assistant audio item counted as the latest one (audio kept, if the mode keeps it).
        if self._keep_latest:
            self._text += sign * tokens.text
            self._audio += sign * tokens.audio
        else:
            self._text += sign * tokens.text_without_audio

    def _swap_latest(self, tokens: ItemTokens, demote: bool) -> None:
        # Under "latest", an item that stops (or starts) being the latest assistant item
        # trades its audio for its transcript (or back).
        sign = 1 if demote else -1
        self._text += sign * (tokens.text_without_audio - tokens.text)
        self._audio -= sign * tokens.audio

    def add(self, item: Item, *, key: str | None = None) -> str:
        """Count `item` at the end of the history; returns its key (its id, or a new one).

        Raises:
            ConfigurationError: the key is already present.
        """
        if key is None:
            key = item.id if item.id is not None else f"_local_{self._next_key}"
            self._next_key += 1
        if key in self._items:
            raise ConfigurationError(f"item {key!r} is already counted in this budget")
        tokens = self._counter.item(item)
        self._items[key] = tokens
        if not tokens.is_assistant_audio:
            # The common case, inlined: this runs once per item in the live loop.
            self._text += tokens.text
            self._audio += tokens.audio
            self._image += tokens.image
            return key
        previous = self._latest()
        if previous is not None and self._latest_only:
            self._swap_latest(self._items[previous], demote=True)
        self._assistant_audio[key] = None
        self._audio_kept(tokens, 1)
        return key

    def remove(self, key: str) -> ModalityTokens:
        """Stop counting an item (deleted or truncated); returns what it was counted as.

        Raises:
            ConfigurationError: no item has this key.
        """
        tokens = self._items.pop(key, None)
        if tokens is None:
            raise ConfigurationError(f"item {key!r} is not counted in this budget")
        if not tokens.is_assistant_audio:
            self._text -= tokens.text
            self._audio -= tokens.audio
            self._image -= tokens.image
            return tokens.full
        was_latest = key == self._latest()
        del self._assistant_audio[key]
        if was_latest:
            self._audio_kept(tokens, -1)
            promoted = self._latest()
            if promoted is not None and self._latest_only:
                self._swap_latest(self._items[promoted], demote=False)
            return tokens.in_context(self._keep_latest)
        counted = tokens.in_context(self._keep_earlier)
        self._text -= counted.text
        self._audio -= counted.audio
        return counted

    def check(self) -> None:
        """Raise if the history is over its limit.

        Raises:
            BudgetExceededError: with the history tokens and the limit.
        """
        if self.free_tokens < 0:
            raise BudgetExceededError(
                f"conversation history of {self._budget.model} is over its limit",
                used=self.history_tokens,
                limit=self._budget.history_limit,
            )
