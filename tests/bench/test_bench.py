"""The compaction benchmark: datasets, metrics on hand-checked cases, the command line."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from context_manager.bench import chitchat, locomo, longmemeval, synthetic
from context_manager.bench.datasets import BenchConversation
from context_manager.bench.report import presence_table, verdict, write_rows
from context_manager.bench.retrieval import CallTexts, entries
from context_manager.bench.run import (
    STRATEGIES,
    BenchStrategy,
    StrategyReport,
    answerable,
    pareto_front,
    run_bench,
    run_one,
    with_summarizer,
)
from context_manager.budget import compute_budget
from context_manager.compaction import DropOldest, RollingSummary, WhenCold
from context_manager.errors import ConfigurationError, InputFormatError, JudgeError
from context_manager.items import Item, Message
from context_manager.profiles import get_model_profile
from context_manager.simulate.facts import fact_presence
from context_manager.simulate.workloads import PlantedFact
from context_manager.tokens import TokenCounter

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


def test_locomo_files_are_read_by_path_in_their_published_shape(tmp_path: Path) -> None:
    lo = tmp_path / "locomo.json"
    lo.write_text(json.dumps([{
        "sample_id": "conv-1",
        "conversation": {
            "speaker_a": "Ann", "speaker_b": "Bo",
            "session_10_date_time": "1:00 pm on 9 June, 2023",
            "session_10": [{"speaker": "Bo", "dia_id": "D10:1", "text": "Later."}],
            "session_2_date_time": "3:00 pm on 2 May, 2023",
            "session_2": [{"speaker": "Ann", "dia_id": "D2:1", "text": "Look!",
                           "img_url": ["https://example.invalid/a.jpg"],
                           "blip_caption": "a photo of a red kayak"}],
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": [{"speaker": "Ann", "dia_id": "D1:1", "text": "I moved to Oslo."},
                          {"speaker": "Bo", "dia_id": "D1:2", "text": "Nice!"}],
        },
        "qa": [{"question": "Where did Ann move?", "answer": "Oslo", "evidence": ["D1:1"],
                "category": 4},
               {"question": "What did Ann show?", "answer": "a kayak",
                "evidence": ["D9:9", "D2:1"], "category": 1},
               {"question": "When?", "answer": 2023, "evidence": [], "category": 2},
               {"question": "Adversarial?", "adversarial_answer": "x", "category": 5}],
        "session_summary": {}, "event_summary": {}, "observation": {},
    }]))  # fmt: skip
    (conv,) = locomo(lo)
    assert conv.name == "conv-1"
    assert [(i.role, i.text) for i in conv.items] == [
        ("user", "I moved to Oslo."),
        ("assistant", "Nice!"),
        ("user", "Look! [shares a photo: a photo of a red kayak]"),
        ("assistant", "Later."),
    ]
    assert conv.questions == ("Where did Ann move?", "What did Ann show?", "When?")
    assert [(f.kind, f.item, f.probes) for f in conv.facts] == [
        ("locomo-category-4", 0, ("Oslo",)),
        ("locomo-category-1", 2, ("a kayak",)),  # the evidence that exists
        ("locomo-category-2", 0, ("2023",)),  # numeric answers are read as text
    ]


def test_longmemeval_files_are_read_by_path_in_their_published_shape(tmp_path: Path) -> None:
    lme = tmp_path / "lme.json"
    lme.write_text(json.dumps([
        {"question_id": "q1", "question_type": "knowledge-update", "question": "What pet?",
         "answer": "a cat", "question_date": "2023/05/30 (Tue) 23:40",
         "haystack_session_ids": ["s1", "s2"], "haystack_dates": ["2023/05/20", "2023/05/21"],
         "haystack_sessions": [[{"role": "user", "content": "Hello"},
                                {"role": "assistant", "content": "Hi"}],
                               [{"role": "user", "content": "I got a cat", "has_answer": True},
                                {"role": "assistant", "content": "Cute"}]],
         "answer_session_ids": ["s2"]},
        {"question_id": "q2_abs", "question_type": "multi-session", "question": "What car?",
         "answer": "You did not mention a car.", "haystack_sessions": []},
    ]))  # fmt: skip
    (conv,) = longmemeval(lme)  # the abstention question has nothing to keep: skipped
    assert conv.name == "q1"
    assert [i.text for i in conv.items] == ["Hello", "Hi", "I got a cat", "Cute"]
    assert [(f.kind, f.item, f.probes) for f in conv.facts] == [("knowledge-update", 2, ("a cat",))]


@pytest.mark.parametrize(
    ("loader", "content", "message"),
    [
        (locomo, "{not json", "not JSON: Expecting property name"),
        (locomo, '{"a": 1}', "field '(top level)': expected a list, found a dict"),
        (locomo, '[{"conversation": {"session_1": {"text": "hi"}}}]',
         "field '[0].conversation.session_1': expected a list, found a dict"),
        (locomo, '[{"conversation": {"session_1": ["hi"]}}]',
         "field '[0].conversation.session_1[0]': expected a JSON object, found a str"),
        (longmemeval, '[{"question_id": "q", "haystack_sessions": null}]',
         "field '[0].haystack_sessions': expected a list, found nothing"),
        (longmemeval, '[7]', "field '[0]': expected a JSON object, found an int"),
    ],
)  # fmt: skip
def test_malformed_benchmark_files_name_the_field(
    tmp_path: Path, loader: object, content: str, message: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    with pytest.raises(InputFormatError, match=re.escape(message)):
        loader(bad)  # type: ignore[operator]


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


def test_exact_and_normalized_presence_and_stale_values_by_hand() -> None:
    items = (
        Message(role="user", text="My booking reference is qx 4471.", audio_ms=2000),
        Message(role="assistant", text="Noted.", audio_ms=500),
        Message(role="user", text="My phone number is 555 0101.", audio_ms=2000),
        Message(role="assistant", text="Saved.", audio_ms=500),
        Message(role="user", text="Sorry, it is 555 0199 now.", audio_ms=2000),
    )
    facts = (PlantedFact("code", 0, items[0].text, ("QX-4471",)),
             PlantedFact("updated", 4, items[4].text, ("555 0199",), ("555 0101",)))  # fmt: skip
    conv = BenchConversation("hand", items, facts, ("Reference?", "Number?"), "hand-made")
    row = run_one(conv, STRATEGIES["oracle"], get_model_profile("gpt-realtime"))
    # "QX-4471" is said as "qx 4471": kept once case and punctuation are ignored, not verbatim.
    assert (row["facts"], row["present"], row["present_normalized"], row["stale"]) == (2, 1, 2, 1)
    assert row["by_kind"] == {"code": {"facts": 1, "present": 0, "present_normalized": 1},
                              "updated": {"facts": 1, "present": 1, "present_normalized": 1}}  # fmt: skip
    report = StrategyReport("oracle", [row])
    summary = report.summary()
    assert summary["by_dataset"] == {"hand-made": 1.0}
    assert summary["by_dataset_exact"] == {"hand-made": 0.5}
    assert presence_table([summary]) == (["strategy", "code", "updated"],
                                         [["oracle", "100% (0%)", "100%"]])  # fmt: skip
    assert presence_table([summary], "dataset") == (["strategy", "hand-made"],
                                                    [["oracle", "100% (50%)"]])  # fmt: skip
    # Once the old number has gone, nothing stale is left, and the code has gone too.
    late = fact_presence(facts, items[3:])
    assert (late["present"], late["present_normalized"], late["stale"]) == (1, 1, 0)


def _compression(call, final, counter):
    texts = CallTexts.of(call, (), ())
    return texts.compression(entries(texts, final), counter)


def test_summary_compression_is_dropped_tokens_per_token_of_memory() -> None:
    counter = TokenCounter(get_model_profile("gpt-realtime"))
    call = _tiny().items
    memory = Message(role="system", text="Booking QX-4471; prefers the window seat.")
    final = (memory, *call[3:])
    dropped = sum(counter.text(i.text) for i in call[:3] if isinstance(i, Message))
    assert _compression(call, final, counter) == dropped / counter.text(memory.text)
    assert dropped / counter.text(memory.text) > 1
    assert _compression(call, call, counter) is None  # no summary, no ratio
    # The same words said twice and kept once: one of them is gone.
    again = Message(role="assistant", text="Sure.", audio_ms=500)
    twice = (*call, again)
    assert _compression(twice, final, counter) == (dropped + counter.text("Sure.")) / counter.text(
        memory.text
    )


def test_a_seeded_bench_gives_the_same_figures() -> None:
    """Golden values: one 60-minute voice-agent call and one chit-chat session, seed 0."""
    calls = synthetic(1, minutes=60, seed=0) + chitchat(1, minutes=60, seed=0)
    names = ["retention-0.8", "rolling-summary", "ledger", "rollover-summary", "oracle"]
    got = {
        s["strategy"]: (round(s["cost_usd"], 6), round(s["cache_hit"], 4), s["fact_presence"],
                        s["answerable"], s["stale"], s["compactions"], s["peak_tokens"],
                        s["by_dataset"])
        for s in (r.summary() for r in run_bench(calls, names))
    }  # fmt: skip
    assert got["retention-0.8"] == (5.580432, 0.9769, 1.0, 0.8125, 1.0, 0.0, 26660.0,
                                    {"voice-agent": 1.0, "chitchat": 1.0})  # fmt: skip
    # On chit-chat the history is full of names and numbers: the compactions fold it before
    # the server would have truncated anything. The summaries and the ledger weigh what the
    # caller stated above chit-chat filler (`sentence_values`): the ledger keeps 3 of the 8
    # chit-chat facts (none before), the rollover's summary all 8 (6 before).
    assert got["rolling-summary"] == (5.370213, 0.9737, 0.75, 0.75, 0.5, 1.0, 24656.0,
                                      {"voice-agent": 1.0, "chitchat": 0.5})  # fmt: skip
    assert got["ledger"] == (5.366882, 0.9737, 0.6875, 0.6875, 0.0, 1.0, 24656.0,
                             {"voice-agent": 1.0, "chitchat": 0.375})  # fmt: skip
    assert got["rollover-summary"] == (4.990832, 0.962, 1.0, 0.6875, 1.0, 0.0, 16438.5,
                                       {"voice-agent": 1.0, "chitchat": 1.0})  # fmt: skip
    oracle = got["oracle"]
    assert oracle[2:5] == (1.0, 0.8125, 1.0)
    assert math.isnan(oracle[0])


@settings(max_examples=4, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    name=st.sampled_from(["voice-agent", "support-call", "tool-heavy"]),
    minutes=st.floats(30, 70),
)
def test_every_strategy_stays_in_the_window_and_counts_sanely(
    seed: int, name: str, minutes: float
) -> None:
    profile = get_model_profile("gpt-realtime")
    limit = compute_budget(profile).input_limit
    (call,) = synthetic(1, minutes=minutes, seed=seed, workload_name=name)
    for strategy in STRATEGIES.values():
        row = run_one(call, strategy, profile)
        assert (
            0 <= row["present"] <= row["facts"] and 0 <= row["present_normalized"] <= row["facts"]
        )
        assert 0 <= row["answerable"] <= row["facts"]
        if strategy.oracle:
            assert row["present_normalized"] == row["facts"]
            continue
        assert row["peak_tokens"] <= limit, strategy.name
        assert 0 <= row["cache_hit"] <= 1, strategy.name
        assert row["cost_usd"] > 0


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
    assert "1 strategy keeps more facts than retention-0.8 (50.0%)" in text
    assert "Best: ledger, 90.0% of the facts at 1.10x the cost." in text
    assert "No strategy" in verdict([rows[0], rows[1]])


def test_run_bench_refuses_unknown_strategies_and_writes_csv(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="unknown bench strategy 'magic'; known: auto"):
        run_bench([_tiny()], ["magic"])
    reports = run_bench([_tiny()], ["ledger", "oracle"])
    path = write_rows([row for r in reports for row in r.rows], tmp_path / "rows.csv")
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    assert {"strategy", "cost_usd", "minutes", "facts_code", "present_preference"} <= set(header)
    # What was not measured (planning on the arrays, the oracle's cost) is an empty cell.
    cells = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
    assert "nan" not in path.read_text()
    assert cells[0]["compaction_ms"] == "" and cells[1]["cost_usd"] == ""


def test_the_command_line_runs_quick_and_reports_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "bench", "--quick", "--dataset", "voice-agent", "--minutes",
                             "15", "--strategies", "auto,retention-0.8,ledger,oracle", "--json")  # fmt: skip
    assert code == 0, err

    def strict(constant: str) -> None:
        raise AssertionError(f"not strict JSON: {constant}")

    data = json.loads(out, parse_constant=strict)
    assert data["strategies"][-1]["cost_usd"] is None  # the oracle runs no session
    assert [s["strategy"] for s in data["strategies"]] == ["auto", "retention-0.8", "ledger",
                                                          "oracle"]  # fmt: skip
    assert set(data["strategies"][0]) == {  # as docs/cli.md lists them
        "strategy", "conversations", "cost_usd", "cache_hit", "peak_tokens", "compactions",
        "sessions", "rollovers", "compaction_ms", "summary_fallbacks", "fact_presence", "fact_presence_exact",
        "answerable", "stale", "compression", "judged", "by_kind", "by_kind_exact",
        "by_dataset", "by_dataset_exact",
    }  # fmt: skip
    assert data["strategies"][-1]["fact_presence"] == 1.0
    assert all(s["conversations"] == 2 for s in data["strategies"])
    assert data["verdict"]
    code, _, err = run_cli(capsys, "bench", "--quick", "--strategies", "nope")
    assert code == 2
    assert "unknown bench strategy 'nope'" in err


class _ChatEndpoint(BaseHTTPRequestHandler):
    """A loopback stand-in for the Chat Completions endpoint (the real one needs the internet):
    answers yes when the expected answer is in the context it was sent; key "bad" is refused."""

    requests: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.headers["Authorization"] == "Bearer bad":
            self._reply(401, {"error": {"message": "Incorrect API key provided: bad.",
                                        "type": "invalid_request_error",
                                        "code": "invalid_api_key"}})  # fmt: skip
            return
        self.requests.append({"path": self.path, **body})
        if self.path.endswith("/responses"):  # a summary, for the --summarizer tier
            self._reply(200, {
                "id": "resp_1", "object": "response", "created_at": 0, "model": body["model"],
                "status": "completed", "parallel_tool_calls": False, "tool_choice": "auto",
                "tools": [], "output": [{"id": "msg_1", "type": "message", "role": "assistant",
                "status": "completed", "content": [{"type": "output_text", "annotations": [],
                                                    "text": "MODEL SUMMARY: booking QX-4471."}]}],
            })  # fmt: skip
            return
        context, _, rest = body["messages"][1]["content"].partition("\n\nQuestion: ")
        expected = rest.split("Expected answer: ")[1]
        answer = "Yes." if expected.lower() in context.lower() else "No"
        self._reply(200, {
            "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": answer}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
        })  # fmt: skip

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def chat_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _ChatEndpoint.requests = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.network_allowed
def test_the_judged_tier_asks_once_per_fact_and_counts_yes(chat_url: str) -> None:
    import openai

    from context_manager.bench.judge import OpenAIJudge

    client = openai.OpenAI(api_key="test", base_url=chat_url, max_retries=0)
    judge = OpenAIJudge(model="gpt-4.1-mini", client=client)
    conv = _tiny()
    assert judge.judge(conv, conv.items[2:]) == [False, True]
    assert judge.calls == 2
    request = _ChatEndpoint.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["model"] == "gpt-4.1-mini"
    assert request["max_completion_tokens"] == 4
    assert "Question: What is the booking reference?" in request["messages"][1]["content"]
    (report,) = run_bench([conv], ["auto"], judge=OpenAIJudge(client=client))
    assert report.rows[0]["judged"] == 2
    assert report.summary()["judged"] == 1.0


@pytest.mark.network_allowed
def test_a_refused_judge_stops_with_the_reason(chat_url: str) -> None:
    import openai

    from context_manager.bench.judge import OpenAIJudge

    judge = OpenAIJudge(client=openai.OpenAI(api_key="bad", base_url=chat_url, max_retries=0))
    with pytest.raises(JudgeError, match=r"judge model 'gpt-4.1-mini' failed on 'tiny' after 0 "
                                         r"answers: AuthenticationError: .*Incorrect API key"):  # fmt: skip
        judge.judge(_tiny(), _tiny().items)


def _long_tiny(turns: int = 12) -> BenchConversation:
    """`_tiny`'s facts, then small talk: a few hundred tokens, enough for a low trigger."""
    conv = _tiny()
    chat = tuple(
        Message(role=role, text=f"Turn {n}: just chatting about the weather.", audio_ms=3000)
        for n in range(turns)
        for role in ("user", "assistant")
    )
    return dataclasses.replace(conv, items=conv.items + chat)


