"""Pieces of a batch: any slicing of a chunk's calls gives each call the same figures."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from context_manager import get_model_profile, get_provider_profile
from context_manager.compaction import parse_compaction
from context_manager.rollover import DEFAULT_ROLLOVER
from context_manager.server import SessionConfig, Truncation
from context_manager.simulate import batching, runner
from context_manager.simulate.batching import select, sub_batches
from context_manager.simulate.runner import chunk_tasks, run_calls, run_chunk
from context_manager.simulate.workloads import generate, workload

GPT = get_model_profile("gpt-realtime")
AZURE = get_provider_profile("azure")
CONFIG = SessionConfig(truncation=Truncation.parse("retention_ratio:0.8"))


def test_select_is_the_calls_of_the_batch() -> None:
    batch = generate(workload("tool-heavy", minutes=5), 9, np.random.default_rng(3))
    part = select(batch, 2, 6)
    assert len(part) == 4
    for n in range(4):
        # The same items; only function call ids name their call's place in the batch.
        def plain(items: list) -> list:
            return [(i.type, getattr(i, "text", None), getattr(i, "output", None), i.t)
                    for i in items]  # fmt: skip

        assert plain(part.items(n)) == plain(batch.items(n + 2))
    assert select(batch, 0, 9) is batch


def test_sub_batches_cover_every_call_once_within_the_item_bound() -> None:
    batch = generate(workload("voice-agent", minutes=10), 50, np.random.default_rng(1))
    ranges = sub_batches(batch, max_items=300)
    assert ranges[0][0] == 0 and ranges[-1][1] == 50
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    for start, stop in ranges:
        items = batch.offsets[stop] - batch.offsets[start]
        assert items <= 300 or stop == start + 1  # a call longer than the bound goes alone
    assert sub_batches(batch, max_items=1) == [(n, n + 1) for n in range(50)]


def test_sub_batch_size_never_changes_a_figure(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = workload("voice-agent", minutes=70)  # Azure: two rollovers per call
    seed = np.random.SeedSequence(5)
    whole = run_chunk(spec, 40, seed, GPT, AZURE, CONFIG, DEFAULT_ROLLOVER)
    monkeypatch.setattr(batching, "SUB_BATCH_ITEMS", 500)
    monkeypatch.setattr(runner, "sub_batches", lambda b: batching.sub_batches(b, 500))
    pieces = run_chunk(spec, 40, seed, GPT, AZURE, CONFIG, DEFAULT_ROLLOVER)
    for name in whole:
        assert np.array_equal(whole[name], pieces[name]), name


def test_parts_of_a_chunk_join_into_the_chunk() -> None:
    spec = workload("support-call", minutes=12)
    seed = np.random.SeedSequence(8)
    strategy = parse_compaction("rolling-summary:trigger=0.5")
    args = (GPT, AZURE, CONFIG, DEFAULT_ROLLOVER, "vectorized", None, strategy)
    whole = run_chunk(spec, 6, seed, *args)
    parts = [run_chunk(spec, 6, seed, *args, part=p) for p in ((0, 2), (2, 5), (5, 6))]
    for name in whole:
        assert np.array_equal(whole[name], np.concatenate([p[name] for p in parts])), name


def test_chunk_tasks_split_only_slow_work() -> None:
    spec = workload("voice-agent", minutes=5)
    fast = chunk_tasks(spec, 2500, 0, split=False)
    assert [(size, part) for size, _, part in fast] == [(1000, None), (1000, None), (500, None)]
    slow = chunk_tasks(spec, 60, 0, split=True)
    assert [part for _, _, part in slow] == [(0, 25), (25, 50), (50, 60)]
    assert all(size == 60 for size, _, _ in slow)


def test_a_compacting_run_on_workers_equals_the_run_in_process() -> None:
    from concurrent.futures import ProcessPoolExecutor

    spec = workload("support-call", minutes=10)
    strategy = parse_compaction("drop-oldest:trigger=0.3,target=0.2")
    local = run_calls(spec, 30, profile=GPT, seed=3, compaction=strategy)
    with ProcessPoolExecutor(2) as pool:
        spread = run_calls(spec, 30, profile=GPT, seed=3, compaction=strategy, executor=pool)
    for name in local.columns:
        assert np.array_equal(local.columns[name], spread.columns[name]), name
    assert local.totals()["compactions"] > 0


def test_generate_with_no_calls_is_an_empty_batch() -> None:
    batch = generate(workload("voice-agent"), 0, np.random.default_rng(1))
    assert len(batch) == 0 and list(batch.offsets) == [0]


@pytest.mark.parametrize(("env", "tuned"), [("65536", "True"), (None, "False"), ("x", "False")])
def test_the_allocator_is_tuned_only_under_an_eager_trim_threshold(
    env: str | None, tuned: str
) -> None:
    code = (
        "from context_manager.simulate.worker import tune_allocator, allocator_tuned;"
        "print(tune_allocator(), tune_allocator(), allocator_tuned())"
    )
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    if env is not None:
        environ["MALLOC_TRIM_THRESHOLD_"] = env
    out = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == [tuned, "False", tuned]


def test_simulate_spreads_large_work_over_the_cores_with_the_same_figures(capsys) -> None:
    from ..cli_runner import run_cli

    args = ["simulate", "--workload", "voice-agent", "--minutes", "30", "--calls", "3000",
            "--seed", "4", "--json"]  # fmt: skip
    code, one, _ = run_cli(capsys, *args, "--workers", "1")
    assert code == 0
    code, auto, _ = run_cli(capsys, *args)  # about 3 s of work on one core: both cores
    assert code == 0 and auto == one


def test_the_worker_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib

    from context_manager.cli import options

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    with contextlib.ExitStack() as stack:
        assert options._executor(stack, None, None, (1, 100.0)) is None  # one task
        assert options._executor(stack, None, None, (8, 0.5)) is None  # too little work
        pool = options._executor(stack, None, None, (8, 30.0))
        assert pool is not None and pool._max_workers == 2  # type: ignore[attr-defined]
        assert options._executor(stack, 1, None, (8, 30.0)) is None  # --workers overrides
