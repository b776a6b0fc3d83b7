"""The OpenAI summarizer, with the real openai client over a mock transport."""

from __future__ import annotations

import asyncio
import json

import httpx2
import openai
import pytest

from context_manager import ConfigurationError, Message, TokenCounter, get_model_profile
from context_manager.compaction.openai_summarizer import OpenAISummarizer
from context_manager.compaction.summarizers import summarize_async

ITEMS = [
    Message(role="user", text="Hi, I'm Priya Raman. My booking code is K7QX2P."),
    Message(role="assistant", text="Thanks Priya, I see the booking."),
]
COUNTER = TokenCounter(get_model_profile("gpt-realtime"))


def responses_body(text: str) -> dict:
    return {
        "id": "resp_1", "object": "response", "created_at": 0, "model": "gpt-4.1-mini",
        "status": "completed", "output": [{"id": "msg_1", "type": "message", "role": "assistant",
        "status": "completed", "content": [{"type": "output_text", "text": text, "annotations": []}]}],
        "parallel_tool_calls": False, "tool_choice": "auto", "tools": [],
    }  # fmt: skip


def client_with(handler) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="test-key", base_url="https://api.example.invalid/v1", max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )  # fmt: skip


def test_the_request_it_sends_and_the_summary_it_returns() -> None:
    seen = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json=responses_body("Priya Raman, booking K7QX2P."))

    s = OpenAISummarizer(client_with(handler), model="gpt-4.1-mini")
    assert s.summarize(ITEMS, budget_tokens=60, previous="Earlier: wants a window seat.") == (
        "Priya Raman, booking K7QX2P."
    )
    (request,) = seen
    assert request.url.path == "/v1/responses"
    body = json.loads(request.content)
    assert body["model"] == "gpt-4.1-mini"
    assert body["max_output_tokens"] == 60
    assert "user: Hi, I'm Priya Raman. My booking code is K7QX2P." in body["input"]
    assert "at most 60 tokens" in body["instructions"]
    assert "wants a window seat" in body["instructions"]  # the previous summary is folded in
    assert "open tasks" in body["instructions"] and "tool results" in body["instructions"]
    assert "test-key" in request.headers["authorization"]


def test_chat_completions_too() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        assert request.url.path == "/v1/chat/completions"
        body = json.loads(request.content)
        assert body["messages"][0]["role"] == "system"
        return httpx2.Response(200, json={
            "id": "c1", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "Booking K7QX2P."}}],
        })  # fmt: skip

    assert (
        OpenAISummarizer(client_with(handler), api="chat").summarize(ITEMS, budget_tokens=30)
        == "Booking K7QX2P."
    )


def test_retries_with_backoff_then_succeeds() -> None:
    calls = []
    waits = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(1)
        if len(calls) < 3:
            return httpx2.Response(
                503, json={"error": {"message": "overloaded", "type": "server_error"}}
            )
        return httpx2.Response(200, json=responses_body("ok"))

    s = OpenAISummarizer(client_with(handler), retries=2, backoff=0.5, sleep=waits.append)
    assert s.summarize(ITEMS, budget_tokens=30) == "ok"
    assert waits == [0.5, 1.0]
    assert s.failures == []


def test_errors_and_timeouts_fall_back_to_the_extractive_summary() -> None:
    def fails(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            401, json={"error": {"message": "bad key", "type": "invalid_request_error"}}
        )

    def times_out(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ReadTimeout("slow", request=request)

    for handler in (fails, times_out):
        s = OpenAISummarizer(client_with(handler), retries=1, sleep=lambda _: None)
        text = s.summarize(ITEMS, budget_tokens=30)
        assert "K7QX2P" in text  # the extractive fallback kept the code
        assert len(s.failures) == 1
    assert "Timeout" in s.failures[0]


def test_an_overlong_answer_is_cut_to_the_budget() -> None:
    long = "\n".join(
        f"Fact {n}: the booking code is K7QX2P and the seat is 14A." for n in range(50)
    )

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=responses_body(long))

    text = OpenAISummarizer(client_with(handler)).summarize(ITEMS, budget_tokens=40)
    assert 0 < COUNTER.text(text) <= 40
    assert text.startswith("Fact 0:")


def test_bad_settings_are_named() -> None:
    with pytest.raises(ConfigurationError, match="api must be responses or chat"):
        OpenAISummarizer(client_with(lambda r: httpx2.Response(200)), api="completions")  # type: ignore[arg-type]


def async_client_with(handler) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key="test-key", base_url="https://api.example.invalid/v1", max_retries=0,
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)),
    )  # fmt: skip


def never_called(request: httpx2.Request) -> httpx2.Response:
    raise AssertionError("the sync client must not be used from async code")


def test_async_callers_use_the_async_client_with_the_same_retries_and_fallback() -> None:
    calls: list[str] = []
    waits: list[float] = []

    async def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(json.loads(request.content)["model"])
        if len(calls) == 1:
            return httpx2.Response(429, json={"error": {"message": "slow down", "type": "rate"}})
        return httpx2.Response(200, json=responses_body("Priya Raman, booking K7QX2P."))

    async def record(seconds: float) -> None:
        waits.append(seconds)

    s = OpenAISummarizer(
        client_with(never_called), async_client=async_client_with(handler),
        backoff=0.25, async_sleep=record,
    )  # fmt: skip
    text = asyncio.run(summarize_async(s, ITEMS, budget_tokens=40))
    assert text == "Priya Raman, booking K7QX2P."
    assert calls == ["gpt-4.1-mini", "gpt-4.1-mini"] and waits == [0.25]

    async def down(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("no route", request=request)

    s = OpenAISummarizer(
        client_with(never_called), async_client=async_client_with(down), async_sleep=record
    )
    text = asyncio.run(summarize_async(s, ITEMS, budget_tokens=30))
    assert "K7QX2P" in text and len(s.failures) == 1 and "Connection" in s.failures[0]
