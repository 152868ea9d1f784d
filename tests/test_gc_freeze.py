"""warehouse/gc_freeze.py: what a salesmon process keeps is out of Python's later collections and its
exit's, in the `salesmon` command, a monitoring worker and dbt's child."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

from tests._fixtures import run_flow_script

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


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def _output(freeze: str) -> str:
    return _run(_CYCLE_AT_EXIT.format(freeze=textwrap.dedent(freeze)))


def test_a_cycle_left_at_exit_is_collected_unless_the_exit_skips_collections() -> None:
    assert _output("") == "collected\n"  # the control: Python collects at exit
    assert _output("import atexit\nfrom warehouse import gc_freeze\natexit.register(gc_freeze.at_exit)") == ""
    ended = "import gc\nfrom warehouse import gc_freeze\ngc_freeze.at_exit()\n"
    ended += "print(gc.isenabled(), gc.get_freeze_count() > 0)"
    assert _run(ended) == "False True\n"


def test_what_exists_when_imported_is_kept_out_of_collections_and_the_exit_skips_them() -> None:
    # each snippet runs before the template's last garbage(), a cycle left for the exit to find
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


def test_only_the_first_call_freezes() -> None:
    """A second caller's warm-up freezes nothing: what is alive then (a run's data) is collected once
    it is garbage."""
    again = """
        from warehouse import gc_freeze
        gc_freeze.imported()
        gc.enable()
        alive = Cycle()
        alive.itself = alive
        gc_freeze.imported()  # a second call, while `alive` is referenced
        del alive
        gc.collect()
        sys.stdout.write("after the collection\\n")
    """
    assert _output(again) == "collected\nafter the collection\n"


def test_warm_up_freezes_what_it_imported_and_skips_the_exits_collections() -> None:
    code = "import gc\nfrom monitoring.report import warm_up\nwarm_up()\nprint(gc.get_freeze_count())\n"
    assert int(_run(code)) > 100_000  # Evidently, pandas, scipy: hundreds of thousands of objects
    assert _output("from monitoring.report import warm_up\nwarm_up()") == ""


POOLED_FLOW = """
import gc

from orchestration.prefect_server import start_server
from orchestration.runners import make_task_runner
from prefect import flow, task


@task
def frozen_in_the_worker():
    return gc.get_freeze_count()


@flow(task_runner=make_task_runner("process", 1))
def pooled():
    return frozen_in_the_worker.submit().result()


if __name__ == "__main__":
    start_server().wait()
    print("frozen", pooled())
"""


def test_a_worker_of_the_monitoring_flows_process_pool_starts_frozen(tmp_path: Path) -> None:
    """The pool orchestration/runners.py makes (Prefect's ProcessPoolTaskRunner) starts each worker
    with `warm_up`: the task finds Evidently's objects frozen in its process."""
    done = run_flow_script(tmp_path, POOLED_FLOW, timeout=180)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    frozen = [line for line in done.stdout.splitlines() if line.startswith("frozen ")]
    assert frozen and int(frozen[-1].split()[1]) > 100_000, done.stdout[-2000:]


def test_the_salesmon_script_runs_main() -> None:
    """The console script `make install` writes calls `main` (the exit without collections), not the
    Typer app alone."""
    from orchestration.cli import main

    (script,) = entry_points(group="console_scripts", name="salesmon")
    assert script.value == "orchestration.cli:main"
    assert script.load() is main