_EARLY_SUMMARY = BenchStrategy(
    "early-summary", compaction=lambda: WhenCold(RollingSummary(trigger=0.02, keep=2), early=0.01)
)


@pytest.mark.network_allowed
def test_summaries_can_be_written_by_a_model_and_fall_back_when_it_fails(chat_url: str) -> None:
    import openai

    from context_manager.compaction.openai_summarizer import OpenAISummarizer

    profile = get_model_profile("gpt-realtime")

    def writer(key: str) -> Callable[[], OpenAISummarizer]:
        client = openai.OpenAI(api_key=key, base_url=chat_url, max_retries=0)
        return lambda: OpenAISummarizer(client=client, model="gpt-4.1-mini", retries=0)

    def memory(row_items: Sequence[Item]) -> list[str]:
        return [i.text for i in row_items if isinstance(i, Message) and i.role == "system"]

    extractive = run_one(_long_tiny(), _EARLY_SUMMARY, profile)
    modelled = run_one(_long_tiny(), _EARLY_SUMMARY, profile, summarizer=writer("test"))
    failing = run_one(_long_tiny(), _EARLY_SUMMARY, profile, summarizer=writer("bad"))
    assert extractive["compactions"] == modelled["compactions"] == failing["compactions"] >= 1
    assert (extractive["summary_fallbacks"], modelled["summary_fallbacks"]) == (0, 0)
    assert failing["summary_fallbacks"] == failing["compactions"]  # each one fell back
    asked = [r for r in _ChatEndpoint.requests if r["path"] == "/v1/responses"]
    assert len(asked) == modelled["compactions"]
    assert asked[0]["model"] == "gpt-4.1-mini"
    assert "QX-4471" in asked[0]["input"]  # the folded turns went to the model
    # The model's summary replaced the extractive one; the fallback wrote the extractive one.
    assert modelled["present"] == 1  # only the code: the model's summary drops the preference
    assert failing["present"] == extractive["present"]
    assert modelled["compression"] != extractive["compression"]


