"""A dbt process started ahead of its command, so that dbt's start is not on a command's path.

A `dbt build` spends 3 to 4 s before its first query: importing dbt and parsing the project (partial
parsing, nothing changed). A monitoring command spends about as long importing the flow and
Evidently, on one core. `started_ahead()` starts dbt at the command's start, on the other core:
the child imports dbt, parses the project with dbt's own programmatic API
(`dbtRunner().invoke(["parse"])`) and waits; the first `run_dbt` of the command hands it its
arguments, and the child runs them with the parsed manifest (`dbtRunner(manifest=...)`, as dbt's
documentation shows for reusing a manifest). Output, exit status and `DbtError` are those of a plain
`dbt` run. A child whose parse failed runs the command plainly (parsing again, so the error is dbt's
usual one). A command that ends without running dbt closes the child's input; it exits.

The parse runs before `run_dbt` takes the warehouse's dbt lock: it writes nothing when the project
is unchanged (`--no-write-json`; dbt rewrites its partial-parse file only after a change, and reads a
torn one as "parse everything").

`python -m bench.bench_monitoring` prints the one-new-day run with and without it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

# the dbt started ahead in this process, and its environment (used by a command whose dbt variables
# are the same)
_ahead: tuple[subprocess.Popen[str], dict[str, str]] | None = None


@contextmanager
def started_ahead(env: dict[str, str], project_dir: str) -> Iterator[subprocess.Popen[str]]:
    """Within the block, the first dbt command of this process run with the environment `env` runs
    in a dbt started now (the process, yielded)."""
    global _ahead
    child = subprocess.Popen(
        [sys.executable, "-m", "warehouse.dbt_ahead", project_dir],
        env=env,
        cwd=project_dir,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    _ahead = (child, env)
    try:
        yield child
    finally:
        _ahead = None
        if child.poll() is None and child.stdin and not child.stdin.closed:
            child.stdin.close()  # not used: it exits on the end of its input
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if child.stdout:
            child.stdout.close()


def take(args: list[str], env: dict[str, str]) -> subprocess.Popen[str] | None:
    """The dbt started ahead, now running `args` (its output on its stdout), or None when there is
    none (outside `started_ahead`, already used, started with another environment, or it died)."""
    global _ahead
    if _ahead is None or _what_dbt_reads(_ahead[1]) != _what_dbt_reads(env):
        return None
    child, _ahead = _ahead[0], None
    if child.poll() is not None or child.stdin is None:
        return None
    try:
        child.stdin.write(json.dumps(args) + "\n")
        child.stdin.close()
    except (BrokenPipeError, OSError):
        return None
    return child


def _what_dbt_reads(env: dict[str, str]) -> dict[str, str]:
    """The variables that change what dbt does here: its own, the connection's, salesmon's (the
    profile reads SALESMON_PG_PORT). Others may change meanwhile (imports set KMP_* for OpenMP)."""
    return {name: value for name, value in env.items() if name.startswith(("DBT_", "PG", "SALESMON_"))}


def _main(project_dir: str) -> int:
    from dbt.cli.main import dbtRunner

    from warehouse import gc_freeze

    parsed = dbtRunner().invoke(["--quiet", "parse", "--no-write-json", "--project-dir", project_dir])
    gc_freeze.imported()  # dbt and the parsed project: out of the build's collections and the exit's
    line = sys.stdin.readline()
    if not line:
        return 0
    args = json.loads(line)
    runner = dbtRunner(manifest=parsed.result) if parsed.success else dbtRunner()
    result = runner.invoke(args)
    if result.success:
        return 0
    return 2 if result.exception is not None else 1


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))
