"""Sweeps that answer the question: totals, percentiles, the cost split, 95 % intervals, and
"cheapest" only beyond the interval (hand-checked statistics, seeded sweeps)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from context_manager import get_model_profile, get_provider_profile
from context_manager.server import Truncation
from context_manager.simulate.stats import mean_interval, paired_difference, percentiles
from context_manager.simulate.sweep import ROW_KEYS, SPLIT_KEYS, sweep
from context_manager.simulate.workloads import workload
from tests.cli_runner import run_cli

GPT = get_model_profile("gpt-realtime")


def test_statistics_by_hand() -> None:
    # Mean 2.5, sample sd 1.29099, t(3) = 3.182: half-width 3.182 * 1.29099 / 2 = 2.05397.
    mean, low, high = mean_interval(np.array([1.0, 2.0, 3.0, 4.0]))
    assert (mean, round(low, 4), round(high, 4)) == (2.5, 0.446, 4.554)
    assert mean_interval(np.array([7.0])) == (7.0, 7.0, 7.0)
    assert mean_interval(np.full(1000, 3.0)) == (3.0, 3.0, 3.0)
    # Past 30 degrees of freedom the normal's 1.96.
    values = np.arange(100.0)
    half = 1.96 * values.std(ddof=1) / 10
    assert mean_interval(values)[2] == pytest.approx(49.5 + half)
    assert percentiles(np.arange(101.0)) == {"p50": 50.0, "p95": 95.0, "p99": 99.0}
    # Paired: a constant difference is certain whatever the spread of each side.
    a = np.array([1.0, 5.0, 9.0])
    assert paired_difference(a + 0.25, a) == (0.25, 0.25, 0.25)


def rows(truncations: list[str], calls: int = 40, seed: int = 3) -> list[dict]:
    return sweep(
        workload("voice-agent", minutes=20),
        calls,
        models=[GPT],
        providers=[get_provider_profile("openai")],
        truncations=[Truncation.parse(t) for t in truncations],
        seed=seed,
    )


def test_a_row_totals_splits_and_bounds_its_cost() -> None:
    (row,) = rows(["auto"])
    assert row["cost_usd_total"] == pytest.approx(row["cost_usd_per_call"] * 40)
    assert sum(row["cost_split_usd_per_call"].values()) == pytest.approx(row["cost_usd_per_call"])
    assert set(row["cost_split_usd_per_call"]) == set(SPLIT_KEYS)
    low, high = row["cost_usd_per_call_ci95"]
    assert low < row["cost_usd_per_call"] < high
    p = row["cost_usd_per_call_percentiles"]
    assert p["p50"] <= p["p95"] <= p["p99"]
    assert row["totals"]["responses"] == pytest.approx(row["responses_per_call"] * 40)
    for low, high in row["intervals_95"].values():
        assert low <= high
    assert row["cheapest"] and not row["tied_with_cheapest"]  # alone: cheapest of one


def test_identical_settings_are_a_tie_not_a_cheapest() -> None:
    tied = rows(["retention_ratio:0.8", "retention_ratio:0.8"])
    assert [r["cheapest"] for r in tied] == [False, False]
    assert [r["tied_with_cheapest"] for r in tied] == [True, True]
    assert tied[1]["vs_cheapest_usd_per_call"] == {"mean": 0.0, "low": 0.0, "high": 0.0}


def test_a_clear_difference_names_the_cheapest() -> None:
    # 60-minute calls: auto truncates every response near the limit, 0.5 once in a while.
    found = sweep(
        workload("support-call", minutes=60), 20, models=[GPT],
        providers=[get_provider_profile("openai")],
        truncations=[Truncation.parse(t) for t in ("auto", "retention_ratio:0.5")], seed=1,
    )  # fmt: skip
    assert [r["cheapest"] for r in found] == [False, True]
    assert found[0]["vs_cheapest_usd_per_call"]["low"] > 0


def test_the_command_line_shows_the_same_in_json_csv_and_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["sweep", "--workload", "voice-agent", "--minutes", "10", "--sessions", "30",
            "--truncation", "auto,auto"]  # fmt: skip
    code, out, err = run_cli(capsys, *args, "--json", "--csv", str(tmp_path / "r.csv"))
    assert code == 0, err
    data = json.loads(out)["rows"]
    with (tmp_path / "r.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert list(table[0]) == list(ROW_KEYS)
    assert [r["tied_with_cheapest"] for r in table] == ["True", "True"]
    assert float(table[0]["cost_usd_per_call_p95"]) == pytest.approx(
        data[0]["cost_usd_per_call_percentiles"]["p95"]
    )
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    assert "tied for cheapest, 2 rows" in out and "* cheapest" not in out
