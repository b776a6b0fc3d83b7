"""`RecordWriter.failing`: set while a write is being retried, cleared by the next success."""

from __future__ import annotations

import asyncio

from context_manager.live.records import TurnInProgress
from context_manager.realtime.writer import RecordWriter


def test_failing_is_set_while_a_write_is_retried_and_cleared_after() -> None:
    async def main() -> list[bool]:
        tries = 0
        retrying, go = asyncio.Event(), asyncio.Event()

        async def write(record: object) -> None:
            nonlocal tries
            tries += 1
            if tries == 1:
                raise OSError("the store is away")
            retrying.set()
            await go.wait()  # held until the test has looked

        writer = RecordWriter(write, backoff_seconds=0.01)
        writer.start()
        seen = [writer.failing]
        writer.put([TurnInProgress(0, 100)])
        await retrying.wait()
        seen.append(writer.failing)
        go.set()
        await writer.flush(5)
        seen.append(writer.failing)
        await writer.close()
        assert writer.failures == 1 and not writer.pending
        return seen

    assert asyncio.run(main()) == [False, True, False]
