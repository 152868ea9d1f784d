"""Batch monitoring of the sales-forecasting model: daily slices, Evidently metrics, idempotent storage.

`monitoring.planning` sorts a range of days (to compute, already done, without predictions) and cuts
it into chunks; `monitoring.day` computes and stores one day (`compute_day`) or a chunk of planned
days (`compute_days`); `monitoring.storage` writes the runs and metric rows. The `monitor-days`
Prefect flow in `orchestration.flows` is the one orchestrator: one task per chunk of days on a
Prefect task runner (a process pool, or Dask).
"""
