"""The model registry in PostgreSQL: versions, artifacts, the champion flag, importances, reference rows.

Everything a scorer needs is in the database: `load_model()` reads the champion's (or a named
version's) pickled Pipeline from `ml.model_registry.artifact`, checks its SHA-256 and the
scikit-learn version that pickled it (`sklearn_version`), and returns it.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
import psycopg
from psycopg import sql

from models_ml.errors import FIRST_TRAIN_HINT, ModelError
from models_ml.features import BOOLEAN_FEATURES, FEATURES

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline
# scikit-learn and joblib are imported where a model is pickled or unpickled: the monitoring flow's
# process reads the registry (the champion, reference rows) without a model, and spares their import
# (0.8 s).

# Columns of ml.reference, in table order (integers and booleans are written as whole numbers).
REFERENCE_COLUMNS: tuple[str, ...] = (
    "model_version",
    "sales_date",
    "store_nbr",
    "family",
    "sales",
    "prediction",
    *FEATURES[2:],
)
_REFERENCE_INTEGERS = (
    "store_nbr",
    "onpromotion",
    "cluster",
    "day_of_week",
    "day_of_month",
    "month",
    *BOOLEAN_FEATURES,
)


@dataclass
class ModelRecord:
    """One registry row to write: a fitted candidate with its windows and validation metrics."""

    model_version: str
    algorithm: str
    pipeline: Pipeline
    params: dict[str, Any]
    train_start: date
    train_end: date
    valid_start: date
    valid_end: date
    monitor_from: date
    valid_metrics: dict[str, float]
    metrics: dict[str, Any]
    is_champion: bool = False
    features: list[str] = field(default_factory=lambda: list(FEATURES))


def serialize(pipeline: Pipeline) -> tuple[bytes, str]:
    """The pipeline as joblib bytes and their SHA-256 (hex)."""
    import joblib

    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer, compress=3)
    artifact = buffer.getvalue()
    return artifact, hashlib.sha256(artifact).hexdigest()


def deserialize(artifact: bytes, sha256: str | None = None) -> Pipeline:
    """Unpickle an artifact, refusing it when its SHA-256 differs from the registered one."""
    if sha256 is not None and hashlib.sha256(artifact).hexdigest() != sha256:
        raise ModelError(
            "the model artifact does not match its registered SHA-256: the registry row is corrupt"
        )
    import joblib

    return joblib.load(io.BytesIO(artifact))


class SklearnVersionWarning(UserWarning):
    """A model was pickled by another patch release of scikit-learn, or by an unknown one."""


def check_sklearn_version(model_version: str, pickled_by: str | None, installed: str | None = None) -> None:
    """Refuse a model pickled by another scikit-learn minor release (its pickles are not guaranteed to
    load or to predict the same); warn for another patch release or an unrecorded version."""
    if installed is None:
        import sklearn

        installed = sklearn.__version__
    if pickled_by == installed:
        return
    fix = f"retrain (salesmon train) or install scikit-learn=={pickled_by}"
    if pickled_by is None:
        warnings.warn(
            f"model {model_version} has no recorded scikit-learn version (registered before versions were"
            f" recorded); loading it with scikit-learn {installed}",
            SklearnVersionWarning,
            stacklevel=3,
        )
    elif pickled_by.split(".")[:2] != installed.split(".")[:2]:
        raise ModelError(
            f"model {model_version} was pickled by scikit-learn {pickled_by}, but {installed} is installed:"
            f" {fix}"
        )
    else:
        warnings.warn(
            f"model {model_version} was pickled by scikit-learn {pickled_by}, {installed} is installed"
            f" (same minor release: loading it); to silence this, {fix}",
            SklearnVersionWarning,
            stacklevel=3,
        )


def version_stamp(conn: psycopg.Connection, now: datetime | None = None) -> str:
    """A fresh version prefix like `20261127T051233` (UTC), suffixed when a version with it exists.

    Call it inside the transaction that registers the versions (`save_training`): it locks the
    registry against other registrations until that transaction ends, so two trainings in the same
    second get two stamps instead of colliding.
    """
    conn.execute("lock table ml.model_registry in share row exclusive mode")
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
    candidate, suffix = stamp, 1
    while conn.execute(
        "select 1 from ml.model_registry where model_version like %s limit 1", (f"{candidate}-%",)
    ).fetchone():
        suffix += 1
        candidate = f"{stamp}.{suffix}"
    return candidate


def save_training(
    conn: psycopg.Connection,
    records: list[ModelRecord],
    *,
    importance: pd.DataFrame,
    references: dict[str, pd.DataFrame],
) -> None:
    """Register a training run's candidates in one transaction and move the champion flag to the winner.

    Inserts one `ml.model_registry` row per candidate (artifact and SHA-256 included), the champion's
    permutation importances (`importance`: feature, importance_mean, importance_std), and each
    version's reference rows (`references`: version -> validation rows with sales and prediction),
    replacing whatever those versions had. Either all of it is visible afterwards or none.
    """
    import sklearn

    champions = [record for record in records if record.is_champion]
    if len(champions) != 1:
        raise ValueError(f"a training run registers exactly one champion, got {len(champions)}")
    with conn.transaction():
        conn.execute("lock table ml.model_registry in share row exclusive mode")
        conn.execute("update ml.model_registry set is_champion = false where is_champion")
        for record in records:
            artifact, sha256 = serialize(record.pipeline)
            conn.execute(
                """
                insert into ml.model_registry (
                    model_version, algorithm, params, features, train_start, train_end, valid_start,
                    valid_end, monitor_from, valid_rmsle, valid_mae, valid_rmse, metrics, is_champion,
                    artifact, artifact_sha256, sklearn_version
                )
                values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                """,
                (
                    record.model_version,
                    record.algorithm,
                    json.dumps(record.params),
                    json.dumps(record.features),
                    record.train_start,
                    record.train_end,
                    record.valid_start,
                    record.valid_end,
                    record.monitor_from,
                    record.valid_metrics["rmsle"],
                    record.valid_metrics["mae"],
                    record.valid_metrics["rmse"],
                    json.dumps(record.metrics),
                    record.is_champion,
                    artifact,
                    sha256,
                    sklearn.__version__,
                ),
            )
        champion = champions[0].model_version
        conn.execute("delete from ml.feature_importance where model_version = %s", (champion,))
        with conn.cursor() as cursor:
            cursor.executemany(
                """
                insert into ml.feature_importance (model_version, feature, importance_mean, importance_std)
                values (%s, %s, %s, %s)
                """,
                [
                    (champion, row.feature, float(row.importance_mean), float(row.importance_std))
                    for row in importance.itertuples(index=False)
                ],
            )
        for version, frame in references.items():
            conn.execute("delete from ml.reference where model_version = %s", (version,))
            copy_frame(conn, "reference", reference_rows(version, frame), REFERENCE_COLUMNS)


def reference_rows(version: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Validation rows (key, sales, prediction, inputs) shaped as `ml.reference` rows of `version`."""
    rows = frame.assign(model_version=version)[list(REFERENCE_COLUMNS)].copy()
    for name in _REFERENCE_INTEGERS:
        rows[name] = rows[name].round().astype("Int64")
    return rows


