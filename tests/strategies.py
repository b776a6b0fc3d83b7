"""Hypothesis strategies and small fixtures shared by the tests."""

from __future__ import annotations

from hypothesis import strategies as st

from context_manager import FunctionCall, FunctionCallOutput, Image, Message, load_model_profile

TINY = {
    "name": "tiny", "context_window": 1000, "max_output_tokens": 200, "input_limit": 800,
    "max_instructions_tools_tokens": 400, "item_overhead_tokens": 0, "response_overhead_tokens": 0,
    "audio_input_ms_per_token": 100, "audio_output_ms_per_token": 50,
    "user_transcript_in_context": False, "assistant_transcript_in_context": False,
    "assistant_audio_in_context": "all", "image_tokens": 0,
    "cache": {"block_tokens": 10, "min_prefix_tokens": 20, "ttl_seconds": 300, "scope": "session"},
    "prices_per_million": {"text_input": 4, "text_cached": 0.4, "text_output": 16, "audio_input": 32,
      "audio_cached": 0.4, "audio_output": 64, "image_input": 5, "image_cached": 0.5},
}  # fmt: skip
"""The profile file of the Foundation issue, verbatim."""

TINY_PROFILE = load_model_profile(TINY)

texts = st.text(max_size=60)
ids = st.none() | st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=12)
times = st.none() | st.floats(min_value=0, max_value=7200, allow_nan=False, allow_infinity=False)
durations = st.integers(min_value=0, max_value=120_000)
images = st.builds(
    Image,
    url=st.sampled_from(["data:image/png;base64,iVBORw0KGgo=", "https://example.invalid/a.jpg"]),
    detail=st.none() | st.sampled_from(["auto", "low", "high"]),
)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    role = draw(st.sampled_from(["system", "user", "assistant"]))
    audio = None if role == "system" else draw(st.none() | durations)
    imgs = tuple(draw(st.lists(images, max_size=2))) if role == "user" else ()
    return Message(
        role=role, text=draw(texts), audio_ms=audio, images=imgs, id=draw(ids), t=draw(times)
    )


function_calls = st.builds(
    FunctionCall,
    name=st.from_regex(r"[a-z_]{1,12}", fullmatch=True),
    call_id=st.text(min_size=1, max_size=8),
    arguments=texts,
    id=ids,
    t=times,
)
function_outputs = st.builds(
    FunctionCallOutput, call_id=st.text(min_size=1, max_size=8), output=texts, id=ids, t=times
)
items = messages() | function_calls | function_outputs


def items_strategy(max_size: int = 12) -> st.SearchStrategy[list]:
    return st.lists(items, max_size=max_size)
