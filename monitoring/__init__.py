"""Batch monitoring of the sales-forecasting model: daily slices, Evidently metrics, idempotent storage.

`monitoring.engine.compute_day` computes one slice (a day and a model version) and writes its metrics;
`monitoring.engine.backfill` runs many days on a process pool; the Prefect flows in
`orchestration.flows` run the same functions as one task per day.
"""
