"""The recorder: the live engine's records written to a store, one call's worth.

`ContextEngine.take_records` gives what must be persisted, in order; `Recorder.write` maps each
record (by its ``kind``) to the `AsyncStore` call that keeps it, and remembers which store
session stands for which of the engine's sessions. Every response's usage is stored with the
cost the engine priced once (`ResponseOutcome.observed_cost`), in band or not.
"""

from __future__ import annotations

from ..live.records import Record, TurnInProgress, TurnsNotCarried
from ..server import Usage
from .aio import AsyncStore

__all__ = ["Recorder"]


class Recorder:
    """Writes one call's engine records to `store` under `conversation_id`.

    Args:
        store: the store.
        conversation_id: the stored conversation.
        provider: the provider name stored with each session.
        model: the model name stored with a session whose ``session.created`` names none.
    """

    def __init__(self, store: AsyncStore, conversation_id: str, *, provider: str, model: str):
        self.store = store
        self.conversation_id = conversation_id
        self.provider = provider
        self.model = model
        self.sessions: dict[int, int] = {}
        """The engine's session index -> the store's session id."""
        self._uncarried: dict[int, list[str]] = {}

    async def _session_note(self, record: TurnsNotCarried | TurnInProgress) -> None:
        store = self.store
        if record.kind == "turn_in_progress":
            if record.session in self.sessions:
                await store.note_open_turn(self.sessions[record.session], record.audio_ms)
        elif record.session in self.sessions:
            await store.note_uncarried(self.sessions[record.session], list(record.keys))
        else:  # planned before its session started: noted once the session has its row
            self._uncarried[record.session] = list(record.keys)

    async def write(self, record: Record) -> None:
        """Persist one record.

        Raises `StoreError`. A write the database cannot take yet is kept by the `AsyncStore`
        and written before later ones, so this returns.
        """
        store, cid = self.store, self.conversation_id
        if record.kind == "session_started":
            model = record.model or self.model
            sid = await store.start_session(cid, provider=self.provider, model=model)
            self.sessions[record.session] = sid
            if record.session in self._uncarried:
                await store.note_uncarried(sid, self._uncarried.pop(record.session))
        elif record.kind == "session_ended":
            if record.session in self.sessions:
                await store.end_session(self.sessions[record.session], record.reason)
        elif record.kind == "item_stored":
            session = self.sessions.get(record.session)
            await store.append(cid, [record.item], session_id=session, uids=[record.key])
        elif record.kind == "item_changed":
            await store.update_item(cid, record.key, record.item)
        elif record.kind == "items_truncated":
            await store.mark(cid, list(record.keys), "truncated")
        elif record.kind == "compacted":
            await store.record_compaction(
                cid,
                covers=list(record.keys),
                summary=record.summary,
                strategy=record.strategy,
                session_id=self.sessions.get(record.session),
                tokens_before=record.tokens_before,
                tokens_after=record.tokens_after,
            )
        elif record.kind == "response":
            await store.record_usage(
                cid,
                record.observed,
                predicted=record.predicted if record.in_band or record.modelled else None,
                cost_usd=record.observed_cost.total,
                session_id=self.sessions.get(record.session),
                response_id=record.response_id,
                out_of_band=not record.in_band,
                metadata=record.metadata,
            )
        elif record.kind == "transcription":
            # Billed apart from responses: a usage row of no tokens, its cost and what it was.
            billed = record.billed
            await store.record_usage(
                cid,
                Usage.from_dict({}),
                cost_usd=billed.cost_usd,
                session_id=self.sessions.get(record.session),
                out_of_band=True,
                metadata={"billed": "transcription", "model": billed.model,
                          "seconds": f"{billed.seconds:g}"},
            )  # fmt: skip
        elif record.kind in ("turns_not_carried", "turn_in_progress"):
            await self._session_note(record)
        elif record.kind == "seed_linked" and record.server_ids:
            sid = self.sessions[record.session]
            await store.record_server_ids(cid, sid, dict(record.server_ids))
