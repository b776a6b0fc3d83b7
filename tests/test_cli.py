"""The command line: output shapes, exit status 2 with a one-line error, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .cli_runner import run_cli as run

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def test_budget_json_has_the_documented_keys(capsys) -> None:
    code, out, err = run(
        capsys,
        "budget",
        "--instructions",
        str(EXAMPLES / "instructions.md"),
        "--tools",
        str(EXAMPLES / "tools.json"),
        "--json",
    )
    assert code == 0 and err == ""
    data = json.loads(out)  # exactly one object
    for key in (
        "model",
        "context_window",
        "max_output_tokens",
        "input_limit",
        "instructions_tokens",
        "tools_tokens",
        "instructions_tools_limit",
        "history_limit",
    ):
        assert key in data
    assert data["model"] == "gpt-realtime"
    assert data["context_window"] == (
        data["max_output_tokens"]
        + data["instructions_tokens"]
        + data["tools_tokens"]
        + data["history_limit"]
    )


def test_budget_table(capsys) -> None:
    code, out, _ = run(capsys, "budget", "--instructions", str(EXAMPLES / "instructions.md"))
    assert code == 0
    assert "response reserve" in out and "32,768" in out


def test_budget_with_a_profile_file_and_post_instructions(capsys, tmp_path: Path) -> None:
    from .strategies import TINY

    profile = tmp_path / "tiny.json"
    profile.write_text(json.dumps(TINY))
    instructions = tmp_path / "i.txt"
    instructions.write_text("Be brief.")
    code, out, _ = run(
        capsys,
        "budget",
        "--instructions",
        str(instructions),
        "--profile",
        str(profile),
        "--post-instructions",
        "500",
        "--json",
    )
    assert code == 0
    assert json.loads(out)["history_limit"] == 500
    assert json.loads(out)["model"] == "tiny"


def test_over_the_cap_exits_2_naming_both_numbers(capsys, tmp_path: Path) -> None:
    instructions = tmp_path / "long.md"
    instructions.write_text("word" + " word" * 16_000)  # 16,001 tokens
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps([{"name": "t", "description": "x " * 400}]))
    code, out, err = run(
        capsys, "budget", "--instructions", str(instructions), "--tools", str(tools), "--json"
    )
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert "16,001 instructions + " in err and "limit=16,384" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["budget", "--instructions", "missing.md"], "missing.md: instructions file not found"),
        (["budget", "--instructions", "{ex}/instructions.md", "--tools", "{ex}/instructions.md"], "tools file is not valid JSON"),
        (["budget", "--instructions", "{ex}/instructions.md", "--model", "gpt-9"], "unknown model 'gpt-9'"),
        (["budget", "--instructions", "{ex}/instructions.md", "--model", "gpt-realtime", "--profile", "p.json"], "not both"),
        (["budget", "--instructions", "{ex}/instructions.md", "--post-instructions", "99999"], "got 99,999"),
        (["budget", "--bogus"], "No such option: --bogus"),
        (["count", "missing.txt"], "missing.txt: input file not found"),
    ],
)  # fmt: skip
def test_errors_are_one_line_on_stderr_with_status_2(capsys, args: list[str], message: str) -> None:
    code, out, err = run(capsys, *[a.format(ex=EXAMPLES) for a in args])
    assert code == 2
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1
    assert message in err
    assert "Traceback" not in err


def test_count_json(capsys, tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("Hello, world!")
    code, out, _ = run(capsys, "count", str(path), "--json")
    assert code == 0
    assert json.loads(out) == {"tokens": 4, "encoding": "o200k_base"}


def test_count_a_conversation(capsys, tmp_path: Path) -> None:
    path = tmp_path / "talk.jsonl"
    path.write_text(
        '{"type":"message","role":"user","text":"Say hello.","audio_ms":2796}\n'
        '{"type":"message","role":"assistant","text":"Hello there."}\n'
    )
    code, out, _ = run(capsys, "count", "--conversation", str(path), "--json")
    assert code == 0
    assert json.loads(out) == {
        "tokens": 8 + 27 + 4 + 3,  # user audio 4 + 4 text and 27 audio; the reply 4 + 3
        "encoding": "o200k_base",
        "model": "gpt-realtime",
        "items": 2,
        "text_tokens": 15,
        "audio_tokens": 27,
        "image_tokens": 0,
    }


def test_a_bad_conversation_line_is_reported(capsys, tmp_path: Path) -> None:
    path = tmp_path / "talk.jsonl"
    path.write_text(
        '{"type":"message","role":"user"}\n{"type":"message","role":"user","audio_ms":1.5}\n'
    )
    code, _, err = run(capsys, "count", "--conversation", str(path))
    assert code == 2
    assert "talk.jsonl:line 2: field 'audio_ms'" in err


def test_profiles_json(capsys) -> None:
    code, out, _ = run(capsys, "profiles", "--json")
    assert code == 0
    names = [m["name"] for m in json.loads(out)["models"]]
    assert "gpt-realtime" in names


def test_the_module_entry_point_runs_in_a_real_process() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "context_manager",
            "budget",
            "--instructions",
            str(EXAMPLES / "instructions.md"),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["context_window"] == 32768
    bad = subprocess.run(
        [sys.executable, "-m", "context_manager", "count", "nope"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (
        bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
    )


def test_the_sweep_table_shows_compactions_and_marks_in_their_own_columns(capsys) -> None:
    code, out, _ = run(capsys, "sweep", "--workload", "tool-heavy", "--minutes", "30",
                           "--calls", "40", "--compaction", "none", "--compaction", "drop-oldest",
                           "--truncation", "auto", "--workers", "1")  # fmt: skip
    assert code == 0
    header = next(line for line in out.splitlines() if "USD/call" in line)
    assert "compactions" in header
    rows = [line.split() for line in out.splitlines() if line.strip().startswith(("none", "drop"))]
    assert [r[0] for r in rows] == ["none", "drop-oldest"]
    assert rows[0][1] == "auto" and rows[1][1] == "auto"  # the mark is not glued to it
    assert float(rows[0][-1]) == 0.0 and float(rows[1][-1]) > 0  # compactions per call
