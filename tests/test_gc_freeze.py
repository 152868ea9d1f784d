"""warehouse/gc_freeze.py: what a salesmon process keeps is out of Python's later collections and its
exit's, in the `salesmon` command, a monitoring worker and dbt's child."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib.metadata import entry_points

# A process with one reference cycle whose finalizer prints: Python's collections at exit find it
# (and print) unless they are skipped. `freeze` is what the process does first.
_CYCLE_AT_EXIT = """
import gc, sys

class Cycle:
    def __del__(self):
        sys.stdout.write("collected\\n")

def garbage():
    cycle = Cycle()
    cycle.itself = cycle

gc.disable()  # no collection before the process ends
{freeze}
garbage()
"""


def _output(freeze: str) -> str:
    code = _CYCLE_AT_EXIT.format(freeze=textwrap.dedent(freeze))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_a_cycle_left_at_exit_is_collected_unless_the_exit_skips_collections() -> None:
    assert _output("") == "collected\n"  # the control: Python collects at exit
    assert _output("import atexit\nfrom warehouse import gc_freeze\natexit.register(gc_freeze.at_exit)") == ""


def test_what_exists_when_imported_is_kept_out_of_collections_and_the_exit_skips_them() -> None:
    kept = """
        from warehouse import gc_freeze
        garbage()  # made before the freeze: never collected
        gc.enable()
        gc_freeze.imported()
        gc.collect()
    """
    assert _output(kept) == ""
    later = """
        from warehouse import gc_freeze
        gc_freeze.imported()
        gc.enable()
        garbage()  # made after: collected as usual
        gc.collect()
        sys.stdout.write("after the collection\\n")
    """
    assert _output(later) == "collected\nafter the collection\n"


def test_a_monitoring_worker_freezes_what_it_imported_and_skips_the_exits_collections() -> None:
    """The process pool's initializer (monitoring.report.warm_up) freezes Evidently's objects and
    registers the exit's skip."""
    code = "import gc\nfrom monitoring.report import warm_up\nwarm_up()\nprint(gc.get_freeze_count())\n"
    frozen = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert int(frozen) > 100_000  # Evidently, pandas, scipy: hundreds of thousands of objects
    assert _output("from monitoring.report import warm_up\nwarm_up()") == ""


def test_the_salesmon_script_runs_main() -> None:
    """The console script `make install` writes calls `main` (the exit without collections), not the
    Typer app alone."""
    from orchestration.cli import main

    (script,) = entry_points(group="console_scripts", name="salesmon")
    assert script.value == "orchestration.cli:main"
    assert script.load() is main
