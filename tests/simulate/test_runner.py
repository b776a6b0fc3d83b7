"""Runs at scale: golden values, executors, a real Dask cluster, the command line."""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from context_manager import get_model_profile, get_provider_profile
from context_manager.server import SessionConfig, Truncation
from context_manager.simulate.runner import run_calls
from context_manager.simulate.sweep import sweep
from context_manager.simulate.worker import allocator_tuned
from context_manager.simulate.workloads import workload

from ..cli_runner import run_cli

GPT = get_model_profile("gpt-realtime")


def test_golden_values_of_a_seeded_run() -> None:
    """A small seeded run; these numbers change only if the model or the workload changes."""
    config = SessionConfig(
        instructions="You are a travel concierge.",
        truncation=Truncation.parse("retention_ratio:0.8"),
    )
    run = run_calls(
        workload("voice-agent", minutes=40),
        25,
        profile=GPT,
        provider="azure",
        config=config,
        seed=2026,
    )
    t = run.totals()
    assert (t["calls"], t["responses"], t["rollovers"], t["truncations"]) == (
        25,
        GOLDEN["responses"],
        25,
        0,
    )
    assert t["input_tokens"] == GOLDEN["input_tokens"]
    assert t["cached_tokens"] == GOLDEN["cached_tokens"]
    assert t["cost_usd"] == pytest.approx(GOLDEN["cost_usd"], abs=1e-6)
    reference = run_calls(
        workload("voice-agent", minutes=40),
        25,
        profile=GPT,
        provider="azure",
        config=config,
        seed=2026,
        path="reference",
    )
    assert reference.totals()["cached_tokens"] == t["cached_tokens"]
    assert reference.totals()["cost_usd"] == pytest.approx(t["cost_usd"], rel=1e-12)


GOLDEN = {
    "responses": 5496,
    "input_tokens": 38_818_663,
    "cached_tokens": 37_042_304,
    "cost_usd": 90.0317296,
}


def test_process_pool_gives_the_same_run() -> None:
    spec = workload("tool-heavy", minutes=15)
    local = run_calls(spec, 2500, profile=GPT, seed=9)  # three chunks
    with ProcessPoolExecutor(2) as pool:
        spread = run_calls(spec, 2500, profile=GPT, seed=9, executor=pool)
    for name in local.columns:
        assert (local.columns[name] == spread.columns[name]).all(), name


@pytest.mark.network_allowed
def test_sweep_on_a_dask_localcluster_equals_the_local_sweep() -> None:
    distributed = pytest.importorskip("distributed")
    grid = {
        "models": [GPT],
        "providers": [get_provider_profile("openai"), get_provider_profile("azure")],
        "truncations": [Truncation.parse("auto"), Truncation.parse("retention_ratio:0.8")],
    }
    spec = workload("voice-agent", minutes=45)
    local = sweep(spec, 1200, seed=4, **grid)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        remote = sweep(spec, 1200, seed=4, executor=client.get_executor(), **grid)
        # The nanny's eager MALLOC_TRIM_THRESHOLD_ was undone in every worker that simulated.
        tuned = client.run(allocator_tuned)
    assert remote == local
    assert list(tuned.values()) == [True, True]
    assert len(local) == 4
    assert {r["provider"] for r in local} == {"openai", "azure"}
    azure = [r for r in local if r["provider"] == "azure"]
    assert all(r["rollovers_per_call"] == 1.0 for r in azure)


def test_simulate_a_workload_json(capsys, tmp_path: Path) -> None:
    plot = tmp_path / "call.png"
    code, out, err = run_cli(
        capsys,
        "simulate",
        "--workload",
        "voice-agent",
        "--minutes",
        "40",
        "--calls",
        "30",
        "--seed",
        "1",
        "--provider",
        "azure",
        "--json",
        "--plot",
        str(plot),
    )
    assert code == 0, err
    data = json.loads(out)
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
        "calls",
        "rollovers",
    ):
        assert key in data
    assert (data["calls"], data["rollovers"]) == (30, 30)
    assert data["per_call"]["cost_usd"] == pytest.approx(data["cost_usd"] / 30)
    assert plot.stat().st_size > 10_000 and plot.read_bytes()[:4] == b"\x89PNG"


def test_simulate_errors(capsys) -> None:
    code, _, err = run_cli(capsys, "simulate")
    assert code == 2 and "give --conversation FILE or --workload NAME" in err
    code, _, err = run_cli(capsys, "simulate", "--workload", "voice-agent", "--param", "speed=2")
    assert code == 2 and "unknown workload parameter(s) speed" in err
    code, _, err = run_cli(capsys, "simulate", "--workload", "voice-agent", "--rollover", "later")
    assert code == 2 and "bad rollover 'later'" in err


def test_sweep_json_csv_and_plot(capsys, tmp_path: Path) -> None:
    csv_path, plot = tmp_path / "rows.csv", tmp_path / "sweep.png"
    code, out, err = run_cli(
        capsys,
        "sweep",
        "--workload",
        "voice-agent",
        "--minutes",
        "30",
        "--calls",
        "50",
        "--truncation",
        "auto,retention_ratio:0.5",
        "--provider",
        "openai,azure",
        "--csv",
        str(csv_path),
        "--plot",
        str(plot),
        "--json",
    )
    assert code == 0, err
    rows = json.loads(out)["rows"]
    assert len(rows) == 4
    for row in rows:
        assert {
            "truncation",
            "provider",
            "model",
            "cost_usd_per_call",
            "cache_hit_ratio",
            "truncations_per_call",
            "rollovers_per_call",
        } <= set(row)
    lines = csv_path.read_text().splitlines()
    assert lines[0].startswith("model,provider,truncation,compaction,calls,cost_usd_per_call")
    assert len(lines) == 5
    assert plot.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--truncation", ","], "the sweep's truncations are empty: give at least one"),
     (["--model", ","], "the sweep's models are empty: give at least one"),
     (["--calls", "-3"], "Invalid value for '--calls' / '--sessions': Input should be greater"
      " than or equal to 1")],
)  # fmt: skip
def test_an_empty_sweep_is_a_one_line_error(capsys, args: list[str], message: str) -> None:
    code, out, err = run_cli(capsys, "sweep", "--workload", "voice-agent", "--minutes", "5",
                             "--calls", "2", *args)  # fmt: skip
    assert (code, out, err.strip()) == (2, "", f"error: {message}")


@pytest.mark.network_allowed
def test_an_unreachable_dask_scheduler_is_a_one_line_error(capsys) -> None:
    code, _, err = run_cli(capsys, "sweep", "--workload", "voice-agent", "--minutes", "5",
                           "--calls", "2", "--dask-scheduler", "127.0.0.1:1")  # fmt: skip
    assert code == 2
    assert err.startswith("error: cannot reach the Dask scheduler at '127.0.0.1:1': ")
    assert "\n" not in err.strip()
