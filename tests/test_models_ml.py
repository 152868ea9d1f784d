"""Training, the model registry and batch scoring on small generated data (real PostgreSQL and dbt).

The module builds the real features mart (`dbt build --select +fct_sales_features`) on 6 generated
stores over 10.5 months, trains once through the command line, then scores, rescores and builds
the ml marts against it.

Over 400 lines: the tests share the module's one expensive set-up (the pipeline above).
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
from typer.testing import CliRunner

from models_ml import metrics, pipelines
from models_ml.errors import FIRST_BUILD_HINT, FIRST_TRAIN_HINT, ModelError
from models_ml.features import (
    BOOLEAN_FEATURES,
    FEATURES,
    HISTORY_FEATURES,
    last_actual_date,
    last_feature_date,
)
from models_ml.registry import ModelRecord, champion_monitor_from, load_model, save_training
from models_ml.score import month_chunks, score
from models_ml.train import _fit_start, train
from orchestration.cli import app
from warehouse.dbt import run_dbt

STORES = 6
FAMILIES = 33
START = date(2016, 10, 1)
END = date(2017, 8, 15)  # last day with sales; the generator adds 16 forecast-request days after it
LAST_FEATURE_DAY = END + timedelta(days=16)
ML_MARTS = ["--select", "path:models/staging/ml", "path:models/marts/ml", "--indirect-selection", "cautious"]

runner = CliRunner()


def _frame(conn: psycopg.Connection, query: str, params: tuple = ()) -> pd.DataFrame:
    cursor = conn.execute(query, params)
    return pd.DataFrame(cursor.fetchall(), columns=[column.name for column in cursor.description])


@pytest.fixture(scope="module")
def dbt_paths(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Private target and log folders, so that concurrent dbt runs never share `target/`."""
    root = tmp_path_factory.mktemp("dbt-ml")
    return ["--target-path", str(root / "target"), "--log-path", str(root / "logs")]


@pytest.fixture(scope="module")
def features(module_database: str, tmp_path_factory: pytest.TempPathFactory, dbt_paths: list[str]) -> str:
    """Generated data loaded into raw.* and the real features mart built on it."""
    from datagen import generate
    from warehouse.loader import load_folder

    data_dir: Path = tmp_path_factory.mktemp("ml-data")
    generate(data_dir, stores=STORES, start=START, end=END, seed=7)
    load_folder(data_dir)
    # One dbt invocation: the features mart with everything upstream, and the ml marts, which must
    # build (empty) before any training.
    run_dbt(["build", "--select", "+fct_sales_features", *ML_MARTS[1:], *dbt_paths], quiet=True)
    return module_database


# --- before any training (these run first: the module's model is trained by a later fixture) ---


def test_ml_marts_build_empty_before_any_training(features: str) -> None:
    with psycopg.connect(features) as conn:
        assert conn.execute("select count(*) from marts.fct_predictions_vs_actuals").fetchone() == (0,)
        assert conn.execute("select count(*) from marts.dim_model_versions").fetchone() == (0,)
        assert champion_monitor_from(conn) is None


def test_cli_score_before_training_says_train_first(features: str) -> None:
    result = runner.invoke(app, ["score", "--start", "2017-06-01", "--end", "2017-06-30"])
    assert result.exit_code == 1
    assert FIRST_TRAIN_HINT in result.output
    assert "Traceback" not in result.output


# --- training through the command line, once for the module ------------------------------------


@pytest.fixture(scope="module")
def trained(features: str) -> dict:
    """`salesmon train` with the default monitor_from; the registry rows it wrote."""
    result = runner.invoke(app, ["train"])
    assert result.exit_code == 0, result.output
    with psycopg.connect(features) as conn:
        registry = _frame(
            conn,
            "select model_version, algorithm, params, features, train_start, train_end, valid_start,"
            " valid_end, monitor_from, valid_rmsle, valid_mae, valid_rmse, metrics, is_champion,"
            " artifact, artifact_sha256 from ml.model_registry",
        )
    champion = registry.loc[registry["is_champion"]].iloc[0]
    other = registry.loc[~registry["is_champion"]].iloc[0]
    return {
        "output": result.output,
        "registry": registry,
        "champion": champion,
        "other": other,
        "db": features,
    }


def test_cli_train_prints_the_validation_table_and_champion(trained: dict) -> None:
    output = trained["output"]
    for name in ("seasonal_naive", "linear", "hgb"):
        assert any(line.startswith(name) for line in output.splitlines()), output
    assert f"champion: {trained['champion']['model_version']}" in output
    assert "vs seasonal-naive" in output


