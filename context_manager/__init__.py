"""context_manager: the context of long OpenAI Realtime conversations, modelled offline.

The window, truncation, prompt cache and cost of a realtime session, exactly and per model.

The root re-exports the pure core (profiles, tokens, items, budget, errors, the server model,
the live engine). Parts with
heavier dependencies are imported from their own modules: ``context_manager.cli``.
"""

from __future__ import annotations

from importlib import metadata as _metadata

from .budget import BudgetBreakdown, RunningBudget, compute_budget
from .engine import ContextEngine
from .errors import (
    BudgetExceededError,
    ConfigurationError,
    ContextManagerError,
    ContextOverflowError,
    InputFormatError,
    InstructionsToolsLimitError,
    ProfileError,
    ServerModelError,
    SessionExpiredError,
    StoreError,
    TokenizationError,
    UnknownModelError,
)
from .items import (
    FunctionCall,
    FunctionCallOutput,
    Image,
    Item,
    Message,
    from_realtime_item,
    read_jsonl,
    to_realtime_item,
    write_jsonl,
)
from .mirror import SessionMirror
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
from .server import (
    Cost,
    ManualClock,
    PromptCache,
    ResponseResult,
    ServerModel,
    SessionConfig,
    Truncation,
    Usage,
    price,
)
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
    "ConfigurationError",
    "ContextEngine",
    "ContextManagerError",
    "ContextOverflowError",
    "Cost",
    "FunctionCall",
    "FunctionCallOutput",
    "Image",
    "InputFormatError",
    "InstructionsToolsLimitError",
    "Item",
    "ItemTokens",
    "ManualClock",
    "Message",
    "ModalityTokens",
    "ModelProfile",
    "Prices",
    "ProfileError",
    "PromptCache",
    "ProviderProfile",
    "ResponseResult",
    "RunningBudget",
    "ServerModel",
    "ServerModelError",
    "SessionConfig",
    "SessionExpiredError",
    "SessionMirror",
    "StoreError",
    "TokenCounter",
    "TokenizationError",
    "Truncation",
    "UnknownModelError",
    "Usage",
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
