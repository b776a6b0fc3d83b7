"""Errors raised by context_manager.

Every error the library raises on purpose derives from `ContextManagerError`, so one
``except ContextManagerError`` catches them all. The tree::

    ContextManagerError
    ├── ConfigurationError           the caller asked for something impossible
    │   ├── ProfileError             a model or provider profile is invalid or unknown
    │   ├── UnknownModelError        no profile or encoding is registered for a model name
    │   └── WorkSizeError            the work asked for would not fit in memory
    ├── InputFormatError             a file or object could not be read (path, line, field)
    ├── BudgetExceededError          tokens over a limit (the numbers are attributes)
    │   ├── InstructionsToolsLimitError   instructions + tools over the model's cap
    │   └── ContextOverflowError     the conversation cannot fit (truncation disabled, or
    │                                the newest item alone over the limit)
    ├── ServerModelError             what the Realtime server would answer with an `error`
    │   └── SessionExpiredError      the session reached the provider's maximum duration
    ├── TokenizationError            the offline tokenizer could not be built or verified
    ├── StoreError                   the conversation store refused a read or write
    │                                (`reason`, `transient`, `pending` say why)
    ├── RolloverError                a new session could not be opened or seeded
    ├── SummarizerError              a summarizer could not give a summary (the caller
    │                                falls back to the extractive one)
    ├── JudgeError                   the benchmark's judge model could not answer
    └── ScriptExhaustedError         a scripted fake-server responder ran out of replies

Messages always carry the numbers involved, and the same numbers are attributes, so
callers can branch on them without parsing text.
"""

from __future__ import annotations

__all__ = [
    "BudgetExceededError",
    "ConfigurationError",
    "ContextManagerError",
    "ContextOverflowError",
    "InputFormatError",
    "InstructionsToolsLimitError",
    "JudgeError",
    "ProfileError",
    "RolloverError",
    "ScriptExhaustedError",
    "ServerModelError",
    "SessionExpiredError",
    "StoreError",
    "SummarizerError",
    "TokenizationError",
    "UnknownModelError",
    "WorkSizeError",
]


class ContextManagerError(Exception):
    """Base class of every error context_manager raises on purpose."""


class ConfigurationError(ContextManagerError):
    """A developer mistake: an argument, option or setting that cannot work."""


class WorkSizeError(ConfigurationError):
    """The work asked for would not fit in this machine's memory (refused before allocating)."""


class ProfileError(ConfigurationError):
    """A model or provider profile is invalid.

    Attributes:
        field: the dotted name of the offending field (``"cache.block_tokens"``), or
            ``None`` when the problem is the profile as a whole.
        source: where the profile came from (a file path or ``"built-in"``).
    """

    def __init__(self, message: str, *, field: str | None = None, source: str | None = None):
        where = f" ({source})" if source else ""
        what = f"field {field!r}: " if field else ""
        super().__init__(f"invalid profile{where}: {what}{message}")
        self.reason = message
        self.field = field
        self.source = source

    def with_source(self, source: str) -> ProfileError:
        """The same error, saying where the profile came from."""
        return ProfileError(self.reason, field=self.field, source=source)


class UnknownModelError(ConfigurationError):
    """No profile or tokenizer is registered under a model name.

    Attributes:
        name: the name that was asked for.
        known: the names that are registered.
    """

    def __init__(self, name: str, known: list[str], *, what: str = "model") -> None:
        super().__init__(f"unknown {what} {name!r}; known: {', '.join(sorted(known))}")
        self.name = name
        self.known = sorted(known)