def test_champion_beats_seasonal_naive_by_a_margin(trained: dict) -> None:
    validation = trained["champion"]["metrics"]["validation"]
    champion_rmsle = trained["champion"]["valid_rmsle"]
    naive = validation["seasonal_naive"]["rmsle"]
    assert champion_rmsle == pytest.approx(min(validation["linear"]["rmsle"], validation["hgb"]["rmsle"]))
    assert champion_rmsle <= 0.9 * naive, (champion_rmsle, naive)


def test_registry_rows_hold_windows_features_metrics_and_artifact(trained: dict) -> None:
    registry = trained["registry"]
    assert len(registry) == 2
    assert registry["is_champion"].sum() == 1
    assert {version.rsplit("-", 1)[1] for version in registry["model_version"]} == {"linear", "hgb"}
    assert len({version.rsplit("-", 1)[0] for version in registry["model_version"]}) == 1
    with psycopg.connect(trained["db"]) as conn:
        first_with_history = conn.execute(
            "select min(sales_date) from marts.fct_sales_features"
            " where sales is not null and sales_lag_28 is not null"
        ).fetchone()[0]
    monitor_from = END - timedelta(days=90)
    for row in registry.itertuples():
        assert row.features == list(FEATURES)
        assert row.monitor_from == monitor_from
        assert row.valid_start == monitor_from - timedelta(days=28)
        assert row.valid_end == monitor_from - timedelta(days=1)
        assert row.train_end == row.valid_start - timedelta(days=1)
        assert row.train_start == first_with_history == START + timedelta(days=28)
        assert hashlib.sha256(bytes(row.artifact)).hexdigest() == row.artifact_sha256
        name = row.model_version.rsplit("-", 1)[1]
        assert row.valid_rmsle == pytest.approx(row.metrics["validation"][name]["rmsle"])
        assert row.valid_mae == pytest.approx(row.metrics["validation"][name]["mae"])
        assert row.params["fit_rows"] == row.params["training_rows_available"] > 0


def test_the_retrain_and_demo_steps_read_the_champion_and_the_last_days(trained: dict) -> None:
    """What `salesmon demo` and the retrain flow ask the registry and the features table."""
    with psycopg.connect(trained["db"]) as conn:
        assert champion_monitor_from(conn) == trained["champion"]["monitor_from"]
        assert last_actual_date(conn) == END
        # the forecast requests (test.csv): 16 days after the last day with sales
        assert last_feature_date(conn) == END + timedelta(days=16)


def test_loaded_artifact_reproduces_the_stored_reference_predictions(trained: dict) -> None:
    champion = trained["champion"]["model_version"]
    version, pipeline, feature_list = load_model()
    assert version == champion
    assert feature_list == list(FEATURES)
    with psycopg.connect(trained["db"]) as conn:
        reference = _frame(conn, "select * from ml.reference where model_version = %s", (champion,))
    # Booleans come back as Python bools, text as str: the pipeline coerces them itself.
    predicted = pipeline.predict(reference[feature_list])
    np.testing.assert_allclose(predicted, reference["prediction"].to_numpy(), rtol=1e-9, atol=1e-9)


def test_a_model_pickled_by_another_scikit_learn_is_refused_or_warned(trained: dict) -> None:
    """Each registered model keeps the scikit-learn version that pickled it; loading it with another
    minor release is refused with the fix, another patch release or an unknown version warns."""
    import sklearn

    from models_ml.errors import ModelError
    from models_ml.registry import SklearnVersionWarning, check_sklearn_version

    champion = trained["champion"]["model_version"]
    with psycopg.connect(trained["db"]) as conn:
        stored = conn.execute(
            "select distinct sklearn_version from ml.model_registry where model_version like %s",
            (champion.rsplit("-", 1)[0] + "-%",),
        ).fetchall()
    assert stored == [(sklearn.__version__,)]
    check_sklearn_version(champion, "1.9.1", installed="1.9.1")  # the same: silent
    with pytest.raises(
        ModelError, match=r"pickled by scikit-learn 1\.5\.2, but 1\.9\.1 is installed.*salesmon train"
    ):
        check_sklearn_version(champion, "1.5.2", installed="1.9.1")
    with pytest.warns(SklearnVersionWarning, match="same minor release"):
        check_sklearn_version(champion, "1.9.0", installed="1.9.1")
    with pytest.warns(SklearnVersionWarning, match="no recorded scikit-learn version"):
        check_sklearn_version(champion, None, installed="1.9.1")
    with psycopg.connect(trained["db"]) as conn:
        conn.execute(
            "update ml.model_registry set sklearn_version = '0.24.2' where model_version = %s", (champion,)
        )
    try:
        with pytest.raises(ModelError, match="scikit-learn 0.24.2"):
            load_model(champion)
    finally:
        with psycopg.connect(trained["db"]) as conn:
            conn.execute(
                "update ml.model_registry set sklearn_version = %s where model_version = %s",
                (sklearn.__version__, champion),
            )


