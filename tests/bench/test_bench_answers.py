"""The benchmark explains itself: long external files, strategies from anywhere, verdicts that
name no dominated strategy, summaries that keep what the caller said."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from context_manager.bench.report import format_table, print_report, verdict
from context_manager.bench.run import pareto_front, resolve_strategy
from context_manager.compaction import ExtractiveSummarizer, Ledger
from context_manager.errors import ConfigurationError
from context_manager.items import Message
from context_manager.profiles import get_model_profile
from context_manager.tokens import TokenCounter
from tests.cli_runner import run_cli

ROOT = Path(__file__).resolve().parents[2]
FACTS = [
    ("My sister Maria moved to Lisbon in March.", "Where did Maria move?", "Lisbon"),
    ("My locker code at the gym is 4471.", "What is the locker code?", "4471"),
    ("I adopted a beagle named Biscuit last spring.", "What is the dog's name?", "Biscuit"),
    ("I am allergic to shellfish, so no paella for me.", "What is the allergy?", "shellfish"),
]
FILLER = [
    "I went for a walk in the park today and the weather was lovely.",
    "That sounds nice, what else did you do this afternoon?",
    "We talked about books and music for a while, nothing special.",
    "Did you watch the game last night, it was quite exciting to see?",
]


def long_locomo(path: Path, sessions: int = 18) -> Path:
    """A LoCoMo-shaped file of about 97 minutes of speech, its facts in the first session."""
    convo: dict[str, Any] = {"speaker_a": "A", "speaker_b": "B"}
    qa = []
    for s in range(1, sessions + 1):
        turns = []
        for m in range(60):
            did = f"D{s}:{m + 1}"
            text = FILLER[(s * 7 + m) % len(FILLER)]
            if s == 1 and m in (2, 6, 10, 14):
                text, question, answer = FACTS[(m - 2) // 4]
                qa.append({"question": question, "answer": answer, "evidence": [did],
                           "category": 1})  # fmt: skip
            turns.append({"speaker": "A" if m % 2 == 0 else "B", "dia_id": did, "text": text})
        convo[f"session_{s}"] = turns
    path.write_text(json.dumps([{"sample_id": "long-1", "conversation": convo, "qa": qa}]))
    return path


def test_a_long_locomo_file_alone_is_scored_by_what_summaries_keep(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Past the 60-minute session the call rolls over; the summary strategies carry their
    own summary or ledger across it (they kept 0 % when the seed was recent turns only)."""
    data = long_locomo(tmp_path / "long.json")
    names = "retention-0.8,rolling-summary,rolling-summary+cold,ledger,rollover-recent,oracle"
    code, out, err = run_cli(capsys, "bench", "--locomo", str(data), "--strategies", names,
                             "--json")  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    assert result["calls"]["count"] == 1  # the file alone: no default dataset ran
    assert result["calls"]["minutes"]["min"] > 60
    by = {s["strategy"]: s for s in result["strategies"]}
    for name in ("rolling-summary", "ledger"):
        assert by[name]["rollovers"] == 1.0
        assert by[name]["fact_presence"] == 1.0
    assert by["rollover-recent"]["fact_presence"] == 0.0  # recent turns alone forget them
    # Identical figures are one point on the front, never two.
    assert "rolling-summary = rolling-summary+cold" in result["pareto_front"] or not any(
        "rolling-summary" in p for p in result["pareto_front"]
    )
    code, out, err = run_cli(capsys, "bench", "--locomo", str(data), "--strategies", names)
    assert code == 0, err
    assert "1 call of 97 min" in out and "rollovers" in out


def test_the_published_zip_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = long_locomo(tmp_path / "locomo10.json", sessions=2)
    with zipfile.ZipFile(tmp_path / "locomo10.zip", "w") as archive:
        archive.write(data, "locomo10/locomo10.json")
    code, out, err = run_cli(capsys, "bench", "--locomo", str(tmp_path / "locomo10.zip"),
                             "--strategies", "retention-0.8", "--json")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["calls"]["count"] == 1


class Boom:
    """A researcher's strategy with a bug: its plan raises."""

    name = "boom"

    def plan(self, context: object) -> None:
        raise ValueError("a bug in the researcher's code, quoting nothing")


