"""The public surface: `__all__` complete and sorted; the root import stays light."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import context_manager


def test_all_is_complete_and_sorted() -> None:
    public = sorted(
        (
            name
            for name in vars(context_manager)
            if not name.startswith("_") or name == "__version__"
        ),
        key=str.casefold,
    )
    modules = {m.name for m in pkgutil.iter_modules(context_manager.__path__)}
    public = [name for name in public if name not in modules and name != "annotations"]
    assert context_manager.__all__ == sorted(context_manager.__all__)
    assert set(context_manager.__all__) == set(public)


def test_every_module_declares_all() -> None:
    for info in pkgutil.walk_packages(context_manager.__path__, prefix="context_manager."):
        if info.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        module = importlib.import_module(info.name)
        assert hasattr(module, "__all__"), info.name
        for name in module.__all__:
            assert hasattr(module, name), f"{info.name}.{name}"


def test_importing_the_package_loads_neither_openai_nor_the_cli() -> None:
    code = "import sys, context_manager; print(sorted(m for m in ('openai', 'typer', 'rich') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
