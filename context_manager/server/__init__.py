"""The model of the Realtime server: truncation, prompt cache, usage and cost.

One implementation of each rule, used by the simulator, the live engine and the fake server
(DESIGN.md, "The central idea").
"""

from __future__ import annotations

from .cache import PromptCache, Segment, round_cached
from .model import ManualClock, ResponseResult, ServerModel, SessionConfig
from .pricing import Cost, price
from .truncation import Truncation, TruncationMode, plan_truncation
from .usage import Usage

__all__ = [
    "Cost",
    "ManualClock",
    "PromptCache",
    "ResponseResult",
    "Segment",
    "ServerModel",
    "SessionConfig",
    "Truncation",
    "TruncationMode",
    "Usage",
    "plan_truncation",
    "price",
    "round_cached",
]