def test_reference_rows_are_the_validation_window_rows_with_sales(trained: dict) -> None:
    champion = trained["champion"]
    with psycopg.connect(trained["db"]) as conn:
        expected = conn.execute(
            "select count(*) from marts.fct_sales_features"
            " where sales_date between %s and %s and sales is not null",
            (champion["valid_start"], champion["valid_end"]),
        ).fetchone()[0]
        per_version = conn.execute(
            "select model_version, count(*), min(sales_date), max(sales_date), count(sales),"
            " min(prediction) from ml.reference group by model_version"
        ).fetchall()
    assert expected == 28 * STORES * FAMILIES
    assert {row[0] for row in per_version} == set(trained["registry"]["model_version"])
    for _version, count, first, last, with_sales, lowest in per_version:
        assert (count, with_sales) == (expected, expected)
        assert (first, last) == (champion["valid_start"], champion["valid_end"])
        assert lowest >= 0


def test_feature_importance_of_the_champion_ranks_sales_history_high(trained: dict) -> None:
    with psycopg.connect(trained["db"]) as conn:
        rows = conn.execute(
            "select model_version, feature, importance_mean from ml.feature_importance"
            " order by importance_mean desc"
        ).fetchall()
    assert {row[0] for row in rows} == {trained["champion"]["model_version"]}
    assert sorted(row[1] for row in rows) == sorted(FEATURES)
    top_three = [row[1] for row in rows[:3]]
    assert set(top_three) & set(HISTORY_FEATURES), rows[:5]
    assert rows[0][2] > 0


# --- batch scoring ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scored(trained: dict) -> dict:
    """The monitored period (monitor_from .. last forecast-request day) scored twice with the champion."""
    start, end = trained["champion"]["monitor_from"], LAST_FEATURE_DAY
    first = score(start, end)
    with psycopg.connect(trained["db"]) as conn:
        first_rows = _frame(conn, "select * from ml.predictions")
    second = score(start, end)
    with psycopg.connect(trained["db"]) as conn:
        second_rows = _frame(conn, "select * from ml.predictions")
    return {
        "start": start,
        "end": end,
        "first": first,
        "second": second,
        "before": first_rows,
        "after": second_rows,
    }


def test_scoring_twice_leaves_one_row_per_key_and_replaces_values(scored: dict, trained: dict) -> None:
    days = (scored["end"] - scored["start"]).days + 1
    keys = days * STORES * FAMILIES
    assert scored["first"].rows == scored["second"].rows == keys
    assert scored["first"].chunks == len(list(month_chunks(scored["start"], scored["end"])))
    before, after = scored["before"], scored["after"]
    key = ["sales_date", "store_nbr", "family", "model_version"]
    assert len(after) == len(after.drop_duplicates(key)) == keys
    assert set(after["model_version"]) == {trained["champion"]["model_version"]}
    merged = before.merge(after, on=key, suffixes=("_before", "_after"))
    assert len(merged) == keys
    assert (merged["scored_at_after"] > merged["scored_at_before"]).all()
    np.testing.assert_allclose(merged["prediction_after"], merged["prediction_before"])
    assert (after["prediction"] >= 0).all()


def test_scoring_with_another_version_adds_rows_for_that_version_only(scored: dict, trained: dict) -> None:
    other = trained["other"]["model_version"]
    result = score(scored["start"], scored["start"] + timedelta(days=9), other)
    assert result.model_version == other
    assert result.rows == 10 * STORES * FAMILIES
    with psycopg.connect(trained["db"]) as conn:
        after = _frame(conn, "select * from ml.predictions")
    champion_rows = after[after["model_version"] == trained["champion"]["model_version"]]
    assert len(champion_rows) == len(scored["after"])
    assert champion_rows["scored_at"].max() == scored["after"]["scored_at"].max()
    assert (after["model_version"] == other).sum() == result.rows


