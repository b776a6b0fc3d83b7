"""Every command over a table of bad values for each option: one line on stderr naming the
problem, exit status 2, never a traceback, never a silent answer, never an "internal error".

The values: zero, negative, NaN, infinite, huge, the wrong type, a missing file, a directory,
an unwritable or missing output directory, the wrong kind of file, the wrong encoding, deep
nesting, an unknown name; and, in subprocesses, a missing extra.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from context_manager import get_model_profile
from tests.cli_runner import run_cli

ROOT = Path(__file__).resolve().parents[1]
CONV = "examples/conversation.jsonl"
LOG = "tests/data/realtime-logs/test_openai_ws__test_tool_call_round.jsonl"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("bad")
    out = {"dir": str(d), "missing": str(d / "missing.jsonl"), "nodir": str(d / "no" / "x")}

    def put(name: str, data: str | bytes) -> None:
        path = d / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        out[name.split(".")[0]] = str(path)

    put("nested.json", "[" * 100_000 + "]" * 100_000)
    put("nestedline.jsonl", "[" * 100_000 + "]" * 100_000 + "\n")
    put("nestedtoml.toml", "a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    put(
        "latin1.jsonl",
        '{"type":"message","role":"user","text":"Caf\xe9","t":0.0}\n'.encode("latin-1"),
    )
    put("latin1txt.md", "Caf\xe9".encode("latin-1"))
    put("empty.jsonl", "")
    put("binary.bin", bytes(range(256)) * 8)
    put("badtools.json", json.dumps([{"type": "function", "name": "x", "parameters": "no"}]))
    put("notlist.json", json.dumps({"tool": 1}))
    put(
        "hugeaudio.jsonl",
        '{"type":"message","role":"user","text":"hi","audio_ms":10000000000000}\n',
    )

    base = get_model_profile("gpt-realtime").to_dict()
    put("tinyrate.json", json.dumps(base | {"audio_input_ms_per_token": 1e-300}))
    put(
        "hugeprice.json",
        json.dumps(
            base | {"prices_per_million": base["prices_per_million"] | {"text_input": 1e300}}
        ),
    )
    put("window.json", json.dumps(base | {"context_window": 10**15}))
    put("txtprofile.txt", "name = 'x'\n")
    put("provider.json", json.dumps({"name": "p", "max_session_seconds": -1}))
    put("locomo_bad.json", json.dumps({"not": "locomo"}))
    put("damaged.zip", b"PK\x03\x04 not really a zip")
    put("binaryjson.json", bytes(range(128, 256)))
    recording = (ROOT / LOG).read_text()
    put("noted.jsonl", recording + "{garbage\n")
    lines = recording.splitlines(keepends=True)
    put("midsession.jsonl", "".join(lines[len(lines) // 2 :]))
    return out


# (case id, the command line with {placeholders} for the fixture's files, a fragment of the error)
CASES: list[tuple[str, str, str]] = [
    # --- the program itself
    ("unknown command", "frobnicate", "No such command"),
    ("unknown option", "profiles --frob", "No such option"),
    # --- budget
    ("budget instructions missing", "budget --instructions {missing}", "not found"),
    ("budget instructions dir", "budget --instructions {dir}", "directory"),
    ("budget instructions latin1", "budget --instructions {latin1txt}", "not UTF-8"),
    ("budget instructions binary", "budget --instructions {binary}", "not UTF-8"),
    (
        "budget tools nested",
        "budget --instructions examples/instructions.md --tools {nested}",
        "nested too deeply",
    ),
    (
        "budget tools malformed",
        "budget --instructions examples/instructions.md --tools {badtools}",
        "parameters must be an object",
    ),
    (
        "budget tools not a list",
        "budget --instructions examples/instructions.md --tools {notlist}",
        "tools",
    ),
    (
        "budget tools empty file",
        "budget --instructions examples/instructions.md --tools {empty}",
        "not valid JSON",
    ),
    (
        "budget tools latin1",
        "budget --instructions examples/instructions.md --tools {latin1}",
        "not UTF-8",
    ),
    (
        "budget model unknown",
        "budget --instructions examples/instructions.md --model gpt-nope",
        "gpt-nope",
    ),
    (
        "budget model and profile",
        "budget --instructions examples/instructions.md --model gpt-realtime --profile {tinyrate}",
        "not both",
    ),
    (
        "budget profile nested toml",
        "budget --instructions examples/instructions.md --profile {nestedtoml}",
        "nested too deeply",
    ),
    (
        "budget profile tiny rate",
        "budget --instructions examples/instructions.md --profile {tinyrate}",
        "audio_input_ms_per_token",
    ),
    (
        "budget profile huge price",
        "budget --instructions examples/instructions.md --profile {hugeprice}",
        "text_input",
    ),
    (
        "budget profile huge window",
        "budget --instructions examples/instructions.md --profile {window}",
        "context_window",
    ),
    (
        "budget profile wrong kind",
        "budget --instructions examples/instructions.md --profile {txtprofile}",
        "unknown profile format",
    ),
    (
        "budget profile missing",
        "budget --instructions examples/instructions.md --profile {missing}.toml",
        "cannot read profile",
    ),
    (
        "budget post-instructions zero",
        "budget --instructions examples/instructions.md --post-instructions 0",
        "post_instructions",
    ),
    (
        "budget post-instructions negative",
        "budget --instructions examples/instructions.md --post-instructions -5",
        "post_instructions",
    ),
    (
        "budget post-instructions huge",
        "budget --instructions examples/instructions.md --post-instructions 1000000000000",
        "post_instructions",
    ),
    (
        "budget post-instructions word",
        "budget --instructions examples/instructions.md --post-instructions many",
        "--post-instructions",
    ),
    # --- count
    ("count missing", "count {missing}", "not found"),
    ("count dir", "count {dir}", "directory"),
    ("count latin1", "count {latin1txt}", "not UTF-8"),
    ("count binary", "count {binary}", "not UTF-8"),
    ("count conversation empty", "count --conversation {empty}", "no conversation items"),
    ("count conversation nested", "count --conversation {nestedline}", "nested too deeply"),
    ("count conversation latin1", "count --conversation {latin1}", "not UTF-8"),
    ("count conversation event log", f"count --conversation {LOG}", "line 1"),
    ("count conversation huge audio", "count --conversation {hugeaudio}", "audio_ms"),
    # --- simulate
    ("simulate neither input", "simulate", "--conversation FILE or --workload"),
    (
        "simulate both inputs",
        f"simulate --conversation {CONV} --workload voice-agent",
        "one of them",
    ),
    ("simulate calls zero", "simulate --workload voice-agent --calls 0", "--calls"),
    ("simulate sessions negative", "simulate --workload voice-agent --sessions -3", "--calls"),
    ("simulate calls word", "simulate --workload voice-agent --calls many", "--calls"),
    ("simulate calls huge", "simulate --workload voice-agent --calls 1e99", "--calls"),
    ("simulate seed negative", "simulate --workload voice-agent --seed -1", "--seed"),
    ("simulate minutes zero", "simulate --workload voice-agent --minutes 0", "minutes"),
    ("simulate minutes negative", "simulate --workload voice-agent --minutes -5", "minutes"),
    ("simulate minutes nan", "simulate --workload voice-agent --minutes nan", "minutes"),
    ("simulate minutes inf", "simulate --workload voice-agent --minutes inf", "minutes"),
    ("simulate minutes huge", "simulate --workload voice-agent --minutes 1e9", "at most 10,080"),
    (
        "simulate work too large",
        "simulate --workload voice-agent --minutes 10000 --calls 100000",
        "GiB",
    ),
    ("simulate workload unknown", "simulate --workload nope", "nope"),
    ("simulate files none", "simulate --workload files:", "at least one"),
    ("simulate files empty", "simulate --workload files:{empty}", "no conversation items"),
    ("simulate param malformed", "simulate --workload voice-agent --param x", "KEY=VALUE"),
    (
        "simulate param not a number",
        "simulate --workload voice-agent --param hold_rate=x",
        "not a number",
    ),
    (
        "simulate param out of range",
        "simulate --workload voice-agent --param hold_rate=2",
        "hold_rate",
    ),
    ("simulate conversation missing", "simulate --conversation {missing}", "cannot read"),
    ("simulate conversation empty", "simulate --conversation {empty}", "no conversation items"),
    ("simulate conversation nested", "simulate --conversation {nestedline}", "nested too deeply"),
    ("simulate conversation binary", "simulate --conversation {binary}", "not"),
    ("simulate conversation huge audio", "simulate --conversation {hugeaudio}", "audio_ms"),
    ("simulate truncation bogus", f"simulate --conversation {CONV} --truncation bogus", "bogus"),
    (
        "simulate truncation ratio 2",
        f"simulate --conversation {CONV} --truncation retention_ratio:2",
        "retention_ratio",
    ),
    (
        "simulate truncation ratio nan",
        f"simulate --conversation {CONV} --truncation retention_ratio:nan",
        "retention_ratio",
    ),
    (
        "simulate rollover huge",
        f"simulate --conversation {CONV} --rollover recent:999999999999999999999",
        "10,000,000",
    ),
    ("simulate rollover word", f"simulate --conversation {CONV} --rollover recent:x", "rollover"),
    ("simulate rollover unknown", f"simulate --conversation {CONV} --rollover later", "rollover"),
    ("simulate compaction unknown", f"simulate --conversation {CONV} --compaction nope", "nope"),
    ("simulate path unknown", f"simulate --conversation {CONV} --path fast", "--path"),
    ("simulate plot a directory", f"simulate --conversation {CONV} --plot {{dir}}/", "directory"),
    (
        "simulate plot no such directory",
        f"simulate --conversation {CONV} --plot {{nodir}}.png",
        "does not exist",
    ),
    (
        "simulate plot unwritable",
        f"simulate --conversation {CONV} --plot /proc/cm-test.png",
        "cannot write",
    ),
    ("simulate provider unknown", f"simulate --conversation {CONV} --provider nope", "nope"),
    (
        "simulate provider file invalid",
        f"simulate --conversation {CONV} --provider {{provider}}",
        "max_session_seconds",
    ),
    # --- sweep
    ("sweep calls zero", "sweep --calls 0", "--calls"),
    ("sweep seed negative", "sweep --seed -2", "--seed"),
    ("sweep workers zero", "sweep --workers 0", "--workers"),
    ("simulate workers zero", "simulate --workload voice-agent --workers 0", "--workers"),
    (
        "cold below target",
        "simulate --workload voice-agent --compaction drop-oldest:cold=0.3",
        "target 0.7",
    ),
    ("simulate workers word", "simulate --workload voice-agent --workers two", "--workers"),
    ("sweep workers word", "sweep --workers two", "--workers"),
    ("sweep workers and dask", "sweep --workers 2 --dask-scheduler tcp://127.0.0.1:1", "not both"),
    ("sweep dask garbage", "sweep --dask-scheduler garbage://x", "garbage"),
    ("sweep files workload", "sweep --workload files:{empty}", "generated workloads"),
    ("sweep csv no such directory", "sweep --csv {nodir}.csv", "does not exist"),
    ("sweep csv a directory", "sweep --csv {dir}", "directory"),
    ("sweep plot a directory", "sweep --plot {dir}/", "directory"),
    ("sweep model unknown", "sweep --model gpt-nope", "gpt-nope"),
    ("sweep provider unknown", "sweep --provider openai,nope", "nope"),
    ("sweep truncation empty", "sweep --truncation ,", "truncations"),
    ("sweep minutes nan", "sweep --minutes nan", "minutes"),
    # --- replay
    ("replay missing", "replay {missing}", "cannot read"),
    ("replay directory", "replay {dir}", "cannot read"),
    ("replay empty", "replay {empty}", "no Realtime event"),
    ("replay binary", "replay {binary}", "no Realtime event"),
    ("replay nested", "replay {nestedline}", "no Realtime event"),
    ("replay a conversation file", f"replay {CONV}", "a conversation file"),
    ("replay output without fit", f"replay {LOG} --output {{dir}}/p.toml", "--fit"),
    (
        "replay output no such directory",
        f"replay {LOG} --fit --output {{nodir}}.toml",
        "does not exist",
    ),
    ("replay model unknown", f"replay {LOG} --model gpt-nope", "gpt-nope"),
    ("replay strict with notes", "replay --strict {noted}", "--strict: line"),
    ("replay fit with nothing compared", "replay {midsession} --fit", "nothing to fit"),
    # --- bench
    ("bench calls zero", "bench --calls 0", "--calls"),
    ("bench seeds negative", "bench --quick --seeds -1", "--seeds"),
    ("bench seeds word with quick", "bench --quick --seeds x", "--seeds"),
    ("bench seeds empty", "bench --seeds ,", "at least one seed"),
    ("bench minutes nan", "bench --quick --minutes nan", "minutes"),
    ("bench minutes huge", "bench --quick --minutes 1e9", "minutes"),
    ("bench dataset unknown", "bench --quick --dataset nope", "nope"),
    ("bench strategy unknown", "bench --quick --strategies keep-nothing-at-all", "keep-nothing"),
    ("bench locomo nested", "bench --quick --dataset voice-agent --locomo {nested}", "nested"),
    (
        "bench locomo missing",
        "bench --quick --dataset voice-agent --locomo {missing}",
        "cannot read",
    ),
    ("bench locomo latin1", "bench --quick --dataset voice-agent --locomo {latin1}", "not UTF-8"),
    (
        "bench locomo not locomo",
        "bench --quick --dataset voice-agent --locomo {locomo_bad}",
        "LoCoMo",
    ),
    ("bench csv no such directory", "bench --quick --csv {nodir}.csv", "does not exist"),
    ("bench plot a directory", "bench --quick --plot {dir}/", "directory"),
    ("bench workers negative", "bench --quick --workers -1", "--workers"),
    ("bench seeds repeated", "bench --quick --seeds 0,0", "repeats 0"),
    ("bench strategies empty", "bench --quick --strategies ,", "--strategies is empty"),
    (
        "bench locomo damaged zip",
        "bench --quick --dataset voice-agent --locomo {damaged}",
        "not a zip file",
    ),
    ("bench calls huge", "bench --calls 99999999999999999999", "--calls"),
    (
        "bench strategy raising",
        "bench --quick --dataset voice-agent --minutes 15"
        " --strategies tests.bench.test_bench_answers:Boom",
        "failed while planning (ValueError)",
    ),
    ("sweep calls huge", "sweep --calls 99999999999999999999", "--calls"),
    ("sweep plot no extension", "sweep --plot {dir}/plot", ".png"),
    ("sweep plot unknown extension", "sweep --plot {dir}/plot.txt", ".png"),
    (
        "simulate minutes inf message",
        "simulate --workload voice-agent --minutes inf",
        "a finite number",
    ),
    (
        "simulate profile binary json",
        f"simulate --conversation {CONV} --profile {{binaryjson}}",
        "not UTF-8",
    ),
    # --- profiles and db
    ("profiles extra argument", "profiles gpt-realtime", "unexpected extra argument"),
    ("db upgrade bad url", "db upgrade --url nonsense://x", "nonsense"),
    (
        "db upgrade unknown revision",
        "db upgrade --url sqlite:///{dir}/x.db --revision 9999",
        "9999",
    ),
]


@pytest.mark.parametrize(("case", "line", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_status_2(
    case: str,
    line: str,
    fragment: str,
    files: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)
    args = line.format(**files).split()
    code, out, err = run_cli(capsys, *args)
    assert code == 2, (case, code, err[-400:])
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (case, err[-400:])
    assert "internal error" not in err and "Traceback" not in err
    assert fragment.lower() in err.lower(), (case, err)
    assert not out.strip(), (case, out[:200])  # nothing half-done on stdout


def test_the_table_counts_its_cases() -> None:
    assert len(CASES) >= 100
    commands = {c[1].split()[0] for c in CASES}
    assert {"budget", "count", "simulate", "sweep", "replay", "bench", "profiles", "db"} <= commands


BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}")
sys.meta_path.insert(0, Block())
from context_manager.cli import main
main({args!r})
"""


@pytest.mark.parametrize(
    ("blocked", "args", "extra"),
    [
        ("distributed", ["sweep", "--calls", "1", "--dask-scheduler", "tcp://127.0.0.1:1"],
         "dask"),
        ("matplotlib", ["simulate", "--conversation", CONV, "--plot", "/tmp/cm-extra.png"],
         "plot"),
        ("sqlalchemy", ["db", "upgrade", "--url", "sqlite:///:memory:"], "store"),
    ],
)  # fmt: skip
def test_a_missing_extra_is_named_in_one_line(blocked: str, args: list[str], extra: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", BLOCKER.format(blocked=blocked, args=args)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-400:]
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and extra in line, line