def test_with_summarizer_reaches_wrapped_strategies_and_leaves_others() -> None:
    def writer(items: Sequence[Item], budget: int, previous: str | None) -> str:
        return "x"

    cold = with_summarizer(WhenCold(RollingSummary()), writer)  # type: ignore[arg-type]
    assert cold.strategy.summarizer is writer
    assert with_summarizer(DropOldest(), writer) == DropOldest()  # type: ignore[arg-type]


def test_the_judged_tier_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from context_manager.bench.judge import OpenAIJudge

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="needs OPENAI_API_KEY"):
        OpenAIJudge()


@pytest.mark.parametrize(
    ("option", "message"),
    [("--judge", "the judged tier needs OPENAI_API_KEY"),
     ("--summarizer", "--summarizer needs OPENAI_API_KEY")],
)  # fmt: skip
def test_the_model_tiers_stop_before_running_without_a_key(
    capsys: pytest.CaptureFixture[str], option: str, message: str
) -> None:
    code, out, err = run_cli(capsys, "bench", "--quick", option, "gpt-4.1-mini")
    assert code == 2
    assert err.strip() == f"error: {message} (or a client)"
    assert out == ""


def test_plot_labels_share_a_point_and_never_overlap(tmp_path: Path) -> None:
    from context_manager.bench.report import _overlap, label_layout, plot_pareto

    cluster = [(0.10, 0.90, "a"), (0.105, 0.905, "b"), (0.12, 0.90, "c"), (0.10, 0.88, "d"),
               (0.13, 0.89, "e"), (0.60, 0.20, "far")]  # fmt: skip
    layout = label_layout(cluster)
    assert [names for names, *_ in layout] == [["b", "a"], ["c"], ["e"], ["d"], ["far"]]
    boxes = [box for _, _, box, _ in layout]
    assert not any(_overlap(a, b) for n, a in enumerate(boxes) for b in boxes[n + 1 :])
    assert all(b[1] >= 0 and b[3] <= 1 for b in boxes)
    assert layout[-1][3] is False and layout[0][3] is False  # alone or first: not moved
    assert any(moved for *_, moved in layout)  # the crowded ones moved, with a leader line
    rows = [
        {"strategy": "retention-0.8", "cost_usd": 1.0, "fact_presence": 0.5},
        {"strategy": "ledger", "cost_usd": 0.9, "fact_presence": 0.9},
        {"strategy": "oracle", "cost_usd": None, "fact_presence": 1.0},  # as JSON gives it
    ]
    out = plot_pareto(rows, tmp_path / "front.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _without_timings(reports: list[Any]) -> list[list[dict[str, Any]]]:
    return [[{k: v for k, v in row.items() if k != "compaction_ms"} for row in r.rows]
            for r in reports]  # fmt: skip


@pytest.mark.network_allowed
def test_the_bench_gives_the_same_rows_on_processes_and_on_a_dask_cluster() -> None:
    from concurrent.futures import ProcessPoolExecutor

    import distributed

    calls = synthetic(2, minutes=50, seed=1, workload_name="support-call")
    names = ["retention-0.8", "rolling-summary+cold", "ledger+summary", "rollover-ledger"]
    here = run_bench(calls, names)
    assert any(r["compactions"] for r in here[1].rows)  # the runs do compact
    with ProcessPoolExecutor(2) as pool:
        local = run_bench(calls, names, executor=pool)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                 dashboard_address="127.0.0.1:0") as cluster,
        distributed.Client(cluster) as client,
    ):  # fmt: skip
        remote = run_bench(calls, names, executor=client.get_executor())
    assert [r.strategy for r in local] == [r.strategy for r in remote] == names
    assert _without_timings(local) == _without_timings(remote) == _without_timings(here)
    with pytest.raises(ConfigurationError, match="run them without workers"):
        run_bench(calls, names, executor=pool, judge=object())


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--seeds", "a"], "--seeds takes comma-separated integers, got 'a'"),
     (["--seeds", ","], "--seeds needs at least one seed"),
     (["--calls", "0"], "Invalid value for '--calls': Input should be greater than or equal to 1"),
     (["--minutes", "-5"], "conversations need minutes > 0, got -5"),
     (["--dataset", ","], "no conversations to run: give a dataset or a file"),
     (["--workers", "0"], "--workers must be >= 1, got 0")],
)  # fmt: skip
def test_bad_bench_options_are_one_line_errors(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run_cli(capsys, "bench", "--strategies", "auto", *args)
    assert (code, out, err.strip()) == (2, "", f"error: {message}")
