"""A 95-minute voice call with input transcription off, per carry mode, end to end.

The real ``openai`` client against the fake server (which hears scripted speech): server-VAD
and push-to-talk turns, an out-of-band question after each answer, three planned rollovers on
Azure's 30-minute sessions and a dropped connection at minute 90. Each mode's figures are the
row docs/agent-builders.md shows (the "voice-carry" block): the runs are deterministic.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from sqlalchemy import create_engine, select

from context_manager.store.models import ItemRow
from context_manager.testing.voicecall import VoiceCallReport, carry_table, run_voice_call
from tests.test_docs import documented, tables

pytestmark = pytest.mark.network_allowed

SWITCHES = ["rollover", "rollover", "rollover", "disconnected"]


def _call(mode: str, url: str) -> VoiceCallReport:
    return asyncio.run(run_voice_call(mode, url, drop_at_minute=90))


def _documented_row(mode: str) -> list[str]:
    (table,) = tables(documented("voice-carry"))
    rows = {row[0]: row for row in table[2:]}
    return rows[f"`{mode}`"]


def _row(report: VoiceCallReport) -> list[str]:
    (table,) = tables(carry_table([report]))
    return table[2]


def _stored_roles(url: str) -> Counter[str]:
    db = create_engine(url)
    try:
        with db.connect() as c:
            return Counter(str(r) for r in c.execute(select(ItemRow.role)).scalars())
    finally:
        db.dispose()


def test_a_95_minute_voice_call_keeps_every_word_and_every_cent(db_url: str) -> None:
    report = _call("all", db_url)
    assert report.rollovers == SWITCHES
    # Every caller's turn so far is in each new session: as audio it hears, or in the
    # realtime model's own summary.
    assert report.carried == [1.0] * 4, report.missing
    assert report.uncarried == 0
    assert report.errors == []
    # Every item once: one user item per turn, one answer per turn (the out-of-band
    # questions and the summaries add none).
    roles = _stored_roles(db_url)
    assert roles["user"] == roles["assistant"] == report.turns == report.stored_user_items
    # The engine's total is the server's own usage priced by the profile, out-of-band
    # responses (the questions and the summaries) included.
    assert report.out_of_band > report.turns
    assert report.engine_cost_usd == pytest.approx(report.server_cost_usd, abs=1e-9)
    assert _row(report) == _documented_row("all")


@pytest.mark.parametrize("mode", ["audio", "summary", "transcription", "none"])
def test_each_carry_mode_alone(mode: str, tmp_path: pytest.TempPathFactory) -> None:
    url = f"sqlite:///{tmp_path}/call.db"
    report = _call(mode, url)
    assert report.rollovers == SWITCHES
    assert report.engine_cost_usd == pytest.approx(report.server_cost_usd, abs=1e-9)
    roles = _stored_roles(url)
    assert roles["user"] == roles["assistant"] == report.turns
    if mode == "transcription":
        assert report.carried == [1.0] * 4 and report.uncarried == 0
    elif mode == "summary":
        # Planned switches carry every turn; the drop finds no session to ask, so the turns
        # since the last compaction summary are lost, and reported.
        assert report.carried[:3] == [1.0] * 3
        assert report.carried[3] < 1 and report.uncarried == len(report.missing[3])
    elif mode == "audio":
        # Two minutes of kept speech: the first new session holds every turn, later ones
        # only the latest, and the rest are reported.
        assert report.carried[0] == 1.0 and report.carried[-1] < 0.5
        assert report.uncarried == sum(len(m) for m in report.missing)
    else:
        assert report.carried == [0.0] * 4
        assert report.uncarried == sum(len(m) for m in report.missing)
    assert _row(report) == _documented_row(mode)
