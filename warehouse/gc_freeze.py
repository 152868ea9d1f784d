"""Python's cyclic garbage collector told to leave alone what a salesmon process keeps (`gc.freeze`).

A salesmon process holds Prefect, pandas, scikit-learn, Evidently or dbt in memory: millions of
objects that live as long as it does. Python's collector scans them again at every full collection,
and at exit in the collections it runs while it tears the modules down. Measured on this project's
2-core machine (docs/monitoring.md, "Cost"): a process with Evidently and Prefect imported takes 1.0
to 1.3 s to exit, dbt 0.5 to 0.7 s after a build; 0.04 to 0.07 s each once frozen.

- `imported()`, after a process's heavy imports (a monitoring worker's initializer, dbt's child once
  it parsed the project): what exists now moves to Python's permanent generation, which later
  collections skip (a day's metrics 5 to 8 % faster in a worker).
- `at_exit()`, at the process's end (the `salesmon` command, registered by `imported()` for a worker):
  nothing is scanned for cycles any more. Objects are still released by reference count (files
  flushed and closed, atexit handlers run); only cyclic garbage is left to the end of the process.
"""

from __future__ import annotations

import atexit
import gc

_registered = False


def imported() -> None:
    """Keep what this process has imported out of every later collection, and skip the last ones at
    its exit."""
    global _registered
    gc.freeze()
    if not _registered:
        atexit.register(at_exit)  # run after the handlers registered later (Prefect's drains)
        _registered = True


def at_exit() -> None:
    """The process ends now: no more collections."""
    gc.disable()
    gc.freeze()
