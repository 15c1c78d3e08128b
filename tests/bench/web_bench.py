"""`python -m tests.bench.web_bench`: the operator's page measured in Debian's
chromium (headless), against a running gateway (Mosquitto, the web stage, the
bandwidth allocator, gas-average), as the browser tests run it.

* page_kb: bytes the browser fetched for the heaviest of the five pages
  (document, script, stylesheet, icon, thumbnails; headers included);
* first_render_s: navigation start to the page's first drawing of the
  gateway's view, the slowest of the five pages (the first one cold);
* alert_on_screen_s: an alert's publish on the broker to its row on the
  alerts page, median of ALERTS; the same-run baseline is an MQTT subscriber
  on the same broker receiving the same alerts.

Prints one JSON object: {"web": {...}}.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from schemas.alerts import AlertPart
from tests.harness.broker import MosquittoBroker
from tests.harness.probe import Seen
from tests.integration.web_helpers import (
    PAGES,
    WebGateway,
    alert_seen_at,
    chromium,
    console_errors,
    first_render_s,
    jpeg,
    open_page,
    page_weight_kb,
)

ALERTS = 10
GOALS = {"page_kb": 300.0, "first_render_s": 1.0, "alert_on_screen_s": 2.0}


def _shown(css: str) -> Callable[[WebDriver], bool]:
    return lambda driver: bool(driver.find_elements(By.CSS_SELECTOR, css))


def _carries(alert_id: str) -> Callable[[Seen], bool]:
    return lambda message: alert_id.encode() in message.payload


def run() -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="web-bench-"))
    broker = MosquittoBroker(work / "broker")
    broker.start()
    gateway = WebGateway(broker, work)
    try:
        gateway.start()
        detector = gateway.probe("object-tracker")  # the publisher of snapshots
        detector.publish(f"{gateway.root}/snapshot/lobby/person", jpeg(1280, 720), retain=True)
        listener = gateway.probe("operator")
        listener.subscribe(f"{gateway.root}/alert/+")
        forwarder = gateway.probe("alert-forwarder")
        with chromium(work / "profile") as driver:
            weights: dict[str, float] = {}
            renders: dict[str, float] = {}
            errors: list[str] = []
            for path in PAGES:
                name = path.strip("/") or "overview"
                open_page(driver, gateway.url + path)
                time.sleep(0.5)  # thumbnails and late resources finish loading
                weights[name] = round(page_weight_kb(driver), 2)
                renders[name] = round(first_render_s(driver), 4)
                errors += console_errors(driver)
            open_page(driver, gateway.url + "/alerts")
            on_screen: list[float] = []
            delivered: list[float] = []
            for n in range(ALERTS):
                part = AlertPart(source="lobby", kind="object", event_id=f"e{n}", label="person")
                published = time.time()
                alert = gateway.publish_alert(forwarder, "person", parts=[part])
                row = f"tr[data-alert-id='{alert.alert_id}']"
                WebDriverWait(driver, 10, poll_frequency=0.02).until(_shown(row))
                seen = alert_seen_at(driver, alert.alert_id)
                assert seen is not None
                on_screen.append(seen - published)
                heard = listener.wait_for(_carries(alert.alert_id))
                delivered.append(heard[0].at - published)
                time.sleep(0.2)
    finally:
        gateway.stop()
        broker.stop()
    result = {
        "page_kb": max(weights.values()),
        "first_render_s": max(renders.values()),
        "alert_on_screen_s": round(statistics.median(on_screen), 4),
    }
    return {
        "web": {
            **result,
            "alert_on_screen_max_s": round(max(on_screen), 4),
            "alerts": ALERTS,
            "baseline_mqtt_delivery_s": round(statistics.median(delivered), 4),
            "page_kb_by_page": weights,
            "first_render_s_by_page": renders,
            "console_errors": len(errors),
            "goals": GOALS,
            "ratio_to_goal": {key: round(result[key] / GOALS[key], 3) for key in GOALS},
            "within_goals": all(result[key] <= GOALS[key] for key in GOALS) and not errors,
        }
    }


def main() -> None:
    sys.stdout.write(orjson.dumps(run(), option=orjson.OPT_INDENT_2).decode() + "\n")


if __name__ == "__main__":
    main()
