"""What `salesmon run` found the warehouse in when it last finished, so that a rerun on the same data
skips the dbt build and the monitoring flow.

The fingerprint is the dbt project's files and, in the warehouse, the last load that brought rows,
the model registry, the last scoring and the last finished monitoring run. Anything that changes one
of them (a load with new or corrected rows, an edited model, `salesmon train`, `score` or
`monitor` run by hand) makes the next `salesmon run` build and monitor again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from warehouse.dbt import DBT_PROJECT_DIR

PROJECT_PARTS = ("models", "macros", "seeds", "tests", "snapshots", "analyses")
PROJECT_FILES = ("dbt_project.yml", "packages.yml", "profiles.yml")

_WAREHOUSE_STATE_SQL = """
select
    (select coalesce(max(load_id), 0) from raw.load_log
        where rows_loaded > 0 or rows_rejected > 0 or (updated and rows_changed > 0)),
    (select coalesce(string_agg(model_version || ':' || is_champion, ',' order by model_version), '')
        from ml.model_registry),
    (select coalesce(max(scored_at)::text, '') from ml.predictions),
    (select count(*) || '/' || coalesce(max(finished_at)::text, '') from monitoring.runs
        where status in ('success', 'failed'))
"""


def project_hash(project_dir: Path = DBT_PROJECT_DIR) -> str:
    """SHA-256 of the dbt project's sources (not its target/ or logs/)."""
    digest = hashlib.sha256()
    paths = [project_dir / name for name in PROJECT_FILES]
    for part in PROJECT_PARTS:
        paths += sorted((project_dir / part).rglob("*"))
    for path in paths:
        if path.is_file():
            digest.update(str(path.relative_to(project_dir)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def fingerprint(conn: Any) -> str:
    """The dbt project and the warehouse's state, as one string."""
    row = conn.execute(_WAREHOUSE_STATE_SQL).fetchone()
    return json.dumps([project_hash(), *(str(value) for value in row)])


def _state_file(home: Path) -> Path:
    return home / "state" / "run.json"


def last_finished(home: Path, database: str) -> str | None:
    """The fingerprint the last finished `salesmon run` on `database` left, if any."""
    path = _state_file(home)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text()).get(database)
    except (ValueError, AttributeError):
        return None


def record_finished(home: Path, database: str, value: str) -> None:
    """Remember the fingerprint a finished run left on `database` (written atomically)."""
    path = _state_file(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        states = json.loads(path.read_text()) if path.exists() else {}
    except ValueError:
        states = {}
    states[database] = value
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(states, indent=2))
    partial.replace(path)
