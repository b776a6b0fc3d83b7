"""context_manager: the context of long OpenAI Realtime conversations, modelled offline.

The window, truncation, prompt cache and cost of a realtime session, exactly and per model.

The root exports what users hold: the live engine and what it returns (forecast, calibration,
rollover plans, response outcomes, records), rollover policies, profiles, items, tokens, the
budget, the server model with its usage and cost, and every error. Everything else stays in its
module (`context_manager.live`, `.wire`, `.compaction`, `.simulate`, `.store`, `.realtime`,
`.testing`, `.bench`, `.cli`), and parts with heavier dependencies are imported only from there.
"""

from __future__ import annotations

from importlib import metadata as _metadata

from .budget import BudgetBreakdown, RunningBudget, compute_budget
from .errors import (
    BudgetExceededError,
    ConfigurationError,
    ContextManagerError,
    ContextOverflowError,
    InputFormatError,
    InstructionsToolsLimitError,
    JudgeError,
    ProfileError,
    RolloverError,
    ScriptExhaustedError,
    ServerModelError,
    SessionExpiredError,
    StoreError,
    SummarizerError,
    TokenizationError,
    UnknownModelError,
    WorkSizeError,
)
from .items import (
    FunctionCall,
    FunctionCallOutput,
    Image,
    Item,
    Message,
    read_jsonl,
    write_jsonl,
)
from .live import (
    Calibration,
    Compacted,
    ContextEngine,
    Forecast,
    ItemChanged,
    ItemStored,
    ItemsTruncated,
    Record,
    ResponseOutcome,
    SeedLinked,
    SessionEnded,
    SessionStarted,
)
from .profiles import (
    CacheProfile,
    ModelProfile,
    Prices,
    ProviderProfile,
    get_model_profile,
    get_provider_profile,
    load_model_profile,
    load_provider_profile,
    model_names,
    provider_names,
    register_model_profile,
    register_provider_profile,
    save_profile,
)
from .rollover import DEFAULT_ROLLOVER, RolloverPlan, RolloverPolicy
from .sdk import from_realtime_item, to_realtime_item
from .server import Cost, ManualClock, ServerModel, SessionConfig, Truncation, Usage, price
from .tokens import ItemTokens, ModalityTokens, TokenCounter, encoding_for_model, get_encoding
from .tools import render_tools

try:
    __version__ = _metadata.version("context-manager")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = [
    "BudgetBreakdown",
    "BudgetExceededError",
    "CacheProfile",
    "Calibration",
    "Compacted",
    "ConfigurationError",
    "ContextEngine",
    "ContextManagerError",
    "ContextOverflowError",
    "Cost",
    "DEFAULT_ROLLOVER",
    "Forecast",
    "FunctionCall",
    "FunctionCallOutput",
    "Image",
    "InputFormatError",
    "InstructionsToolsLimitError",
    "Item",
    "ItemChanged",
    "ItemStored",
    "ItemTokens",
    "ItemsTruncated",
    "JudgeError",
    "ManualClock",
    "Message",
    "ModalityTokens",
    "ModelProfile",
    "Prices",
    "ProfileError",
    "ProviderProfile",
    "Record",
    "ResponseOutcome",
    "RolloverError",
    "RolloverPlan",
    "RolloverPolicy",
    "RunningBudget",
    "ScriptExhaustedError",
    "SeedLinked",
    "ServerModel",
    "ServerModelError",
    "SessionConfig",
    "SessionEnded",
    "SessionExpiredError",
    "SessionStarted",
    "StoreError",
    "SummarizerError",
    "TokenCounter",
    "TokenizationError",
    "Truncation",
    "UnknownModelError",
    "Usage",
    "WorkSizeError",
    "__version__",
    "compute_budget",
    "encoding_for_model",
    "from_realtime_item",
    "get_encoding",
    "get_model_profile",
    "get_provider_profile",
    "load_model_profile",
    "load_provider_profile",
    "model_names",
    "price",
    "provider_names",
    "read_jsonl",
    "register_model_profile",
    "register_provider_profile",
    "render_tools",
    "save_profile",
    "to_realtime_item",
    "write_jsonl",
]