def copy_frame(conn: psycopg.Connection, table: str, frame: pd.DataFrame, columns: tuple[str, ...]) -> int:
    """COPY a DataFrame's `columns` into `ml.<table>` (or a temp table when `table` has no schema)."""
    buffer = io.StringIO()
    frame[list(columns)].to_csv(buffer, index=False, header=False, date_format="%Y-%m-%d")
    target = sql.Identifier("ml", table) if "." not in table else sql.Identifier(*table.split("."))
    statement = sql.SQL("copy {} ({}) from stdin (format csv)").format(
        target, sql.SQL(", ").join(sql.Identifier(name) for name in columns)
    )
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(buffer.getvalue())
    return len(frame)


def champion_version(conn: psycopg.Connection) -> str | None:
    """The current champion's version, or None before the first training."""
    row = conn.execute("select model_version from ml.model_registry where is_champion").fetchone()
    return row[0] if row else None


def champion_monitor_from(conn: psycopg.Connection) -> date | None:
    """The champion's first monitored day, or None before the first training."""
    row = conn.execute("select monitor_from from ml.model_registry where is_champion").fetchone()
    return row[0] if row else None


def list_versions(conn: psycopg.Connection) -> list[str]:
    """Every registered version, newest first."""
    rows = conn.execute(
        "select model_version from ml.model_registry order by created_at desc, model_version"
    ).fetchall()
    return [row[0] for row in rows]


def load_model(
    version: str | None = None, *, conn: psycopg.Connection | None = None
) -> tuple[str, Pipeline, list[str]]:
    """Load a registered model from the database: (version, fitted Pipeline, feature list).

    `version` None means the champion. Raises `ModelError` for an unknown version or when no
    model has been trained yet. Only the database is needed: the artifact is stored in the registry.
    """
    if conn is None:
        from warehouse.db import connect

        with connect() as own:
            return load_model(version, conn=own)
    if version is None:
        row = conn.execute(
            """
            select model_version, artifact, artifact_sha256, features, sklearn_version
            from ml.model_registry
            where is_champion
            """
        ).fetchone()
        if row is None:
            raise ModelError(f"no champion model yet: {FIRST_TRAIN_HINT}")
    else:
        row = conn.execute(
            """
            select model_version, artifact, artifact_sha256, features, sklearn_version
            from ml.model_registry
            where model_version = %s
            """,
            (version,),
        ).fetchone()
        if row is None:
            known = list_versions(conn)
            hint = f"known versions: {', '.join(known[:5])}" if known else FIRST_TRAIN_HINT
            raise ModelError(f"unknown model version {version!r}; {hint}")
    model_version, artifact, sha256, features, pickled_by = row
    check_sklearn_version(model_version, pickled_by)
    return model_version, deserialize(bytes(artifact), sha256), list(features)
