"""examples/realtime_agent.py runs offline against the fake server, as README says."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parents[2] / "examples" / "realtime_agent.py"


@pytest.mark.network_allowed
def test_the_example_agent_runs_offline(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    main = runpy.run_path(str(EXAMPLE), run_name="example")["main"]
    main(["--minutes", "40", "--db", f"sqlite:///{tmp_path / 'call.db'}"])
    out = capsys.readouterr().out
    assert out.count("rollover (rollover) into session") == 1  # 40 minutes on Azure's 30
    assert "sessions: 2," in out
    assert "prediction error: last 0 tokens" in out
    assert "total cost: $" in out
    assert (tmp_path / "call.db").exists()


@pytest.mark.network_allowed
def test_the_example_keeps_a_spoken_callers_words_with_transcription_off(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    main = runpy.run_path(str(EXAMPLE), run_name="example")["main"]
    main(["--voice", "--minutes", "65", "--db", f"sqlite:///{tmp_path / 'call.db'}"])
    out = capsys.readouterr().out
    kept = re.findall(r"it knows (\d+) of the caller's (\d+) booking codes", out)
    assert len(kept) == 2  # 65 minutes on Azure's 30
    assert all(a == b for a, b in kept), kept
    assert "transcribed user turns: 0;" in out
    assert "prediction error: last 0 tokens" in out
