"""metrics-exporter's samples in Prometheus's text format."""

from __future__ import annotations

import time

from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry

from schemas.service import Metrics
from services.metrics_exporter.settings import MetricsExporterSettings
from services.metrics_exporter.stage_samples import StageSamples
from tests.harness.reports import health_of, metrics_of


def _text(samples: StageSamples) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(samples)
    return generate_latest(registry).decode()


def _metrics(stage: str, counters: dict[str, int]) -> Metrics:
    return metrics_of(stage, counters, {"rss_mb": 41.5}, interval_s=1)


def test_counters_gauges_and_health_of_every_stage_in_the_text_format() -> None:
    samples = StageSamples("gw1", stale_after_s=60, max_stages=10)
    now = time.monotonic()
    samples.observe_metrics("gas-average", _metrics("gas-average", {"readings": 7}), now=now)
    samples.observe_metrics("gas-replay", _metrics("gas-replay", {"published": 9}), now=now)
    health = health_of("gas-average", "degraded", uptime_s=3, reconnects=2)
    samples.observe_health("gas-average", health, now=now)
    text = _text(samples)
    assert 'edgegw_counter_total{counter="readings",gateway="gw1",stage="gas-average"} 7.0' in text
    assert 'edgegw_counter_total{counter="published",gateway="gw1",stage="gas-replay"} 9.0' in text
    assert 'edgegw_gauge{gateway="gw1",gauge="rss_mb",stage="gas-replay"} 41.5' in text
    assert 'edgegw_stage_healthy{gateway="gw1",stage="gas-average"} 0.0' in text
    assert 'edgegw_stage_reconnects_total{gateway="gw1",stage="gas-average"} 2.0' in text
    # The health kept the metrics that came before it.
    assert 'stage="gas-average"} 7.0' in text


def test_a_silent_or_cleared_stage_drops_out_and_the_table_is_bounded() -> None:
    samples = StageSamples("gw1", stale_after_s=60, max_stages=2)
    assert samples.observe_metrics("a", _metrics("a", {"x": 1}), now=0)
    assert samples.observe_metrics("b", _metrics("b", {"x": 1}), now=50)
    assert not samples.observe_metrics("c", _metrics("c", {"x": 1}), now=50)
    list(samples.collect(now=100))
    assert samples.stages() == ["b"]
    samples.observe_health("b", None, now=100)
    assert samples.stages() == []


def test_the_endpoint_binds_localhost_unless_told() -> None:
    assert MetricsExporterSettings().http_host == "127.0.0.1"
