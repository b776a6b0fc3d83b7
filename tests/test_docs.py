"""Every code example in README.md and docs/ runs, and every docstring example passes."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import json
import pkgutil
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

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
    while "=" in argv[0]:  # VAR=value before the command, as a shell takes it
        name, _, value = argv.pop(0).partition("=")
        if name == "PYTHONPATH":
            for part in reversed(value.split(":")):
                monkeypatch.syspath_prepend(str(ROOT / part))
        else:
            monkeypatch.setenv(name, value)
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


# The generated figures (docs/generate.py). Regenerating them all takes minutes, so CI checks they
# are current as a step of its own (`python docs/generate.py --check`); here, in seconds: the
# blocks are all in place and well formed, the figures they draw exist, the quick blocks are
# current, and every other block, run by the same code at a tiny size, is deterministic and has
# the docs' shape.


def _load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = _load_generator()
BLOCK = re.compile(r"<!-- BEGIN ([\w-]+) -->\n(.*?)<!-- END \1 -->", re.S)
# Blocks run at full size even at `TINY` (a second at most all told): compared to the docs exactly.
QUICK_BLOCKS = ["now-or-later", "one-call", "worked-example", "replay-table", "fit-table"]
# Blocks whose every row a test of its own runs and compares with the docs.
ROW_TESTED = GENERATOR.ROW_TESTED
SIZED_BLOCKS = [n for n in GENERATOR.BLOCKS if n not in QUICK_BLOCKS and n not in ROW_TESTED]
NUMBER = re.compile(r"-|\$?-?[\d,]+(\.\d+)?%?( / [\d,]+| ±[\d.,]+)?")
MARKS = re.compile(r" \*\*\(cheapest\)\*\*| \(tied\)| \*$")


def documented(name: str) -> str:
    """The body of the generated block `name` as the docs have it."""
    page = GENERATOR.BLOCKS[name][0]
    bodies = {m.group(1): m.group(2) for m in BLOCK.finditer((ROOT / "docs" / page).read_text())}
    assert name in bodies, f"docs/{page}: no block {name!r}"
    return bodies[name].removesuffix("\n")


def tables(body: str) -> list[list[list[str]]]:
    """The markdown tables in `body`, each a list of rows of cells (header and separator first)."""
    found: list[list[list[str]]] = []
    previous = ""
    for line in body.splitlines():
        if line.startswith("|"):
            if not previous.startswith("|"):
                found.append([])
            found[-1].append([cell.strip() for cell in line.strip().strip("|").split("|")])
        previous = line
    return found


def assert_well_formed(name: str, body: str) -> None:
    assert body.strip(), name
    assert not re.search(r"\b(nan|NaN|inf|None)\b", body), f"{name}: {body}"
    for table in tables(body):
        header, separator, *rows = table
        assert rows, f"{name}: a table with no rows"
        assert all(re.fullmatch(r"-{3,}:?", cell) for cell in separator), f"{name}: {separator}"
        for row in [separator, *rows]:
            assert len(row) == len(header), f"{name}: {row} under {header}"
        for row in rows:
            for cell, align in zip(row, separator, strict=True):
                if align.endswith(":"):  # a figure
                    assert NUMBER.fullmatch(cell), f"{name}: {cell!r} in {row}"
                else:  # a label
                    assert cell, f"{name}: an empty label in {row}"


def shape(body: str) -> list[object]:
    """What a block shows whatever its size: each table's header, alignment and labels (the
    cheapest and Pareto marks aside), and the prose lines that have no figure in them."""
    out: list[object] = []
    for header, separator, *rows in tables(body):
        labels = [
            [MARKS.sub("", c) for c, a in zip(r, separator, strict=True) if a == "---"]
            for r in rows
        ]
        out.append((header, separator, labels))
    out += [
        line
        for line in body.splitlines()
        if line.strip() and not line.startswith("|") and not re.search(r"\d", line)
    ]
    return out


def test_every_row_tested_block_has_its_test() -> None:
    for name, path in ROW_TESTED.items():
        assert name in GENERATOR.BLOCKS, name
        assert f'documented("{name}")' in (ROOT / path).read_text(), (name, path)


def test_every_generated_block_is_in_its_page_once() -> None:
    for name, (page, _) in GENERATOR.BLOCKS.items():
        text = (ROOT / "docs" / page).read_text()
        for marker in (f"<!-- BEGIN {name} -->\n", f"<!-- END {name} -->"):
            assert text.count(marker) == 1, f"docs/{page}: {marker!r}"
    in_pages = {m.group(1) for page in PAGES for m in BLOCK.finditer(page.read_text())}
    begun = {n for page in PAGES for n in re.findall(r"<!-- BEGIN ([\w-]+) -->", page.read_text())}
    assert in_pages == begun == set(GENERATOR.BLOCKS)


@pytest.mark.parametrize("name", list(GENERATOR.BLOCKS))
def test_generated_block_is_well_formed(name: str) -> None:
    assert_well_formed(name, documented(name))


def test_generated_figures_exist() -> None:
    for name, path in GENERATOR.PLOTS.items():
        page = GENERATOR.BLOCKS[name][0]
        assert f"]({path})" in (ROOT / "docs" / page).read_text(), f"docs/{page}: no {path}"
    for page in PAGES:
        for path in re.findall(r"!\[[^]]*\]\(([^)]+)\)", page.read_text()):
            image = page.parent / path
            assert image.is_file(), f"{page.name}: {path}"
            assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" or image.suffix != ".png", path


@pytest.mark.parametrize("name", QUICK_BLOCKS)
def test_quick_generated_block_is_current(name: str) -> None:
    """These run at full size even at `TINY`: the docs show exactly what they print today."""
    body = GENERATOR.generate([name], size=GENERATOR.TINY)[name]
    assert body == documented(name), "stale: run python docs/generate.py"


@pytest.mark.parametrize("name", SIZED_BLOCKS)
def test_generated_block_at_tiny_size(name: str) -> None:
    """The block's own code on one short seeded call a setting: twice the same, and the same
    tables (columns, rows and their labels) as the docs."""
    body = GENERATOR.generate([name], size=GENERATOR.TINY)[name]
    assert GENERATOR.generate([name], size=GENERATOR.TINY)[name] == body
    assert_well_formed(name, body)
    assert shape(body) == shape(documented(name))


def test_tiny_size_lowers_the_command_lines(monkeypatch) -> None:
    big, small = (
        ("sweep", "--minutes", "9000", "--calls", "9000", "--seed", "11"),
        ("sweep", "--minutes", "0.5"),
    )
    assert GENERATOR.sized(big) == list(big)  # the docs' size: as written
    monkeypatch.setattr(GENERATOR, "SIZE", GENERATOR.TINY)
    tiny = GENERATOR.TINY["sweep"]
    shrunk = GENERATOR.sized(big)
    assert shrunk[:7] == [
        "sweep",
        "--minutes",
        tiny["--minutes"],
        "--calls",
        tiny["--calls"],
        "--seed",
        "11",
    ]
    assert GENERATOR.sized(small)[:3] == list(small)  # never raised
    assert GENERATOR.sized(("simulate", "--minutes", "90")) == ["simulate", "--minutes", "90"]
    bench = GENERATOR.sized(("bench", "--workers", "9"))
    assert dict(zip(bench[1::2], bench[2::2], strict=True)) == GENERATOR.TINY["bench"]


# What a guide's text uses, and the extra that needs.
USES = {
    "store": re.compile(r"context_manager\.store|\bStore\(|AsyncStore"),
    "testing": re.compile(r"context_manager\.testing|FakeRealtimeServer"),
    "openai": re.compile(r"^\s*from openai import|AsyncOpenAI\(", re.M),
    "cli": re.compile(r"^\$? ?context-manager \w", re.M),
    "plot": re.compile(r"context-manager [^\n]*--plot"),
    "dask": re.compile(r"--dask-scheduler"),
    "bench": re.compile(r"context-manager bench"),
}
NEEDS = re.compile(r"^\*\*Needs:\*\* (.+)$", re.M)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_guide_names_the_extras_it_needs(page: Path) -> None:
    if page.name in ("index.md", "README.md"):  # README's own set-up section says it
        return
    text = page.read_text()
    found = NEEDS.findall(text)
    assert len(found) == 1, f"{page.name}: one **Needs:** line under the title"
    named = set(re.findall(r"context-manager\[([\w,]+)\]", found[0]))
    named = {e for group in named for e in group.split(",")}
    named |= set(re.findall(r": `(\w+)`", found[0]))
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"])  # fmt: skip
    assert named <= extras, f"{page.name}: unknown extras {named - extras}"
    for extra, pattern in USES.items():
        if pattern.search(text.replace(found[0], "")):
            assert extra in named, f"{page.name} uses the {extra} extra but does not name it"
