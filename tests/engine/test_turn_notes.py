"""When the store hears of a turn being spoken (`TurnNotes`): exact records for hand-made events."""

from __future__ import annotations

from context_manager.live.records import TurnInProgress
from context_manager.realtime.inflight import TurnNotes


def test_a_turn_is_noted_at_its_start_then_every_second_and_cleared_when_stored() -> None:
    notes = TurnNotes()
    assert notes.appended(0, 100) == TurnInProgress(0, 100)
    assert notes.appended(0, 600) is None
    assert notes.appended(0, 1100) == TurnInProgress(0, 1100)
    assert notes.server(0, {"type": "input_audio_buffer.committed", "item_id": "a"}) is None
    # Another item (the application's text, say) does not end the turn; its own item does.
    assert notes.server(0, {"type": "conversation.item.added", "item": {"id": "b"}}) is None
    assert notes.server(0, {"type": "conversation.item.added", "item": {"id": "a"}}) == (
        TurnInProgress(0, None)
    )
    assert notes.noted is None
    assert notes.appended(0, 100) == TurnInProgress(0, 100)
    assert notes.server(0, {"type": "input_audio_buffer.cleared"}) == TurnInProgress(0, None)


def test_a_turn_in_progress_moves_with_a_switch() -> None:
    notes = TurnNotes()
    assert notes.switched(0, 1) == []
    notes.appended(0, 300)
    assert notes.switched(0, 1) == [TurnInProgress(0, None), TurnInProgress(1, 300)]
    assert notes.switched(1, 1) == []
