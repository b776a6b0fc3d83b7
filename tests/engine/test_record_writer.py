"""`RecordWriter.failing`: set while a write is being retried, cleared by the next success."""

from __future__ import annotations

import asyncio

from context_manager.live.records import TurnInProgress
from context_manager.realtime.writer import RecordWriter


def test_failing_is_set_while_a_write_is_retried_and_cleared_after() -> None:
    async def main() -> list[bool]:
        tries = 0
        seen: list[bool] = []

        async def write(record: object) -> None:
            nonlocal tries
            tries += 1
            if tries <= 2:
                raise OSError("the store is away")

        writer = RecordWriter(write, backoff_seconds=0.01)
        writer.start()
        seen.append(writer.failing)
        writer.put([TurnInProgress(0, 100)])
        await asyncio.sleep(0.005)  # the first try failed; the writer waits to retry
        seen.append(writer.failing)
        await writer.flush(5)
        seen.append(writer.failing)
        await writer.close()
        assert writer.failures == 2 and not writer.pending
        return seen

    assert asyncio.run(main()) == [False, True, False]
