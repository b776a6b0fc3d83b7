"""The compaction benchmark: datasets, metrics on hand-checked cases, the command line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from context_manager.bench import chitchat, locomo, longmemeval, synthetic
from context_manager.bench.datasets import BenchConversation
from context_manager.bench.report import verdict, write_rows
from context_manager.bench.run import STRATEGIES, answerable, pareto_front, run_bench, run_one
from context_manager.errors import ConfigurationError, InputFormatError
from context_manager.items import Message
from context_manager.profiles import get_model_profile
from context_manager.simulate.workloads import PlantedFact

from ..cli_runner import run_cli

KINDS = {"name", "code", "preference", "constraint", "decision", "open_task", "updated",
         "entity_role"}  # fmt: skip


def test_synthetic_calls_plant_every_fact_type_early() -> None:
    (call,) = synthetic(1, minutes=20, seed=3)
    assert {f.kind for f in call.facts} == KINDS
    assert len(call.questions) == len(call.facts)
    for fact in call.facts:
        assert fact.probes[0] in call.items[fact.item].text


def test_chitchat_sessions_are_real_turns_with_planted_facts() -> None:
    (call,) = chitchat(1, minutes=10, seed=0)
    roles = [i.role for i in call.items if isinstance(i, Message)]
    assert set(roles) == {"user", "assistant"}
    assert {f.kind for f in call.facts} == KINDS
    for fact in call.facts:
        held = call.items[fact.item]
        assert isinstance(held, Message)
        assert held.role == "user"
        assert fact.probes[0] in held.text
    updated = next(f for f in call.facts if f.kind == "updated")
    assert updated.stale and updated.stale[0] not in updated.probes
    last = call.items[-1]
    assert last.t is not None and last.t < 11 * 60  # about ten minutes of speech, facts included
    assert chitchat(1, minutes=10, seed=0)[0].items == call.items  # seeded


def test_locomo_and_longmemeval_files_are_read_by_path(tmp_path: Path) -> None:
    lo = tmp_path / "locomo.json"
    lo.write_text(json.dumps([{
        "sample_id": "conv-1",
        "conversation": {"speaker_a": "Ann", "speaker_b": "Bo",
                         "session_2": [{"speaker": "Bo", "text": "Later."}],
                         "session_1": [{"speaker": "Ann", "text": "I moved to Oslo."},
                                       {"speaker": "Bo", "text": "Nice!"}]},
        "qa": [{"question": "Where did Ann move?", "answer": "Oslo"},
               {"question": "Adversarial?", "adversarial_answer": "x"}],
    }]))  # fmt: skip
    (conv,) = locomo(lo)
    assert [(i.role, i.text) for i in conv.items] == [
        ("user", "I moved to Oslo."),
        ("assistant", "Nice!"),
        ("assistant", "Later."),
    ]
    assert conv.questions == ("Where did Ann move?",)
    assert conv.facts[0].probes == ("Oslo",)
    lme = tmp_path / "lme.json"
    lme.write_text(json.dumps([{"question_id": "q1", "question": "What pet?", "answer": "a cat",
                                "haystack_sessions": [[{"role": "user", "content": "I got a cat"},
                                                       {"role": "assistant", "content": "Cute"}]]}]))  # fmt: skip
    (conv,) = longmemeval(lme)
    assert conv.name == "q1"
    assert [i.text for i in conv.items] == ["I got a cat", "Cute"]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputFormatError, match="not JSON"):
        locomo(bad)


def _tiny() -> BenchConversation:
    items = (
        Message(role="user", text="My booking reference is QX-4471.", audio_ms=2000),
        Message(role="assistant", text="Thanks, noted.", audio_ms=900),
        Message(role="user", text="I always prefer the window seat.", audio_ms=1800),
        Message(role="assistant", text="Sure.", audio_ms=500),
    )
    facts = (PlantedFact("code", 0, items[0].text, ("QX-4471",)),
             PlantedFact("preference", 2, items[2].text, ("the window seat",)))  # fmt: skip
    return BenchConversation(
        "tiny",
        items,
        facts,
        ("What is the booking reference?", "What does the caller always prefer?"),
    )


def test_retrieval_finds_a_fact_only_while_it_is_in_context() -> None:
    conv = _tiny()
    assert answerable(conv, conv.items) == [True, True]
    assert answerable(conv, conv.items[2:]) == [False, True]
    assert answerable(conv, []) == [False, False]


def test_a_short_call_keeps_everything_and_the_oracle_costs_nothing() -> None:
    profile = get_model_profile("gpt-realtime")
    kept = run_one(_tiny(), STRATEGIES["auto"], profile)
    oracle = run_one(_tiny(), STRATEGIES["oracle"], profile)
    for row in (kept, oracle):
        assert (row["facts"], row["present"], row["answerable"], row["stale"]) == (2, 2, 2, 0)
    assert kept["cost_usd"] > 0
    assert kept["compactions"] == 0
    assert math.isnan(oracle["cost_usd"])


def test_pareto_front_and_verdict_on_hand_values(tmp_path: Path) -> None:
    rows = [
        {"strategy": "retention-0.8", "cost_usd": 1.00, "fact_presence": 0.50},
        {"strategy": "cheap", "cost_usd": 0.80, "fact_presence": 0.40},
        {"strategy": "ledger", "cost_usd": 1.10, "fact_presence": 0.90},
        {"strategy": "dear", "cost_usd": 2.00, "fact_presence": 0.95},
        {"strategy": "worse", "cost_usd": 1.50, "fact_presence": 0.60},
        {"strategy": "oracle", "cost_usd": math.nan, "fact_presence": 1.0},
    ]
    assert pareto_front(rows) == ["retention-0.8", "cheap", "ledger", "dear"]
    text = verdict(rows)
    assert "1 strategies keep more facts than retention-0.8 (50.0%)" in text
    assert "Best: ledger, 90.0% of the facts at 1.10x the cost." in text
    assert "No strategy" in verdict([rows[0], rows[1]])


def test_run_bench_refuses_unknown_strategies_and_writes_csv(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="unknown bench strategy 'magic'; known: auto"):
        run_bench([_tiny()], ["magic"])
    (report,) = run_bench([_tiny()], ["ledger"])
    path = write_rows(report.rows, tmp_path / "rows.csv")
    header = path.read_text().splitlines()[0].split(",")
    assert {"strategy", "cost_usd", "facts_code", "present_preference"} <= set(header)


def test_the_command_line_runs_quick_and_reports_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "bench", "--quick", "--dataset", "voice-agent", "--minutes",
                             "15", "--strategies", "auto,retention-0.8,ledger,oracle", "--json")  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    assert [s["strategy"] for s in data["strategies"]] == ["auto", "retention-0.8", "ledger",
                                                          "oracle"]  # fmt: skip
    assert data["strategies"][-1]["fact_presence"] == 1.0
    assert all(s["conversations"] == 2 for s in data["strategies"])
    assert data["verdict"]
    code, _, err = run_cli(capsys, "bench", "--quick", "--strategies", "nope")
    assert code == 2
    assert "unknown bench strategy 'nope'" in err


class _StandInClient:
    """Stands in for openai.OpenAI (the real one needs the internet): answers yes when the
    expected answer is in the context it was given, and records the requests."""

    def __init__(self) -> None:
        self.requests: list[dict[str, object]] = []
        self.chat = self
        self.completions = self

    def create(self, **request: object) -> object:
        self.requests.append(request)
        prompt = str(request["messages"][1]["content"])  # type: ignore[index]
        context, _, rest = prompt.partition("\n\nQuestion: ")
        expected = rest.split("Expected answer: ")[1]
        answer = "yes" if expected.lower() in context.lower() else "no"
        message = type("M", (), {"content": answer})
        return type("R", (), {"choices": [type("C", (), {"message": message})]})


def test_the_judged_tier_asks_once_per_fact_and_counts_yes() -> None:
    from context_manager.bench.judge import OpenAIJudge

    client = _StandInClient()
    judge = OpenAIJudge(model="gpt-4.1-mini", client=client)
    conv = _tiny()
    assert judge.judge(conv, conv.items[2:]) == [False, True]
    assert judge.calls == 2
    request = client.requests[0]
    assert request["model"] == "gpt-4.1-mini"
    assert "Question: What is the booking reference?" in str(request["messages"])
    (report,) = run_bench([conv], ["auto"], judge=OpenAIJudge(client=_StandInClient()))
    assert report.rows[0]["judged"] == 2
    assert report.summary()["judged"] == 1.0


def test_the_judged_tier_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from context_manager.bench.judge import OpenAIJudge

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="needs OPENAI_API_KEY"):
        OpenAIJudge()
