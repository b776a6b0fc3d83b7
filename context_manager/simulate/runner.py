"""Running many simulated calls: chunks, seeds, paths and executors.

`run_calls` draws N calls of a workload in chunks of `CHUNK_CALLS`, each chunk from its
own child of ``numpy.random.SeedSequence(seed)``, so a seeded run gives the same calls however
its chunks are spread over processes or a Dask cluster. Each chunk runs on the vectorized path
(calls it cannot run exactly go to the reference path) or, on request, on the reference path.
Any ``concurrent.futures.Executor`` can run the chunks: a ``ProcessPoolExecutor`` for local
workers, ``distributed.Client(address).get_executor()`` for a Dask cluster.

>>> from context_manager.profiles import get_model_profile
>>> from context_manager.simulate.workloads import workload
>>> profile = get_model_profile("gpt-realtime")
>>> run = run_calls(workload("voice-agent", minutes=5), 20, profile=profile, seed=1)
>>> run.calls, run.totals()["rollovers"]
(20, 0)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np

from ..compaction.strategies import CompactionStrategy
from ..compaction.summarizers import ExtractiveSummarizer
from ..errors import ConfigurationError
from ..items import Message
from ..profiles import ModelProfile, ProviderProfile, get_provider_profile
from ..rollover import DEFAULT_ROLLOVER, RolloverPolicy
from ..server import SessionConfig
from .batching import select, sub_batches
from .compacting import SummaryRule, vector_rule
from .facts import fact_presence, outside_filler
from .reference import SimulationResult, simulate_call
from .vectorized import simulate_batch
from .worker import tune_allocator
from .workloads import CallBatch, WorkloadSpec, generate

__all__ = [
    "CHUNK_CALLS",
    "RunResult",
    "chunk_tasks",
    "estimated_seconds",
    "map_tasks",
    "reference_bound",
    "run_calls",
    "run_chunk",
]

T = TypeVar("T")


def map_tasks(
    fn: Callable[..., T],
    tasks: Sequence[tuple[Any, ...]],
    executor: Executor | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[T]:
    """``fn(*task)`` for every task, results in task order: in this process, or on `executor`.

    `executor` is any `concurrent.futures.Executor`: local processes, or a Dask cluster's
    (``distributed.Client(address).get_executor()``); `fn` and the tasks must then pickle.
    `progress` is called as ``progress(done, total)``, first with 0.
    """
    if progress is not None:
        progress(0, len(tasks))
    results: list[T] = []
    if executor is None:
        for task in tasks:
            results.append(fn(*task))
            if progress is not None:
                progress(len(results), len(tasks))
        return results
    futures = [executor.submit(fn, *task) for task in tasks]
    for future in futures:
        results.append(future.result())
        if progress is not None:
            progress(len(results), len(tasks))
    return results


CHUNK_CALLS = 1000
"""Calls per chunk: the unit of seeding and of parallel work (changing it changes the calls)."""
MODALITY_TOKENS = (
    "input_text", "input_audio", "cached_text", "cached_audio", "output_text", "output_audio",
)  # fmt: skip
"""Per-call token columns by modality (input counts cached tokens too): the cost split."""

Path = Literal["vectorized", "reference"]

_SUMMED = (
    "responses", "input_tokens", "cached_tokens", "output_tokens", "truncations",
    "dropped_items", "rollovers", "rollover_seed_tokens", "session_expired", "compactions",
    "facts", "facts_present", "facts_present_normalized", "stale_values",
    *MODALITY_TOKENS,
)  # fmt: skip


@dataclass(slots=True)
class RunResult:
    """Per-call totals of a run (one entry per simulated call), and its settings."""

    model: str
    provider: str
    truncation: str
    workload: str
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    first: SimulationResult | None = None
    """The first call on the reference path, response by response (for plots)."""

    @property
    def calls(self) -> int:
        """How many calls were simulated."""
        return len(self.columns.get("responses", ()))

    def totals(self) -> dict[str, Any]:
        """Sums over all calls, with the keys of the single-call output, plus means per call."""
        c = self.columns
        n = max(self.calls, 1)
        input_tokens = int(c["input_tokens"].sum())
        cached = int(c["cached_tokens"].sum())
        cost = float(c["cost_usd"].sum())
        out: dict[str, Any] = {
            "model": self.model,
            "provider": self.provider,
            "truncation": self.truncation,
            "workload": self.workload,
            "calls": self.calls,
        }
        for name in _SUMMED:
            out[name] = int(c[name].sum())
        out["session_expired"] = out.pop("session_expired")
        out["tokens_by_modality"] = {name: out.pop(name) for name in MODALITY_TOKENS}
        out["cache_hit_ratio"] = cached / input_tokens if input_tokens else 0.0
        out["cost_usd"] = cost
        out["cost_usd_by_modality"] = {
            "text": float(c["cost_text"].sum()),
            "audio": float(c["cost_audio"].sum()),
            "image": 0.0,
        }
        out["rollover_cost_usd"] = float(c["rollover_cost"].sum())
        out["overflows"] = int(c["overflows"].sum())
        if out["facts"]:
            out["fact_presence"] = out["facts_present_normalized"] / out["facts"]
            out["fact_presence_exact"] = out["facts_present"] / out["facts"]
        out["per_call"] = {
            "cost_usd": cost / n,
            "responses": out["responses"] / n,
            "input_tokens": input_tokens / n,
            "cached_tokens": cached / n,
            "truncations": out["truncations"] / n,
            "rollovers": out["rollovers"] / n,
        }
        return out


def _from_reference(result: SimulationResult) -> dict[str, float]:
    t = result.totals()
    return {
        "responses": t["responses"],
        "input_tokens": t["input_tokens"],
        "cached_tokens": t["cached_tokens"],
        "output_tokens": t["output_tokens"],
        "truncations": t["truncations"],
        "dropped_items": t["dropped_items"],
        "rollovers": t["rollovers"],
        "rollover_seed_tokens": t["rollover_seed_tokens"],
        "session_expired": int(t["session_expired"]),
        "overflows": t["overflows"],
        "cost_usd": t["cost_usd"],
        "cost_text": t["cost_usd_by_modality"]["text"],
        "cost_audio": t["cost_usd_by_modality"]["audio"],
        "rollover_cost": t["rollover_cost_usd"],
        "compactions": t["compactions"],
        **{
            f"{kind}_{m}": sum(getattr(getattr(r.usage, kind), m) for r in result.responses)
            for kind in ("input", "cached", "output")
            for m in ("text", "audio")
        },
    }


_last_batch: tuple[tuple[Any, ...], CallBatch] | None = None


def _generated(spec: WorkloadSpec, calls: int, seed: np.random.SeedSequence | None) -> CallBatch:
    """The chunk's calls, drawn once per process (its slices are often tasks of one worker)."""
    global _last_batch
    key = (spec, calls, seed.entropy, seed.spawn_key, seed.pool_size) if seed is not None else None
    if key is not None and _last_batch is not None and _last_batch[0] == key:
        return _last_batch[1]
    batch = generate(spec, calls, np.random.default_rng(seed))
    if key is not None:
        _last_batch = (key, batch)
    return batch


