"""Prometheus metrics read from the service's state when scraped: the request log and the model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


class LogCollector(Collector):
    """The request log's queue depth and row counters, and which model version answers."""

    def __init__(self, service: Any) -> None:
        self._service = service

    def collect(self) -> Iterator[Any]:
        log = self._service.log
        counters = log.counters()
        yield GaugeMetricFamily(
            "salesmon_log_queue_depth", "Log rows waiting for the writer", value=log.queue_depth
        )
        for name, value, help_text in (
            ("salesmon_log_rows_submitted", counters.submitted, "Log rows handed to the request log"),
            ("salesmon_log_rows_written", counters.written, "Log rows written to ml.prediction_log"),
            ("salesmon_log_rows_spilled", counters.spilled, "Log rows written to a spill file"),
            ("salesmon_log_rows_replayed", counters.replayed, "Spilled log rows replayed into the database"),
            ("salesmon_log_write_failures", counters.write_failures, "Batches the database did not take"),
        ):
            yield CounterMetricFamily(name, help_text, value=value)
        model = self._service.model.current
        info = GaugeMetricFamily(
            "salesmon_model_loaded", "1 for the model version answering", labels=["model_version"]
        )
        if model is not None:
            info.add_metric([model.version], 1)
        yield info