def test_predictions_mart_errors_match_pandas(scored: dict, trained: dict, dbt_paths: list[str]) -> None:
    run_dbt(["build", *ML_MARTS, *dbt_paths], quiet=True)
    with psycopg.connect(trained["db"]) as conn:
        mart = _frame(conn, "select * from marts.fct_predictions_vs_actuals")
        predictions = conn.execute("select count(*) from ml.predictions").fetchone()[0]
        actuals = _frame(
            conn,
            "select date as sales_date, store_nbr, family, sales from raw.train where date >= %s",
            (scored["start"],),
        )
        versions = _frame(conn, "select * from marts.dim_model_versions")
    assert len(mart) == predictions
    sample = mart.sample(n=min(len(mart), 2000), random_state=0).merge(
        actuals, on=["sales_date", "store_nbr", "family"], how="left"
    )
    known = sample["sales"].notna()
    assert (sample["has_actual"] == known).all()
    assert known.any() and (~known).any()  # the range covers days with and without actuals
    np.testing.assert_allclose(sample["actual_sales"].astype(float), sample["sales"].astype(float))
    np.testing.assert_allclose(sample["error"].astype(float), sample["prediction"] - sample["sales"])
    np.testing.assert_allclose(
        sample["abs_error"].astype(float), (sample["prediction"] - sample["sales"]).abs()
    )
    expected_sle = (np.log1p(sample["prediction"]) - np.log1p(sample["sales"])) ** 2
    np.testing.assert_allclose(sample["squared_log_error"].astype(float), expected_sle, rtol=1e-9, atol=1e-12)
    assert sample["store_type"].notna().all() and sample["city"].notna().all()
    champion = versions.loc[versions["is_champion"]].iloc[0]
    assert champion["model_version"] == trained["champion"]["model_version"]
    naive = trained["champion"]["metrics"]["validation"]["seasonal_naive"]["rmsle"]
    assert champion["rmsle_vs_seasonal_naive"] == pytest.approx(champion["valid_rmsle"] / naive - 1)
    assert champion["feature_count"] == len(FEATURES)


# --- command-line errors --------------------------------------------------------------------------


def test_cli_rejects_unknown_version_and_reversed_range(trained: dict) -> None:
    unknown = runner.invoke(
        app, ["score", "--start", "2017-06-01", "--end", "2017-06-02", "--model-version", "nope"]
    )
    assert unknown.exit_code == 1
    assert "unknown model version 'nope'" in unknown.output
    reversed_range = runner.invoke(app, ["score", "--start", "2017-06-02", "--end", "2017-06-01"])
    assert reversed_range.exit_code == 1
    assert "before" in reversed_range.output


def test_train_with_no_training_window_says_so(trained: dict) -> None:
    with pytest.raises(ModelError, match="no training rows before"):
        train(START + timedelta(days=30))


def test_score_of_a_range_without_features_says_build_first(trained: dict) -> None:
    with pytest.raises(ModelError, match="salesmon dbt build"):
        score(date(2010, 1, 1), date(2010, 1, 31))


