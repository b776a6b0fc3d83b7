"""The session configuration: what a fake session starts with, and ``session.update``.

`default_session` is the session object of ``session.created``; `updated_session` checks a
``session.update`` as strictly as the real server does and merges it into that object, and
gives the settings the `ServerModel` itself takes (instructions, tools, truncation, the
output token cap). Whatever fails a check is refused with a `_Reject`, and nothing changes.

>>> session = default_session("sess_001", "gpt-realtime", expires_at=3600)
>>> patch = {"type": "realtime", "instructions": "Be brief."}
>>> new, changes = updated_session(session, patch, max_output_tokens=4096)
>>> new["instructions"], changes
('Be brief.', {'instructions': 'Be brief.'})
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from typing import Any

from ..errors import ConfigurationError
from ..server.truncation import Truncation
from .errors import _Reject, invalid, missing

__all__ = [
    "AUDIO_FORMAT_TYPES",
    "DEFAULT_INSTRUCTIONS",
    "PCM_RATE",
    "SESSION_KEYS",
    "TURN_DETECTION_DEFAULTS",
    "audio_format",
    "default_session",
    "merge_audio",
    "turn_detection",
    "updated_session",
]

DEFAULT_INSTRUCTIONS = (
    "You are a voice assistant being tested. Be helpful and friendly, and answer briefly."
)
"""The instructions a fake session starts with (the real server sets its own default too)."""

PCM_RATE = 24_000
"""The one sample rate of ``audio/pcm``."""

AUDIO_FORMAT_TYPES = ("audio/pcm", "audio/pcmu", "audio/pcma")
"""The audio formats a GA session takes."""

TURN_DETECTION_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    # As the recorded sessions echo them.
    "server_vad": {
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 200,
        "idle_timeout_ms": None,
        "create_response": True,
        "interrupt_response": True,
    },
    "semantic_vad": {"eagerness": "auto", "create_response": True, "interrupt_response": True},
}
"""The settings of each turn detection type that a ``session.update`` leaves out."""

SESSION_KEYS = frozenset(
    {
        "type",
        "model",
        "output_modalities",
        "instructions",
        "tools",
        "tool_choice",
        "max_output_tokens",
        "tracing",
        "truncation",
        "prompt",
        "audio",
        "include",
        "reasoning",
        "parallel_tool_calls",
    }
)
"""The keys of a ``session.update``'s ``session``; any other is an unknown parameter."""

_INPUT_KEYS = frozenset({"format", "transcription", "turn_detection", "noise_reduction"})
_TRANSCRIPTION_KEYS = frozenset({"model", "language", "prompt", "delay", "keywords", "languages"})
_MODELLED = ("instructions", "tools", "truncation", "max_output_tokens")
# Kept as sent, unchecked: they change nothing the fake models.
_KEPT = SESSION_KEYS - {"type", "model", "audio", "output_modalities", *_MODELLED}


def default_session(session_id: str, model_name: str, expires_at: int) -> dict[str, Any]:
    """The session object a new session shows in ``session.created``."""
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": model_name,
        "output_modalities": ["audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": expires_at,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": PCM_RATE},
                "transcription": None,
                "noise_reduction": None,
                # As the real server starts: server VAD, its recorded defaults.
                "turn_detection": {"type": "server_vad", **TURN_DETECTION_DEFAULTS["server_vad"]},
            },
            "output": {
                "format": {"type": "audio/pcm", "rate": PCM_RATE},
                "voice": "alloy",
                "speed": 1.0,
            },
        },
        "include": None,
    }


