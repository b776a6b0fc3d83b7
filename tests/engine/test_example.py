"""examples/realtime_agent.py runs offline against the fake server, as README says."""

from __future__ import annotations

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
