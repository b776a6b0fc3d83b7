"""The documentation site builds with mkdocs in strict mode: no broken link, no bad reference."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_the_site_builds_without_a_warning(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    pages = {p.parent.name for p in (tmp_path / "site").rglob("index.html")}
    assert {
        "agent-builders",
        "cost-analysts",
        "researchers",
        "compaction",
        "engine",
        "cli",
    } <= pages
    api = (tmp_path / "site" / "api" / "engine" / "index.html").read_text(encoding="utf-8")
    assert "ContextEngine" in api
    assert "plan_rollover" in api