def test_cli_train_and_score_on_a_fresh_warehouse_say_load_and_build_first(database: str) -> None:
    for args in (["train"], ["score", "--start", "2017-06-01", "--end", "2017-06-30"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, result.output
        assert FIRST_BUILD_HINT in result.output
        assert "Traceback" not in result.output


# --- the champion flag moves in one transaction ----------------------------------------------------


def test_champion_flag_moves_atomically(trained: dict) -> None:
    old = trained["champion"]["model_version"]
    _version, pipeline, _features = load_model(old)
    windows = {name: trained["champion"][name] for name in ("valid_start", "valid_end", "monitor_from")}
    common = {
        "algorithm": "HistGradientBoostingRegressor",
        "pipeline": pipeline,
        "params": {},
        "train_start": trained["champion"]["train_start"],
        "train_end": trained["champion"]["train_end"],
        "valid_metrics": {"rmsle": 0.1, "mae": 1.0, "rmse": 2.0},
        "metrics": {},
        **windows,
    }
    empty_importance = pd.DataFrame(columns=["feature", "importance_mean", "importance_std"])
    with psycopg.connect(trained["db"]) as conn:
        # A failure half-way (a duplicate version) leaves the old champion in place.
        duplicate = [
            ModelRecord(model_version="t-new", is_champion=True, **common),
            ModelRecord(model_version=old, **common),
        ]
        with pytest.raises(psycopg.errors.UniqueViolation):
            save_training(conn, duplicate, importance=empty_importance, references={})
        conn.rollback()
        assert conn.execute("select model_version from ml.model_registry where is_champion").fetchall() == [
            (old,)
        ]
        assert conn.execute(
            "select count(*) from ml.model_registry where model_version = 't-new'"
        ).fetchone() == (0,)
        save_training(
            conn,
            [ModelRecord(model_version="t-new", is_champion=True, **common)],
            importance=empty_importance,
            references={},
        )
        conn.commit()
        assert conn.execute("select model_version from ml.model_registry where is_champion").fetchall() == [
            ("t-new",)
        ]
    assert load_model()[0] == "t-new"


# --- pure logic -------------------------------------------------------------------------------------


def test_metrics_on_known_values() -> None:
    actual = np.array([0.0, 1.0, 3.0])
    predicted = np.array([0.0, 3.0, 1.0])
    assert metrics.mae(actual, predicted) == pytest.approx(4 / 3)
    assert metrics.rmse(actual, predicted) == pytest.approx(np.sqrt(8 / 3))
    assert metrics.rmsle(actual, predicted) == pytest.approx(np.sqrt(2 * np.log(2) ** 2 / 3))
    assert metrics.rmsle(actual, np.array([-5.0, 1.0, 3.0])) == 0  # negative predictions count as 0
    np.testing.assert_array_equal(metrics.seasonal_naive([np.nan, 2.0, -1.0]), [0.0, 2.0, 0.0])


@pytest.mark.parametrize("name", [pipelines.LINEAR, pipelines.HGB])
def test_candidates_score_an_unseen_store_and_family_without_history(name: str) -> None:
    """A store or family that opened after training (generator scenarios new_store, new_family) gets a
    finite, non-negative prediction from every candidate, even with no sales history yet."""
    rng = np.random.default_rng(0)
    n = 600
    train_rows = pd.DataFrame(
        {
            "store_nbr": rng.integers(1, 4, n),
            "family": rng.choice(["BEVERAGES", "DAIRY", "EGGS"], n),
            "onpromotion": rng.poisson(2.0, n).astype(float),
            "store_type": rng.choice(["A", "D"], n),
            "cluster": rng.integers(1, 3, n),
            "city": rng.choice(["Quito", "Cuenca"], n),
            "state": rng.choice(["Pichincha", "Azuay"], n),
            "day_of_week": rng.integers(0, 7, n),
            "day_of_month": rng.integers(1, 29, n),
            "month": rng.integers(1, 13, n),
            **{column: rng.integers(0, 2, n) for column in BOOLEAN_FEATURES},
            "oil_price": rng.normal(50.0, 5.0, n),
            **{column: rng.gamma(2.0, 50.0, n) for column in HISTORY_FEATURES},
        }
    )
    target = train_rows["sales_mean_7"] * rng.lognormal(0.0, 0.2, n)
    model = pipelines.build(name, {"max_iter": 10, "min_samples_leaf": 20} if name == pipelines.HGB else None)
    model.fit(train_rows[list(FEATURES)], target)
    unseen = train_rows.head(4).copy()
    unseen["store_nbr"] = [55, 55, 1, 55]
    unseen["family"] = ["ICE CREAM", "DAIRY", "ICE CREAM", "BEVERAGES"]
    unseen["city"] = ["Nowhere", "Quito", "Quito", "Nowhere"]
    unseen.loc[:, list(HISTORY_FEATURES)] = np.nan  # first day: no lags, no transactions yet
    predicted = model.predict(unseen[list(FEATURES)])
    assert predicted.shape == (4,) and np.isfinite(predicted).all() and (predicted >= 0).all()


def test_month_chunks_cover_the_range_exactly() -> None:
    chunks = list(month_chunks(date(2017, 1, 30), date(2017, 3, 2)))
    assert chunks == [
        (date(2017, 1, 30), date(2017, 1, 31)),
        (date(2017, 2, 1), date(2017, 2, 28)),
        (date(2017, 3, 1), date(2017, 3, 2)),
    ]
    assert list(month_chunks(date(2017, 5, 5), date(2017, 5, 5))) == [(date(2017, 5, 5), date(2017, 5, 5))]


def test_fit_start_keeps_the_most_recent_whole_days_within_the_cap() -> None:
    per_day = pd.Series([10, 10, 10, 10], index=[date(2017, 1, day) for day in (1, 2, 3, 4)])
    assert _fit_start(per_day, 100) == date(2017, 1, 1)
    assert _fit_start(per_day, 25) == date(2017, 1, 3)
    assert _fit_start(per_day, 5) == date(2017, 1, 4)  # never less than one day
