"""simulate: grouping a conversation into responses, timing, and the command's output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from context_manager import FunctionCall, FunctionCallOutput, Message, get_model_profile
from context_manager.server import SessionConfig, Truncation
from context_manager.simulate import GAP_SECONDS, plan_turns, simulate_conversation

from ..cli_runner import run_cli
from ..strategies import TINY_PROFILE

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def test_turns_follow_runs_of_assistant_items() -> None:
    items = [
        Message(role="user", text="a", audio_ms=2000),
        FunctionCall(name="f", call_id="c"),
        FunctionCallOutput(call_id="c", output="x"),
        Message(role="assistant", text="b", audio_ms=1000),
        Message(role="assistant", text="c"),
        Message(role="user", text="d"),
    ]
    turns = plan_turns(items)
    assert [len(t.inputs) for t in turns] == [1, 1, 1]
    assert [len(t.output) for t in turns] == [1, 2, 0]
    # Times without `t`: the previous start + its audio + the gap.
    assert turns[0].inputs[0][0] == 0.0
    assert turns[0].t == 2.0 + GAP_SECONDS
    assert turns[1].inputs[0][0] == 2.0 + 2 * GAP_SECONDS
    assert turns[1].t == 2.0 + 3 * GAP_SECONDS


def test_given_times_are_used_and_never_go_back() -> None:
    items = [Message(role="user", text="a", t=10.0), Message(role="assistant", text="b", t=4.0)]
    turns = plan_turns(items)
    assert turns[0].inputs[0][0] == 10.0
    assert turns[0].t == 10.0


def test_a_greeting_before_any_user_item() -> None:
    result = simulate_conversation([Message(role="assistant", text="Hello!")], TINY_PROFILE)
    assert len(result.responses) == 1
    assert result.responses[0].usage.input_tokens == 0


def test_session_expiry_stops_the_simulation() -> None:
    items = []
    for n in range(10):
        items.append(Message(role="user", text="hi", t=n * 400.0))
        items.append(Message(role="assistant", text="hello", t=n * 400.0 + 1))
    result = simulate_conversation(items, TINY_PROFILE, "azure")
    assert result.session_expired
    assert len(result.responses) == 5  # responses at 1, 401, ..., 1601 s; 2001 s is past 1,800
    assert result.totals()["session_expired"] is True


def run(capsys, *args: str) -> tuple[int, dict | str, str]:
    code, out, err = run_cli(capsys, *args)
    try:
        return code, json.loads(out), err
    except json.JSONDecodeError:
        return code, out, err


def test_simulate_json(capsys) -> None:
    code, data, _ = run(
        capsys,
        "simulate",
        "--conversation",
        str(EXAMPLES / "conversation.jsonl"),
        "--instructions",
        str(EXAMPLES / "instructions.md"),
        "--json",
        "--per-response",
    )
    assert code == 0
    for key in (
        "responses",
        "input_tokens",
        "cached_tokens",
        "output_tokens",
        "cache_hit_ratio",
        "truncations",
        "dropped_items",
        "overflows",
        "cost_usd",
    ):
        assert key in data
    assert data["responses"] == 4 == len(data["per_response"])
    assert data["cache_hit_ratio"] == pytest.approx(data["cached_tokens"] / data["input_tokens"])
    row = data["per_response"][0]
    assert set(row) >= {
        "response",
        "input_tokens",
        "cached_tokens",
        "output_tokens",
        "retained_items",
        "dropped_items",
        "cost_usd",
    }
    assert sum(r["cost_usd"] for r in data["per_response"]) == pytest.approx(data["cost_usd"])


def test_disabled_counts_overflows_and_goes_on(capsys, tmp_path: Path) -> None:
    profile = tmp_path / "tiny.json"
    from ..strategies import TINY

    profile.write_text(json.dumps(TINY))
    talk = tmp_path / "talk.jsonl"
    word = "word" + " word" * 499  # 500 tokens: two of them overflow the 800-token limit
    lines = [
        {"type": "message", "role": "user", "text": word},
        {"type": "message", "role": "assistant", "text": "ok"},
        {"type": "message", "role": "user", "text": word},
        {"type": "message", "role": "assistant", "text": "ok"},
        {"type": "message", "role": "user", "text": "short"},
        {"type": "message", "role": "assistant", "text": "ok"},
    ]
    talk.write_text("".join(json.dumps(x) + "\n" for x in lines))
    code, data, _ = run(
        capsys,
        "simulate",
        "--conversation",
        str(talk),
        "--profile",
        str(profile),
        "--truncation",
        "disabled",
        "--json",
        "--per-response",
    )
    assert code == 0
    assert (data["responses"], data["overflows"], data["truncations"]) == (3, 2, 0)
    assert [r["overflow"] for r in data["per_response"]] == [False, True, True]
    assert data["per_response"][1]["output_tokens"] == 0
    code, data, _ = run(
        capsys,
        "simulate",
        "--conversation",
        str(talk),
        "--profile",
        str(profile),
        "--truncation",
        "auto",
        "--json",
    )
    # R1: 500 + 1 + 500 = 1,001 > 800: u1 goes (501 left); R2: 503 fits.
    assert (data["overflows"], data["truncations"], data["dropped_items"]) == (0, 1, 1)


def test_simulate_table_and_errors(capsys) -> None:
    code, out, _ = run(
        capsys, "simulate", "--conversation", str(EXAMPLES / "conversation.jsonl"), "--per-response"
    )
    assert code == 0
    assert "cache-hit ratio" in out and "Responses" in out
    code, _, err = run(
        capsys,
        "simulate",
        "--conversation",
        str(EXAMPLES / "conversation.jsonl"),
        "--truncation",
        "retention_ratio:1.2",
    )
    assert code == 2
    assert err == "error: retention_ratio must be in (0, 1], got 1.2\n"
    code, _, err = run(
        capsys,
        "simulate",
        "--conversation",
        str(EXAMPLES / "conversation.jsonl"),
        "--provider",
        "gcp",
    )
    assert code == 2 and "unknown provider 'gcp'" in err


def test_retention_ratio_on_the_hour_long_example() -> None:
    """Golden figures for the seeded 60-minute call (docs/server-model.md shows them)."""
    from context_manager import read_jsonl

    items = read_jsonl(EXAMPLES / "voice-call-60min.jsonl")
    instructions = (EXAMPLES / "instructions.md").read_text()
    tools = tuple(json.loads((EXAMPLES / "tools.json").read_text()))
    totals = {}
    for spec in ("auto", "retention_ratio:0.8"):
        config = SessionConfig(
            instructions=instructions, tools=tools, truncation=Truncation.parse(spec)
        )
        totals[spec] = simulate_conversation(
            items, get_model_profile("gpt-realtime"), config=config
        ).totals()
    auto, ratio = totals["auto"], totals["retention_ratio:0.8"]
    assert (auto["responses"], auto["truncations"], auto["dropped_items"]) == (214, 21, 61)
    assert (ratio["truncations"], ratio["dropped_items"]) == (1, 76)
    assert (auto["cached_tokens"], ratio["cached_tokens"]) == (2_775_744, 3_240_704)
    assert auto["cost_usd"] == pytest.approx(16.1261, abs=1e-4)
    assert ratio["cost_usd"] == pytest.approx(5.9782, abs=1e-4)
