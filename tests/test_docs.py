"""Every code example in README.md and docs/ runs, and every docstring example passes."""

from __future__ import annotations

import doctest
import importlib
import json
import pkgutil
import re
import shlex
from pathlib import Path

import pytest

import context_manager
from context_manager.cli import main

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks(language: str) -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for n, match in enumerate(FENCE.finditer(page.read_text())):
            if match.group(1) == language:
                found.append((f"{page.name}#{n}", match.group(2)))
    return found


def python_examples() -> list[object]:
    # Examples running the fake realtime server talk to it over loopback.
    return [
        pytest.param(
            where,
            code,
            id=where,
            marks=[pytest.mark.network_allowed] if "FakeRealtimeServer(" in code else [],
        )
        for where, code in blocks("python")
    ]


@pytest.mark.parametrize(("where", "code"), python_examples())
def test_python_examples_run(where: str, code: str) -> None:
    exec(compile(code, where, "exec"), {"__name__": "__docs__"})


def console_steps() -> list[tuple[str, str, str]]:
    steps = []
    for where, text in blocks("console"):
        command, expected = None, []
        for line in [*text.splitlines(), "$ "]:
            if line.startswith("$ "):
                if command is not None:
                    steps.append((where, command, "\n".join(expected)))
                command, expected = line[2:].strip() or None, []
            else:
                expected.append(line)
    return steps


@pytest.mark.parametrize(("where", "command", "expected"), console_steps())
def test_console_examples_run(where: str, command: str, expected: str, capsys, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    argv = shlex.split(command)
    assert argv[0] == "context-manager", where
    try:
        main(argv[1:])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert code == 0, f"{where}: {command}: {err}"
    if expected.strip():
        assert json.loads(out) == json.loads(expected), where


def test_readme_gives_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    for marker in ("<!-- main-command -->", "<!-- test-command -->"):
        assert marker in text


@pytest.mark.parametrize(
    "module",
    sorted(
        m.name
        for m in pkgutil.walk_packages(context_manager.__path__, prefix="context_manager.")
        if not m.name.rsplit(".", 1)[-1].startswith("_")
    ),
)
def test_docstring_examples(module: str) -> None:
    mod = importlib.import_module(module)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_generated_figures_are_current() -> None:
    """The figures in docs/ are what the tool prints today (python docs/generate.py)."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