def updated_session(
    current: Mapping[str, Any], patch: object, *, max_output_tokens: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The session object after a ``session.update``, and the `ServerModel`'s new settings.

    Args:
        current: the session object now (left unchanged).
        patch: the event's ``session``.
        max_output_tokens: the model's cap on ``max_output_tokens``.

    Returns:
        The new session object, and the keyword arguments of `ServerModel.update_session`.

    Raises:
        _Reject: a missing or unknown parameter, or a value the real server refuses.
    """
    if not isinstance(patch, Mapping):
        raise missing("session")
    if "type" not in patch:
        raise missing("session.type")
    if patch["type"] != "realtime":
        raise _Reject(
            "unsupported_by_fake",
            f"The fake server models realtime sessions only, not {patch['type']!r}.",
            "session.type",
        )
    _known(patch, SESSION_KEYS, "session")
    new = copy.deepcopy(dict(current))
    changes = _model_settings(patch, new, max_output_tokens)
    if "output_modalities" in patch:
        modalities = patch["output_modalities"]
        if modalities not in (["audio"], ["text"]):
            raise invalid("session.output_modalities", modalities, "expected ['audio'] or ['text']")
        new["output_modalities"] = list(modalities)
    if "audio" in patch:
        new["audio"] = merge_audio(new["audio"], patch["audio"])
    for key in _KEPT:
        if key in patch:
            new[key] = copy.deepcopy(patch[key])
    return new, changes


def _model_settings(patch: Mapping[str, Any], new: dict[str, Any], cap: int) -> dict[str, Any]:
    """Check the settings the `ServerModel` uses; write them into `new`; return them."""
    changes: dict[str, Any] = {}
    if "instructions" in patch:
        text = patch["instructions"]
        if not isinstance(text, str):
            raise invalid("session.instructions", text, "expected a string")
        # Recorded: the real server answers "" with its default instructions.
        new["instructions"] = changes["instructions"] = text or DEFAULT_INSTRUCTIONS
    if "tools" in patch:
        tools = patch["tools"]
        if not isinstance(tools, list) or not all(isinstance(t, Mapping) for t in tools):
            raise invalid("session.tools", tools, "expected a list of tool objects")
        new["tools"] = changes["tools"] = [dict(t) for t in tools]
    if "truncation" in patch:
        try:
            truncation = Truncation.from_realtime(patch["truncation"])
        except (ConfigurationError, ValueError, TypeError, KeyError) as exc:
            raise invalid("session.truncation", patch["truncation"], str(exc)) from None
        new["truncation"] = truncation.to_realtime()
        changes["truncation"] = truncation
    if "max_output_tokens" in patch:
        value = patch["max_output_tokens"]
        if value != "inf" and not (type(value) is int and 1 <= value <= cap):
            raise invalid("session.max_output_tokens", value, f"expected 1 to {cap} or 'inf'")
        new["max_output_tokens"] = value
        if value != "inf":
            changes["max_output_tokens"] = value
    return changes


def merge_audio(current: Mapping[str, Any], patch: object) -> dict[str, Any]:
    """The session's ``audio`` object after a ``session.update``'s ``audio`` (checked)."""
    if not isinstance(patch, Mapping):
        raise invalid("session.audio", patch, "expected an object")
    _known(patch, ("input", "output"), "session.audio")
    out = copy.deepcopy(dict(current))
    for side in ("input", "output"):
        part = patch.get(side)
        if part is None:
            continue
        where = f"session.audio.{side}"
        if not isinstance(part, Mapping):
            raise invalid(where, part, "expected an object")
        if "format" in part:
            out[side]["format"] = audio_format(part["format"], f"{where}.format")
        if side == "output":
            _known(part, ("format", "voice", "speed"), where)
            for key in ("voice", "speed"):
                if key in part:
                    out[side][key] = part[key]
        else:
            _merge_input(out[side], part, where)
    return out


def _merge_input(out: dict[str, Any], part: Mapping[str, Any], where: str) -> None:
    _known(part, _INPUT_KEYS, where)
    if "transcription" in part:
        out["transcription"] = _transcription(part["transcription"], f"{where}.transcription")
    if "turn_detection" in part:
        out["turn_detection"] = turn_detection(part["turn_detection"], f"{where}.turn_detection")
    if "noise_reduction" in part:
        out["noise_reduction"] = copy.deepcopy(part["noise_reduction"])


def _transcription(spec: object, where: str) -> dict[str, Any] | None:
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise invalid(where, spec, "expected an object or null")
    _known(spec, _TRANSCRIPTION_KEYS, where)
    # As recorded: the session shows the model, language and prompt.
    return {
        "model": spec.get("model"),
        "language": spec.get("language"),
        "prompt": spec.get("prompt"),
    }


def turn_detection(spec: object, where: str) -> dict[str, Any] | None:
    """A ``turn_detection`` object, checked, with the defaults of its type filled in.

    >>> turn_detection({"type": "server_vad", "silence_duration_ms": 500}, "td")["threshold"]
    0.5

    Raises:
        _Reject: an unknown type or key, or a value out of range.
    """
    if spec is None:
        return None
    kind = spec.get("type") if isinstance(spec, Mapping) else None
    if not isinstance(kind, str) or kind not in TURN_DETECTION_DEFAULTS:
        raise invalid(f"{where}.type", kind, "expected server_vad or semantic_vad")
    assert isinstance(spec, Mapping)
    _known(spec, {"type", *TURN_DETECTION_DEFAULTS[kind]}, where)
    out: dict[str, Any] = {"type": kind, **TURN_DETECTION_DEFAULTS[kind]}
    for key, value in spec.items():
        param = f"{where}.{key}"
        if key == "threshold" and not (
            isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1
        ):
            raise invalid(param, value, "expected a number from 0.0 to 1.0")
        if key in ("prefix_padding_ms", "silence_duration_ms") and not (
            type(value) is int and value >= 0
        ):
            raise invalid(param, value, "expected a whole number of milliseconds")
        if key in ("create_response", "interrupt_response") and not isinstance(value, bool):
            raise invalid(param, value, "expected true or false")
        if key == "eagerness" and value not in ("low", "medium", "high", "auto"):
            raise invalid(param, value, "expected low, medium, high or auto")
        if key == "idle_timeout_ms" and value is not None:
            raise _Reject(
                "unsupported_by_fake", "The fake server does not model idle_timeout_ms.", param
            )
        if key != "type":
            out[key] = value
    return out


def _known(obj: Mapping[str, Any], allowed: Collection[str], where: str) -> None:
    """Refuse a key of `obj` that is not `allowed` (``unknown_parameter``)."""
    for key in obj:
        if key not in allowed:
            param = f"{where}.{key}"
            raise _Reject("unknown_parameter", f"Unknown parameter: '{param}'.", param)


def audio_format(value: object, param: str) -> dict[str, Any]:
    """The format object of a session's input or output audio, checked.

    >>> audio_format({"type": "audio/pcm"}, "session.audio.input.format")
    {'type': 'audio/pcm', 'rate': 24000}
    """
    if not isinstance(value, Mapping) or value.get("type") not in AUDIO_FORMAT_TYPES:
        kind = value.get("type") if isinstance(value, Mapping) else value
        raise invalid(f"{param}.type", kind, "expected audio/pcm, audio/pcmu or audio/pcma")
    if value["type"] != "audio/pcm":
        return {"type": value["type"]}
    rate = value.get("rate", PCM_RATE)
    if rate != PCM_RATE:
        raise invalid(f"{param}.rate", rate, f"audio/pcm is {PCM_RATE} Hz only")
    return {"type": "audio/pcm", "rate": PCM_RATE}