def reference_bound(
    path: Path,
    rollover: RolloverPolicy | None,
    compaction: CompactionStrategy | None,
    facts: bool,
) -> bool:
    """Whether calls run one by one on the reference path, not a chunk at once.

    They do under a compaction the arrays cannot run (`compacting.vector_rule`), a seed
    summarized by anything but the extractive summarizer, `facts` whose values filler words
    could spell (`facts.outside_filler`), or when asked. (Calls from files summarize on the
    arrays too, through the summarizer itself; the few the arrays cannot follow exactly,
    `simulate_batch` hands back.)
    """
    rule = vector_rule(compaction, 1) if compaction is not None else None
    arrays = compaction is None or rule is not None
    # A seed summarizes with the summary carry, or with a compaction's summary to carry.
    summarizes = rollover is not None and (
        rollover.carry == "summary" or isinstance(rule, SummaryRule))  # fmt: skip
    extractive = rollover is None or type(rollover.summarizer) in (type(None), ExtractiveSummarizer)
    arrays_seed = rollover is None or rollover.carry == "ledger" or not summarizes or extractive
    return path == "reference" or not arrays or facts or not arrays_seed


def run_chunk(
    spec: WorkloadSpec,
    calls: int,
    seed: np.random.SeedSequence | None,
    profile: ModelProfile,
    provider: ProviderProfile,
    config: SessionConfig,
    rollover: RolloverPolicy | None,
    path: Path = "vectorized",
    batch: CallBatch | None = None,
    compaction: CompactionStrategy | None = None,
    part: tuple[int, int] | None = None,
) -> dict[str, np.ndarray]:
    """Simulate one chunk of calls (or the calls `part` of it); per-call columns.

    A top-level function, so it pickles. What the arrays cannot run (`reference_bound`: fact
    presence, a summarizer other than the extractive one) goes to the reference path; the
    vectorized path takes the calls in sub-batches (`SUB_BATCH_ITEMS`), so memory does not grow
    with the calls' length.
    """
    tune_allocator()  # in a Dask worker: large arrays reused, not faulted in again
    if batch is None:
        # A part's chunk is drawn once per process (its other parts often come to the same
        # worker); a whole chunk is drawn and let go.
        batch = (
            _generated(spec, calls, seed)
            if part is not None
            else generate(spec, calls, np.random.default_rng(seed))
        )
    if part is not None:
        batch = select(batch, *part)
    n = len(batch)
    columns = {name: np.zeros(n) for name in (*_SUMMED, "overflows", "cost_usd", "cost_text",
                                               "cost_audio", "rollover_cost")}  # fmt: skip
    todo: list[int] = list(range(n))
    # Calls from files hold no filler: the arrays read their facts in their items' own texts.
    facts = bool(batch.facts) and batch.source_items is None and not outside_filler(batch)
    if not reference_bound(path, rollover, compaction, facts):
        todo = []
        for start, stop in sub_batches(batch):
            sub = select(batch, start, stop)
            result = simulate_batch(
                sub, profile, provider, config=config, rollover=rollover,
                compaction=compaction, final=bool(batch.facts),
            )  # fmt: skip
            for call, held in enumerate(result.final or ()):
                if call not in result.fallback:  # what the session holds that holds facts
                    said = [Message(role="system", text=text) for text in held]
                    _presence(columns, start + call, fact_presence(sub.facts[call], said))
            t = result.totals
            for name in _SUMMED:
                if name in t:
                    columns[name][start:stop] = t[name]
            columns["cost_text"][start:stop] = t["cost_text"]
            columns["cost_audio"][start:stop] = t["cost_audio"]
            columns["cost_usd"][start:stop] = t["cost_text"] + t["cost_audio"]
            columns["rollover_cost"][start:stop] = t["rollover_cost"]
            todo.extend(start + c for c in result.fallback)
    for call in todo:
        ref = simulate_call(
            batch.items(call), profile, provider, config=config, rollover=rollover,
            compaction=compaction,
        )  # fmt: skip
        for name, value in _from_reference(ref).items():
            columns[name][call] = value
        if batch.facts:
            _presence(columns, call, fact_presence(batch.facts[call], ref.final_items))
    return columns


