"""The baseline of bench_monitoring: the monitoring module's own loop, without its 10-second sleep.

    python -m bench.module_loop --data-dir DIR --start 2017-05-18 --end 2017-08-15 --database URL

What a course-style monitoring script does (Evidently's batch-monitoring example): load train.csv
once, fit a LinearRegression on the reference window (the 28 days before `--start`), then for each
day filter its rows in memory, predict them, run a 3-metric Evidently report against the reference
(`ColumnDriftMetric` on the prediction, `DatasetDriftMetric`, `DatasetMissingValuesMetric`, through
Evidently's legacy Report API, which computes without drawing) and insert one row into
`bench.module_loop_metrics`. Timed end to end by the benchmark, as `salesmon monitor` is: the
interpreter's start and the imports count for both.
"""

from __future__ import annotations

import argparse
import time
import warnings
from datetime import date, timedelta
from pathlib import Path

NUMERICAL = ["onpromotion"]
CATEGORICAL = ["store_nbr", "family"]
REFERENCE_DAYS = 28


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--start", type=date.fromisoformat, required=True)
    parser.add_argument("--end", type=date.fromisoformat, required=True)
    parser.add_argument("--database", required=True, help="libpq connection string")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    started = time.perf_counter()

    import pandas as pd
    import psycopg
    from evidently.legacy.metrics import ColumnDriftMetric, DatasetDriftMetric, DatasetMissingValuesMetric
    from evidently.legacy.pipeline.column_mapping import ColumnMapping
    from evidently.legacy.report import Report
    from sklearn.linear_model import LinearRegression

    train = pd.read_csv(args.data_dir / "train.csv", parse_dates=["date"])
    train["family_code"] = train["family"].astype("category").cat.codes
    inputs = ["onpromotion", "store_nbr", "family_code"]
    first_reference = pd.Timestamp(args.start - timedelta(days=REFERENCE_DAYS))
    reference = train[(train["date"] >= first_reference) & (train["date"] < pd.Timestamp(args.start))].copy()
    model = LinearRegression().fit(reference[inputs].fillna(0), reference["sales"].fillna(0))
    reference["prediction"] = model.predict(reference[inputs].fillna(0))
    mapping = ColumnMapping(
        prediction="prediction", numerical_features=NUMERICAL, categorical_features=CATEGORICAL, target=None
    )
    columns = [*NUMERICAL, *CATEGORICAL, "prediction"]
    with psycopg.connect(args.database) as conn:
        conn.execute("create schema if not exists bench")
        conn.execute(
            "create table if not exists bench.module_loop_metrics (slice_date date, prediction_drift float8,"
            " num_drifted_columns integer, share_missing_values float8)"
        )
        conn.execute("truncate bench.module_loop_metrics")
        conn.commit()
        day = args.start
        while day <= args.end:
            current = train[train["date"] == pd.Timestamp(day)].copy()
            current["prediction"] = model.predict(current[inputs].fillna(0))
            report = Report(
                metrics=[
                    ColumnDriftMetric(column_name="prediction"),
                    DatasetDriftMetric(),
                    DatasetMissingValuesMetric(),
                ]
            )
            report.run(
                reference_data=reference[columns], current_data=current[columns], column_mapping=mapping
            )
            result = report.as_dict()["metrics"]
            conn.execute(
                "insert into bench.module_loop_metrics values (%s, %s, %s, %s)",
                (
                    day,
                    float(result[0]["result"]["drift_score"]),
                    int(result[1]["result"]["number_of_drifted_columns"]),
                    float(result[2]["result"]["current"]["share_of_missing_values"]),
                ),
            )
            conn.commit()
            day += timedelta(days=1)
    print(f"module loop: {(args.end - args.start).days + 1} days in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