def test_a_ledger_keeps_its_facts_across_rollovers(capsys: pytest.CaptureFixture[str]) -> None:
    """A ledger strategy's new session starts from its seed: the next fold keeps the seed's
    lines (they were dropped as a foreign system item)."""
    for compaction in ("ledger", "rolling-summary"):
        code, out, err = run_cli(capsys, "simulate", "--workload", "tool-heavy", "--minutes",
                                 "60", "--calls", "4", "--provider", "azure", "--compaction",
                                 compaction, "--facts", "--json")  # fmt: skip
        assert code == 0, err
        data = json.loads(out)
        assert data["rollovers"] == 4 and data["fact_presence"] > 0.9, (compaction, data)


def summary(name: str, cost: float, facts: float) -> dict[str, Any]:
    return {"strategy": name, "cost_usd": cost, "fact_presence": facts}


def test_the_verdict_and_the_front_never_name_a_dominated_strategy() -> None:
    rows = [
        summary("retention-0.8", 5.0, 0.60),
        summary("rolling-summary", 5.2, 0.90),  # dominated by ledger+summary
        summary("ledger+summary", 5.1, 0.90),
        summary("ledger", 4.9, 0.85),
        summary("twin", 4.9, 0.85),  # identical to ledger
        summary("oracle", float("nan"), 1.0),
    ]
    assert pareto_front(rows) == ["ledger+summary", "ledger = twin"]
    text = verdict(rows)
    assert "rolling-summary" not in text.split("(")[0]
    assert "Best: ledger+summary, 90.0%" in text
    assert "1 more also do" in text


def test_a_strategy_from_a_module_or_an_entry_point(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    strategy = resolve_strategy("my_strategy:KeepFacts")
    assert strategy.name == "my_strategy:KeepFacts" and strategy.compaction is not None
    # An installed package's entry point, by name (a dist-info on the path is installed).
    dist = tmp_path / "lab_strategies-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: lab-strategies\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[context_manager.bench_strategies]\nkeep-facts = my_strategy:KeepFacts\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert resolve_strategy("keep-facts").compaction is not None
    code, out, err = run_cli(capsys, "bench", "--quick", "--dataset", "voice-agent", "--minutes",
                             "15", "--strategies", "retention-0.8,keep-facts", "--json")  # fmt: skip
    assert code == 0, err
    assert [s["strategy"] for s in json.loads(out)["strategies"]] == ["retention-0.8",
                                                                     "keep-facts"]  # fmt: skip
    code, out, err = run_cli(capsys, "simulate", "--conversation", "examples/conversation.jsonl",
                             "--compaction", "my_strategy:KeepFacts", "--json")  # fmt: skip
    assert code == 0, err
    for bad, message in (("nosuchmodule:X", "cannot import 'nosuchmodule'"),
                         ("my_strategy:Nope", "has no attribute 'Nope'"),
                         ("json:dumps", "is not a compaction strategy")):  # fmt: skip
        with pytest.raises(ConfigurationError, match=message):
            resolve_strategy(bad)
    assert "json" in sys.modules  # a real import, not a lookalike


def test_the_report_prints_its_own_tables(capsys: pytest.CaptureFixture[str]) -> None:
    from context_manager.bench import load_datasets
    from context_manager.bench.run import run_bench

    reports = run_bench(load_datasets(["voice-agent"], count=1, minutes=10), ["retention-0.8"])
    print_report([r.summary() for r in reports])
    out = capsys.readouterr().out
    assert out.startswith("strategies\nstrategy") and "facts kept by dataset" in out
    assert format_table(["a", "bb"], [["x", "1"], ["yy", "22"]]) == "a   bb\n--  --\nx    1\nyy  22"


def test_the_caller_s_words_outrank_acknowledgements_and_repeats() -> None:
    """The issue's case: acknowledgements that echo the caller's codes crowded them out."""
    items = []
    for n in range(12):
        items.append(Message(role="user", text=f"My booking code is B{n:02d}Q{n}X."))
        items.append(Message(role="assistant", text=f"Ack B{n:02d}Q{n}X."))
    text = ExtractiveSummarizer(recency=0.0).summarize(items, budget_tokens=60)
    assert "Ack" not in text
    assert text.count("User: My booking code is") >= 4
    ledger = Ledger()
    counter = TokenCounter(get_model_profile("gpt-realtime"))
    kept = ledger.text(ledger.facts(items, None), counter, 60)
    assert "Ack" not in kept and kept.count("My booking code is") >= 4
