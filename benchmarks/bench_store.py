"""Store speed on SQLite and PostgreSQL: appends per second, loading and seeding 10,000 items.

For each database (SQLite in a temporary file; PostgreSQL when CONTEXT_MANAGER_TEST_PG_URL is
set, e.g. from ``.ci/postgres``, in a database made and dropped here):

1. appends per second, one item per commit (the live engine's case: each item as it is done)
   and 100 items per commit, against the baseline of a bare SQLAlchemy Core insert of the same
   rows with one commit each (so the ratio is the store's own overhead: position, id, counting);
2. the time to load a 10,000-item conversation (`Store.load`) and to build its seed
   (`Store.seed`: recent turns, read from the end), against a bare Core select of the same
   rows; then a summary seed (``carry="summary"``) the first time (the whole history folded)
   and after a session's worth of new items (1,000: only they are folded, onto the summary
   the previous seed kept).

Run: ``python benchmarks/bench_store.py [--items 10000]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, insert, make_url, select, text

from context_manager.rollover import RolloverPolicy
from context_manager.simulate.workloads import generate, workload
from context_manager.store import Store
from context_manager.store.models import ItemRow


def databases() -> Iterator[tuple[str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        yield "sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}"
    pg = os.environ.get("CONTEXT_MANAGER_TEST_PG_URL")
    if not pg:
        print("PostgreSQL: skipped (set CONTEXT_MANAGER_TEST_PG_URL, see .ci/postgres)")
        return
    name = f"cm_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield "postgresql", make_url(pg).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=10_000, help="conversation length to load")
    args = parser.parse_args()
    batch = generate(workload("voice-agent", minutes=600), 1, np.random.default_rng(5))
    items = list(batch.items(0))
    while len(items) < args.items:
        items += items
    items = items[: args.items]
    print(f"{'database':<11}{'measure':<34}{'store':>12}{'baseline':>12}{'ratio':>8}")
    for label, url in databases():
        bench(label, url, items)


def bench(label: str, url: str, items: list) -> None:
    store = Store(url)
    n = min(500, len(items))
    cid = store.create_conversation()
    start = time.perf_counter()
    for item in items[:n]:
        store.append(cid, [item])
    one = n / (time.perf_counter() - start)

    # Baseline: the same number of bare inserts, one commit each.
    base_cid = store.create_conversation()
    row = {"conversation_id": base_cid, "kind": "message", "role": "user",
           "content": {"type": "message", "role": "user", "text": "x"}, "tokens": 5,
           "status": "live"}  # fmt: skip
    start = time.perf_counter()
    for k in range(n):
        with store.engine.begin() as c:
            c.execute(insert(ItemRow), [{**row, "uid": uuid.uuid4().hex, "position": k}])
    base = n / (time.perf_counter() - start)
    print(f"{label:<11}{'appends/s, 1 item per commit':<34}{one:>12,.0f}{base:>12,.0f}"
          f"{base / one:>7.2f}x")  # fmt: skip

    cid = store.create_conversation()
    start = time.perf_counter()
    for k in range(0, len(items), 100):
        store.append(cid, items[k : k + 100])
    many = len(items) / (time.perf_counter() - start)
    print(f"{label:<11}{'appends/s, 100 items per commit':<34}{many:>12,.0f}")

    start = time.perf_counter()
    loaded = store.load(cid)
    t_load = time.perf_counter() - start
    start = time.perf_counter()
    with store.engine.connect() as c:
        rows = c.execute(select(ItemRow).where(ItemRow.conversation_id == cid)
                         .order_by(ItemRow.position)).all()  # fmt: skip
    t_base = time.perf_counter() - start
    assert len(loaded.items) == len(rows) == len(items)
    what = f"load {len(items):,} items (ms)"
    print(f"{label:<11}{what:<34}{t_load * 1e3:>12.1f}{t_base * 1e3:>12.1f}"
          f"{t_load / t_base:>7.2f}x")  # fmt: skip
    start = time.perf_counter()
    seed = store.seed(cid)
    t_seed = time.perf_counter() - start
    print(f"{label:<11}{f'seed {len(items):,} items, recent (ms)':<34}{t_seed * 1e3:>12.1f}"
          f"{'':>12}{t_seed / t_base:>7.2f}x   ({len(seed)} seed items)")  # fmt: skip

    # A summary seed: the first folds the whole history (no summary kept yet); a later one,
    # a session's worth of items on (1,000), folds only those, onto the kept summary.
    summary = RolloverPolicy(carry="summary")
    cold_cid = store.create_conversation()
    for k in range(0, len(items), 1000):
        store.append(cold_cid, items[k : k + 1000])
    start = time.perf_counter()
    store.seed(cold_cid, summary)
    t_cold = time.perf_counter() - start
    warm_cid = store.create_conversation()
    last = max(len(items) - 1000, 0)
    for k in range(0, last, 1000):
        store.append(warm_cid, items[k : min(k + 1000, last)])
        store.seed(warm_cid, summary)  # each session's rollover
    store.append(warm_cid, items[last:])
    start = time.perf_counter()
    seed = store.seed(warm_cid, summary)
    t_warm = time.perf_counter() - start
    print(f"{label:<11}{'seed, summary, first (ms)':<34}{t_cold * 1e3:>12.1f}"
          f"{'':>12}{t_cold / t_base:>7.2f}x")  # fmt: skip
    print(f"{label:<11}{'seed, summary, 1,000 new (ms)':<34}{t_warm * 1e3:>12.1f}"
          f"{'':>12}{t_warm / t_base:>7.2f}x   ({len(seed)} seed items;"
          f" target < 500 ms)")  # fmt: skip
    store.close()


if __name__ == "__main__":
    main()