def _presence(columns: dict[str, np.ndarray], call: int, presence: dict[str, Any]) -> None:
    columns["facts"][call] = presence["facts"]
    columns["facts_present"][call] = presence["present"]
    columns["facts_present_normalized"][call] = presence["present_normalized"]
    columns["stale_values"][call] = presence["stale"]


REFERENCE_TASK_CALLS = 25
"""Calls per task on the reference path: small enough to keep every worker busy."""

SECONDS_PER_CALL_MINUTE = {"vectorized": 3.5e-5, "reference": 6e-3}
"""About what one simulated call-minute costs on each path (one core of this machine's kind;
`benchmarks/bench_simulator.py`), for deciding whether worker processes pay for themselves."""


def chunk_tasks(
    spec: WorkloadSpec, calls: int, seed: int, split: bool
) -> list[tuple[int, np.random.SeedSequence, tuple[int, int] | None]]:
    """The (chunk size, chunk seed, part) of every task of a run of `calls` calls.

    Chunks of `CHUNK_CALLS` calls each draw from their own child seed; with `split` (slow,
    reference-bound work) each chunk is cut into parts of `REFERENCE_TASK_CALLS` calls.
    """
    out: list[tuple[int, np.random.SeedSequence, tuple[int, int] | None]] = []
    chunks = (calls + CHUNK_CALLS - 1) // CHUNK_CALLS
    for n, child in enumerate(np.random.SeedSequence(seed).spawn(chunks)):
        size = min(CHUNK_CALLS, calls - n * CHUNK_CALLS)
        if not split:
            out.append((size, child, None))
            continue
        for start in range(0, size, REFERENCE_TASK_CALLS):
            out.append((size, child, (start, min(start + REFERENCE_TASK_CALLS, size))))
    return out


