"""``python -m context_manager`` and the ``context-manager`` console script."""

from __future__ import annotations

import sys


def main() -> None:
    """Run the command line, or say in one line which extra it needs."""
    try:
        from .cli import main as cli_main
    except ImportError as exc:
        sys.stderr.write(
            f"error: the command line needs the [cli] extra (pip install 'context-manager[cli]'):"
            f" {exc}\n"
        )
        raise SystemExit(2) from None
    cli_main()


if __name__ == "__main__":
    main()
