"""The engine in the frameworks agent builders already use, each an extra, imported lazily.

* `context_manager.integrations.openai_agents`: the OpenAI Agents SDK (``openai-agents``),
  extra ``agents``: `ManagedRealtimeModel`, a realtime model for its ``RealtimeRunner``.
"""

from __future__ import annotations

__all__: list[str] = []