def estimated_seconds(spec: WorkloadSpec, calls: int, reference: bool) -> float:
    """Roughly how long `calls` calls of `spec` take on one core."""
    rate = SECONDS_PER_CALL_MINUTE["reference" if reference else "vectorized"]
    return calls * spec.minutes * rate


def run_calls(
    spec: WorkloadSpec,
    calls: int,
    *,
    profile: ModelProfile,
    provider: ProviderProfile | str = "openai",
    config: SessionConfig | None = None,
    rollover: RolloverPolicy | None = DEFAULT_ROLLOVER,
    seed: int = 0,
    path: Path = "vectorized",
    executor: Executor | None = None,
    progress: Callable[[int, int], None] | None = None,
    batch: CallBatch | None = None,
    keep_first: bool = False,
    compaction: CompactionStrategy | None = None,
) -> RunResult:
    """Simulate `calls` calls of `spec` and return their per-call totals.

    Args:
        spec: the workload.
        calls: how many calls.
        profile: the model profile.
        provider: the provider (sets the session limit).
        config: instructions, tools and truncation.
        rollover: how a new session is seeded at the limit (``None``: the call ends).
        seed: the run's seed (the same seed gives the same calls and figures).
        path: ``vectorized`` (with reference fallback) or ``reference``.
        executor: runs the chunks (``None``: in this process).
        progress: called as ``progress(chunks_done, chunks)``.
        batch: run these calls instead of drawing `calls` new ones.
        keep_first: also run the first session on the reference path, response by response.
        compaction: a client-side compaction strategy (built-in ones with the extractive
            summarizer run on the vectorized path, `reference_bound`).
    """
    if calls < 0:
        raise ConfigurationError(f"the number of calls must be >= 0, got {calls}")
    if path not in ("vectorized", "reference"):
        raise ConfigurationError(f"path must be vectorized or reference, got {path!r}")
    provider = get_provider_profile(provider) if isinstance(provider, str) else provider
    config = config or SessionConfig()
    tasks: list[tuple[Any, ...]] = []
    if batch is not None:
        tasks.append((spec, len(batch), np.random.SeedSequence(seed), profile, provider, config,
                      rollover, path, batch, compaction))  # fmt: skip
    else:
        facts = bool(spec.facts) and not outside_filler(spec)
        split = executor is not None and reference_bound(path, rollover, compaction,
                                                          facts)  # fmt: skip
        for size, child, part in chunk_tasks(spec, calls, seed, split):
            tasks.append((spec, size, child, profile, provider, config, rollover, path, None,
                          compaction, part))  # fmt: skip
    parts = map_tasks(run_chunk, tasks, executor, progress)
    columns = {name: np.concatenate([p[name] for p in parts]) if parts else np.zeros(0)
               for name in (parts[0] if parts else {"responses": 0, "input_tokens": 0,
                            "cached_tokens": 0, "cost_usd": 0})}  # fmt: skip
    result = RunResult(profile.name, provider.name, str(config.truncation), spec.name, columns)
    if keep_first and (batch is not None or calls > 0):
        first_batch = (
            batch
            if batch is not None
            else generate(
                spec,
                min(CHUNK_CALLS, calls),
                np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0]),
            )
        )
        result.first = simulate_call(first_batch.items(0), profile, provider, config=config,
                                     rollover=rollover, compaction=compaction)  # fmt: skip
    return result
