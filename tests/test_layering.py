"""The architecture, enforced: the core imports nothing from the layers above it, every error
class lives in the one error tree, and the engine runs without the optional extras."""

from __future__ import annotations

import ast
import inspect
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import context_manager
from context_manager import errors

PACKAGE = Path(context_manager.__file__).parent

# The core: modules and packages that must not reach up (DESIGN.md, "Layering").
CORE = (
    "errors", "profiles", "tokens", "items", "wire", "budget", "tools", "_jsonl", "_plugins",
    "rollover",
    "server", "compaction", "live",
)  # fmt: skip
ABOVE = ("simulate", "store", "cli", "integrations", "testing", "bench", "replay", "realtime")
OPTIONAL = ("openai", "sqlalchemy", "alembic", "typer", "rich", "websockets", "matplotlib",
            "distributed", "dask", "psycopg")  # fmt: skip
# The one sanctioned optional import in the core: the OpenAI text summarizer (lazily, with a
# one-line error naming the extra).
ALLOWED = {("compaction/openai_summarizer.py", "openai")}


def _imports(path: Path) -> list[str]:
    """Every module a file imports, at any depth (lazy imports count), as absolute names."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                out.append(".".join([*base, *([node.module] if node.module else [])]))
            elif node.module:
                out.append(node.module)
    return out


def _core_files() -> list[Path]:
    files = []
    for name in CORE:
        target = PACKAGE / name
        files.extend(
            sorted(target.rglob("*.py")) if target.is_dir() else [target.with_suffix(".py")]
        )
    return files


def test_the_core_imports_nothing_from_above_and_no_optional_extra() -> None:
    bad = []
    for path in _core_files():
        where = path.relative_to(PACKAGE).as_posix()
        for name in _imports(path):
            top = name.split(".")[0]
            if top == "context_manager":
                layer = name.split(".")[1] if "." in name else ""
                if layer in ABOVE:
                    bad.append(f"{where} imports {name}")
            elif top in OPTIONAL and (where, top) not in ALLOWED:
                bad.append(f"{where} imports {name}")
    assert bad == []


def test_every_exception_class_is_in_the_error_tree() -> None:
    defined = []
    for info in pkgutil.walk_packages(context_manager.__path__, prefix="context_manager."):
        if ".migrations" in info.name or info.name.endswith(("__main__",)):
            continue
        path = Path(info.module_finder.path) / (info.name.rsplit(".", 1)[-1])  # type: ignore[union-attr]
        file = path.with_suffix(".py") if not info.ispkg else path / "__init__.py"
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.ClassDef)
                and any(
                    isinstance(b, ast.Name) and b.id.endswith(("Error", "Exception"))
                    for b in node.bases
                )
                and not node.name.startswith("_")
            ):
                defined.append((info.name, node.name))
    outside = [f"{m}.{c}" for m, c in defined if m != "context_manager.errors"]
    assert outside == []
    tree = [
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if obj.__module__ == "context_manager.errors"
    ]
    assert all(issubclass(cls, errors.ContextManagerError) for cls in tree)
    assert sorted(errors.__all__) == sorted(cls.__name__ for cls in tree)
    # Every error is also at the root, so `from context_manager import XError` always works.
    assert set(errors.__all__) <= set(context_manager.__all__)


def test_the_engine_runs_a_whole_call_without_any_extra() -> None:
    # openai, sqlalchemy, typer, rich and websockets are blocked: the engine, its records,
    # its compaction plans and a rollover plan's client events need none of them.
    code = textwrap.dedent(
        """
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {"openai", "sqlalchemy", "alembic", "typer", "rich",
                                          "websockets", "matplotlib", "distributed"}:
                    raise ImportError(f"blocked: {name}")
        sys.meta_path.insert(0, Block())

        import context_manager
        from context_manager import ContextEngine, ManualClock, RolloverPolicy
        from context_manager.compaction import RollingSummary

        clock = ManualClock()
        engine = ContextEngine("gpt-realtime", "azure", clock=clock,
                               compaction=RollingSummary(trigger=0.05, keep=2),
                               rollover=RolloverPolicy(carry="summary"))
        engine.feed({"type": "session.created", "session": {"id": "s1", "instructions": "Hi."}})
        sent = []
        for n in range(59):  # 1,770 s: within a quarter of the margin of the cut
            clock.advance(30)
            engine.feed({"type": "conversation.item.added", "item": {"id": f"u{n}",
                "type": "message", "role": "user",
                "content": [{"type": "input_text", "text": f"Booking code QX{n} please " * 20}]}})
            engine.feed({"type": "response.created", "response": {"id": f"r{n}"}})
            sent += engine.feed({"type": "response.done", "response": {"id": f"r{n}",
                "status": "completed", "output": [{"id": f"a{n}", "type": "message",
                "role": "assistant", "content": [{"type": "output_text", "text": "Noted."}]}],
                "usage": {"input_tokens": 10, "output_tokens": 2}}})
        plan = engine.plan_rollover()
        events = plan.events
        assert events[0]["type"] == "session.update", events[0]
        assert all(e["type"] == "conversation.item.create" for e in events[1:])
        assert engine.rollover_due, engine.session_age
        print(len(engine.take_records()) > 30, any(e["type"] == "conversation.item.create"
              for e in sent), len(events) > 1)
        blocked = [m for m in ("openai", "sqlalchemy", "typer", "rich", "websockets")
                   if m in sys.modules]
        print(blocked)
        """
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split("\n")[:2] == ["True True True", "[]"]