class InputFormatError(ContextManagerError):
    """A file or object could not be read.

    Attributes:
        source: a path or a short description of the input.
        line: the 1-based line number, for line-oriented files.
        field: the dotted name of the offending field, when one is at fault.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        parts = [p for p in (source, f"line {line}" if line is not None else None) if p]
        where = ":".join(parts)
        what = f"field {field!r}: " if field else ""
        super().__init__(f"{where + ': ' if where else ''}{what}{message}")
        self.source = source
        self.line = line
        self.field = field


class BudgetExceededError(ContextManagerError):
    """Tokens exceed a limit.

    Attributes:
        used: the tokens that were counted.
        limit: the limit they exceed.
    """

    def __init__(self, message: str, *, used: int, limit: int) -> None:
        super().__init__(f"{message} ({used=:,}, {limit=:,}, over by {used - limit:,})")
        self.used = used
        self.limit = limit


class InstructionsToolsLimitError(BudgetExceededError):
    """Instructions plus tool definitions exceed the model's cap (16,384 on gpt-realtime).

    Attributes:
        instructions_tokens: tokens of the instructions.
        tools_tokens: tokens of the tool definitions.
    """

    def __init__(self, *, model: str, instructions_tokens: int, tools_tokens: int, limit: int):
        used = instructions_tokens + tools_tokens
        super().__init__(
            f"instructions + tools ({instructions_tokens:,} instructions + {tools_tokens:,} tools)"
            f" exceed the instructions+tools limit of {model}",
            used=used,
            limit=limit,
        )
        self.instructions_tokens = instructions_tokens
        self.tools_tokens = tools_tokens


class ContextOverflowError(BudgetExceededError):
    """The retained conversation cannot fit the history limit.

    Raised with truncation ``disabled`` when the conversation is over the limit, or in any
    mode when the newest item alone exceeds it.
    """


class ServerModelError(ContextManagerError):
    """An error the Realtime server would report, with the event it would send.

    Attributes:
        code: the error code (``item_not_found``, ``session_expired``, ...).
        param: the parameter at fault, when there is one.
        event: the server's ``error`` event as a dict
            (``{"type": "error", "error": {"type", "code", "message", "param"}}``).
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        error_type: str = "invalid_request_error",
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.param = param
        self.event: dict[str, object] = {
            "type": "error",
            "error": {"type": error_type, "code": code, "message": message, "param": param},
        }


class SessionExpiredError(ServerModelError):
    """The session reached the provider's maximum duration (the server then closes it)."""

    def __init__(self, *, max_session_seconds: float, elapsed: float) -> None:
        minutes = max_session_seconds / 60
        super().__init__(
            f"Your session hit the maximum duration of {minutes:g} minutes.",
            code="session_expired",
        )
        self.max_session_seconds = max_session_seconds
        self.elapsed = elapsed


class TokenizationError(ContextManagerError):
    """The offline tokenizer could not be built, or its data failed verification."""


class StoreError(ContextManagerError):
    """The conversation store refused a read or write; nothing was written.

    The message is one line and never carries SQL or the values written (no conversation
    text). The same facts are attributes:

    Attributes:
        reason: what went wrong, one word: ``invalid`` (a value or argument the store refuses),
            ``not_found`` (an unknown conversation, session or item), ``conflict`` (an id
            already taken), ``unavailable`` (the database cannot be reached or opened),
            ``busy`` (locked by other writers, or a serialization conflict, after retries),
            ``refused`` (the server refused the login or has no such database),
            ``not_a_database``, ``read_only``, ``disk_full``, ``schema`` (missing tables, an
            unknown revision, a downgrade that would lose data), ``pending`` (an `AsyncStore`
            holds writes it could not store yet) or ``failed`` (any other database error).
        transient: the same call may succeed later (``unavailable``, ``busy``, ``pending``).
        pending: the writes an `AsyncStore` holds in memory, not yet stored (0 otherwise).
    """

    def __init__(
        self, message: str, *, reason: str = "invalid", transient: bool = False, pending: int = 0
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.transient = transient
        self.pending = pending


class JudgeError(ContextManagerError):
    """The benchmark's judge model could not answer (refused key, unreachable API, bad model).

    Attributes:
        model: the judge model.
        calls: the questions it had answered before failing.
    """

    def __init__(self, message: str, *, model: str, calls: int) -> None:
        super().__init__(message)
        self.model = model
        self.calls = calls


class RolloverError(ContextManagerError):
    """A new session could not be opened or seeded."""


class SummarizerError(ContextManagerError):
    """A summarizer could not give a summary (no live session, a refusal, a timeout)."""


class ScriptExhaustedError(ContextManagerError):
    """A scripted fake-server responder was asked for more replies than it was given."""
