"""A process that migrates a database, for the concurrent-migration tests.

Usage: python migrator.py cli|store URL BARRIER COUNT. It imports what it needs, then waits at
a barrier (a directory where each of COUNT processes leaves a file once ready), so that all of
them migrate at the same moment: ``cli`` runs ``context-manager db upgrade --url URL``,
``store`` constructs a `Store` (which migrates on first use).
"""

import os
import sys
import time
from pathlib import Path

mode, url, barrier, count = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
if mode == "cli":
    from context_manager.cli import main
else:
    from context_manager.store import Store

(barrier / str(os.getpid())).touch()
deadline = time.monotonic() + 60
while len(list(barrier.iterdir())) < count and time.monotonic() < deadline:
    time.sleep(0.002)
if mode == "cli":
    main(["db", "upgrade", "--url", url])
else:
    Store(url).close()
