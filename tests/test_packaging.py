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


def test_the_command_line_needs_no_click_of_its_own() -> None:
    """Recent Typer ships its own click: a fresh `[cli]` install has no `click` package."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['click'] = None\n"  # as if click were not installed
        "from context_manager.cli import main\n"
        "for args in ([], ['count', 'README.md', '--json']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit as exc:\n"
        "        print('exit', exc.code)\n"
    )
    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert out.returncode == 0, out.stderr
    assert "exit 2" in out.stdout  # no arguments: the help, status 2
    assert '"tokens"' in out.stdout and "needs the [cli] extra" not in out.stderr
