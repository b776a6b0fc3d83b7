"""The wheel holds every module and data file (an editable install would hide a gap)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_every_module_and_data_file(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wheel = next(tmp_path.glob("context_manager-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    package = ROOT / "context_manager"
    expected = {
        str(p.relative_to(ROOT))
        for p in package.rglob("*")
        if p.is_file()
        and p.suffix in (".py", ".toml", ".typed", ".mako")
        and "__pycache__" not in p.parts
    }
    assert expected - names == set()
