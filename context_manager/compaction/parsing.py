"""Reading a compaction setting: a built-in by name and parameters, or a user's own strategy.

``rolling-summary:trigger=0.85,keep=6`` names a built-in (`STRATEGIES`) with its parameters;
``module:attribute`` or an installed entry point's name (group `COMPACTION_GROUP`) runs a
strategy from anywhere, guarded (`Foreign`) so that its failure is one line naming it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from .._plugins import load_object
from ..errors import ConfigurationError, ContextManagerError
from .plan import CompactionPlan
from .strategies import STRATEGIES, CompactionContext, CompactionStrategy, WhenCold

__all__ = ["COMPACTION_GROUP", "Foreign", "as_strategy", "parse_compaction"]


COMPACTION_GROUP = "context_manager.compaction"
"""The entry-point group where installed packages register compaction strategies."""


@dataclass(frozen=True, slots=True)
class Foreign:
    """A strategy from outside the package: its failures are one line naming it.

    An exception in a user's ``plan`` is the user's to fix, not this library's internal
    error: it becomes a `ConfigurationError` with the strategy's label and the exception's
    type (not its message, which may quote the conversation).
    """

    strategy: Any
    label: str

    @property
    def name(self) -> str:
        return str(getattr(self.strategy, "name", self.label))

    def plan(self, context: CompactionContext) -> CompactionPlan | None:
        try:
            return self.strategy.plan(context)  # type: ignore[no-any-return]
        except ContextManagerError:
            raise
        except Exception as exc:
            raise ConfigurationError(
                f"compaction {self.label!r} failed while planning ({type(exc).__name__})"
            ) from None


def as_strategy(found: Any, text: str) -> CompactionStrategy:
    """A loaded object as a strategy: a strategy, or a class or factory that makes one."""
    making = isinstance(found, type) or (callable(found) and not hasattr(found, "plan"))
    try:
        strategy = found() if making else found
    except Exception as exc:  # a user's factory may fail in any way
        raise ConfigurationError(
            f"{text!r} is not a compaction strategy: calling it failed ({type(exc).__name__})"
        ) from None
    if not (hasattr(strategy, "plan") and hasattr(strategy, "name")):
        raise ConfigurationError(
            f"{text!r} is not a compaction strategy (it needs a name and a plan method)"
        )
    return Foreign(strategy, text)


def parse_compaction(text: str) -> CompactionStrategy | None:
    """Read a compaction setting: ``none``, ``NAME[:KEY=VALUE,...]``, or a user's own.

    ``rolling-summary:trigger=0.85,keep=6`` sets a built-in's parameters; ``module:attribute``
    (a strategy, or a class or factory of one) or an installed entry point's name (group
    `COMPACTION_GROUP`) runs a strategy from anywhere.

    ``cold=X`` (any strategy with a trigger) adds cache-aware timing: `WhenCold` with
    ``early=X``.

    Raises:
        ConfigurationError: an unknown name or parameter, or a bad value (named).
    """
    name, _, rest = text.strip().partition(":")
    if name == "none":
        return None
    if name not in STRATEGIES:
        found = load_object(text, COMPACTION_GROUP)
        if found is not None:
            return as_strategy(found, text)
        raise ConfigurationError(
            f"unknown compaction {name!r}; known: none, {', '.join(sorted(STRATEGIES))},"
            " a module:attribute, or an installed entry point"
        )
    cls = STRATEGIES[name]
    known: dict[str, Any] = {f.name: f for f in fields(cls) if f.init and f.name != "summarizer"}
    if "trigger" in known:
        known["cold"] = next(f for f in fields(cls) if f.name == "trigger")  # a float, too
    values: dict[str, Any] = {}
    for part in filter(None, rest.split(",")):
        key, sep, raw = part.partition("=")
        if not sep or key not in known:
            raise ConfigurationError(
                f"{name}: bad parameter {part!r}; known: {', '.join(sorted(known))}"
            )
        try:
            values[key] = int(raw) if known[key].type in ("int", int) else float(raw)
        except ValueError:
            raise ConfigurationError(f"{name}: {key}={raw!r} is not a number") from None
    cold = values.pop("cold", None)
    if cold is not None and not 0.0 < cold <= 1.0:
        raise ConfigurationError(f"{name}: cold must be in (0, 1], got {cold}")
    strategy: CompactionStrategy = cls(**values)
    return WhenCold(strategy, early=cold) if cold is not None else strategy
