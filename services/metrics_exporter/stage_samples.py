"""The latest `metrics/<stage>` and `health/<stage>` of every stage, as
Prometheus metric families. No MQTT: the stage feeds it, the HTTP server's
thread collects from it (hence the lock).

Families (labels `gateway`, `stage`, and the counter's or gauge's own name):
`edgegw_counter_total`, `edgegw_gauge`, `edgegw_stage_healthy` (1 ok, 0
degraded), `edgegw_stage_connected`, `edgegw_stage_uptime_seconds`,
`edgegw_stage_reconnects_total`, and `edgegw_stage_report_age_seconds`. One
family per kind keeps the name space fixed whatever counters a stage invents;
`edgegw_counter_total{stage="gas-average"}` is every counter of that stage.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from schemas.service import Health, Metrics


@dataclass(frozen=True)
class StageReport:
    metrics: Metrics | None
    health: Health | None
    seen_at: float  # monotonic


class StageSamples(Collector):
    def __init__(self, gateway_id: str, stale_after_s: float, max_stages: int) -> None:
        self._gateway = gateway_id
        self._stale_after_s = stale_after_s
        self._max_stages = max_stages
        self._reports: dict[str, StageReport] = {}
        self._lock = threading.Lock()

    def observe_metrics(self, stage: str, metrics: Metrics, now: float) -> bool:
        """Keep `metrics` as the stage's latest; False if one stage too many."""
        with self._lock:
            last = self._reports.get(stage)
            if last is None and len(self._reports) >= self._max_stages:
                return False
            health = last.health if last is not None else None
            self._reports[stage] = StageReport(metrics, health, now)
            return True

    def observe_health(self, stage: str, health: Health | None, now: float) -> bool:
        with self._lock:
            last = self._reports.get(stage)
            if health is None:  # the retained health was cleared: the stage is gone
                self._reports.pop(stage, None)
                return True
            if last is None and len(self._reports) >= self._max_stages:
                return False
            metrics = last.metrics if last is not None else None
            self._reports[stage] = StageReport(metrics, health, now)
            return True

    def stages(self) -> list[str]:
        with self._lock:
            return sorted(self._reports)

    def collect(self, now: float | None = None) -> Iterator[Metric]:
        now = time.monotonic() if now is None else now
        with self._lock:
            for stage in [
                s for s, r in self._reports.items() if now - r.seen_at > self._stale_after_s
            ]:
                del self._reports[stage]
            reports = sorted(self._reports.items())
        counters = CounterMetricFamily(
            "edgegw_counter",
            "a stage's counter (metrics/<stage>)",
            labels=["gateway", "stage", "counter"],
        )
        gauges = GaugeMetricFamily(
            "edgegw_gauge",
            "a stage's gauge (metrics/<stage>)",
            labels=["gateway", "stage", "gauge"],
        )
        healthy = GaugeMetricFamily(
            "edgegw_stage_healthy", "1: health ok, 0: degraded", labels=["gateway", "stage"]
        )
        connected = GaugeMetricFamily(
            "edgegw_stage_connected", "the stage's broker connection", labels=["gateway", "stage"]
        )
        uptime = GaugeMetricFamily(
            "edgegw_stage_uptime_seconds", "since the stage started", labels=["gateway", "stage"]
        )
        reconnects = CounterMetricFamily(
            "edgegw_stage_reconnects", "broker reconnects", labels=["gateway", "stage"]
        )
        age = GaugeMetricFamily(
            "edgegw_stage_report_age_seconds",
            "since the stage's last metrics or health message",
            labels=["gateway", "stage"],
        )
        for stage, report in reports:
            labels = [self._gateway, stage]
            age.add_metric(labels, max(0.0, now - report.seen_at))
            if report.metrics is not None:
                for name, count in sorted(report.metrics.counters.items()):
                    counters.add_metric([*labels, name], count)
                for name, value in sorted(report.metrics.gauges.items()):
                    gauges.add_metric([*labels, name], value)
            if report.health is not None:
                health = report.health
                healthy.add_metric(labels, 1.0 if health.state == "ok" else 0.0)
                connected.add_metric(labels, 1.0 if health.connected else 0.0)
                uptime.add_metric(labels, health.uptime_s)
                reconnects.add_metric(labels, health.reconnects)
        yield from (counters, gauges, healthy, connected, uptime, reconnects, age)
