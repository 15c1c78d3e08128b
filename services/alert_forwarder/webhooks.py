"""Optional webhooks: each alert POSTed as JSON to every configured URL.

A bounded queue sits between the MQTT handler and the HTTP worker, so a slow
or dead web server never holds up alerts on MQTT: when the queue is full the
alert is dropped for the webhooks (counted), never for MQTT. Each POST runs
in a thread (urllib is blocking) with a timeout, and is retried with
exponential backoff; a POST that fails every try is counted as failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass

from schemas.alerts import Alert
from services.alert_forwarder.rules import SEVERITY_RANK, Severity
from services.common.pacing import wait_set
from services.common.stage_metrics import StageMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WebhookPolicy:
    urls: tuple[str, ...]
    min_severity: Severity
    queue_size: int
    retries: int
    timeout_s: float
    retry_initial_s: float


def post_json(url: str, body: bytes, timeout_s: float) -> int:
    """Blocking POST; returns the HTTP status, raises on a network error or >= 400."""
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return int(response.status)


class WebhookSender:
    def __init__(self, policy: WebhookPolicy, metrics: StageMetrics) -> None:
        self._policy = policy
        self._metrics = metrics
        self._queue: asyncio.Queue[Alert] = asyncio.Queue(maxsize=policy.queue_size)

    def offer(self, alert: Alert) -> None:
        """Queue an alert for the webhooks without waiting; full queue: dropped."""
        if not self._policy.urls:
            return
        if SEVERITY_RANK[alert.severity] < SEVERITY_RANK[self._policy.min_severity]:
            return
        try:
            self._queue.put_nowait(alert)
        except asyncio.QueueFull:
            self._metrics.count("webhook_dropped")

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            alert: Alert | None = None
            with contextlib.suppress(TimeoutError):
                alert = await asyncio.wait_for(self._queue.get(), timeout=0.5)
            if alert is None:
                continue
            body = alert.to_bytes()
            for url in self._policy.urls:
                await self._post_with_retries(url, body, stop)

    async def _post_with_retries(self, url: str, body: bytes, stop: asyncio.Event) -> None:
        delay = self._policy.retry_initial_s
        for attempt in range(self._policy.retries + 1):
            try:
                # The thread's own timeout bounds it; the outer one is a safety net.
                await asyncio.wait_for(
                    asyncio.to_thread(post_json, url, body, self._policy.timeout_s),
                    timeout=self._policy.timeout_s + 1.0,
                )
                self._metrics.count("webhook_posted")
                return
            except (OSError, urllib.error.URLError, TimeoutError, ValueError) as error:
                log.warning(
                    "webhook POST failed",
                    extra={"url": url, "attempt": attempt + 1, "error": str(error)},
                )
            if attempt < self._policy.retries:
                await wait_set(stop, delay)
                if stop.is_set():
                    break
                delay *= 2
        self._metrics.count("webhook_failed")
