"""A running gateway for the web page's tests and bench (real broker, the web
stage, the bandwidth allocator, gas-average) and Debian's chromium, headless,
driven by selenium with the system chromedriver (no browser download)."""

from __future__ import annotations

import io
import os
import socket
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from schemas.alerts import Alert, AlertPart
from tests.harness.broker import MosquittoBroker, free_port
from tests.harness.probe import Probe, Seen
from tests.harness.stage_process import StageProcess
from tests.integration.allocator_helpers import offer_both

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
)
PAGES = ("/", "/alerts", "/allocation", "/analytics", "/config")
# The allocator tests' camera levels, at costs a slider can tell apart.
CAMERA_LEVELS = [("low", 50.0, 0.3), ("mid", 200.0, 0.7), ("high", 800.0, 1.0)]


class WebGateway:
    """The web stage and the stages its pages need, on `broker` under a new gateway id."""

    def __init__(self, broker: MosquittoBroker, log_dir: Path) -> None:
        self.broker = broker
        self.gateway_id = f"w{uuid.uuid4().hex[:10]}"
        self.root = f"edgegw/{self.gateway_id}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.password = broker.passwords["operator"]
        self.log_dir = log_dir
        self.processes: list[StageProcess] = []
        self.probes: list[Probe] = []

    def start_stage(self, name: str, **env: str) -> StageProcess:
        full = {**self.broker.env_for(name, self.gateway_id), "EDGEGW_HEALTH_INTERVAL_S": "1"}
        process = StageProcess(name, {**full, **env}, self.log_dir)
        self.processes.append(process)
        return process

    def probe(self, user: str) -> Probe:
        client = Probe(self.broker, user)
        self.probes.append(client)
        return client

    def start(self) -> None:
        observer = self.probe("operator")
        observer.subscribe(f"{self.root}/status/+")
        # Offered before the allocator starts: its first plan already has them.
        camera, audio = self.probe("camera-capture"), self.probe("audio-capture")
        offer_both(self.root, camera, audio)
        self.start_stage("bandwidth-allocator", EDGEGW_DEBOUNCE_S="0.1")
        self.start_stage("gas-average")
        self.start_stage(
            "web",
            EDGEGW_WEB_PORT=str(self.port),
            EDGEGW_WEB_PASSWORD=self.password,
        )
        for stage in ("bandwidth-allocator", "gas-average", "web"):
            observer.wait_for(_online(f"{self.root}/status/{stage}"), timeout_s=30)
        wait_for_http(self.url, 30)

    def stop(self) -> None:
        for client in self.probes:
            client.close()
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(15)
            except Exception:
                process.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.stage}\n{p.output()[-3000:]}" for p in self.processes)

    def publish_alert(self, forwarder: Probe, label: str, **fields: Any) -> Alert:
        alert = Alert(
            source="alert-forwarder",
            type="new",
            alert_id=f"a-{uuid.uuid4().hex[:12]}",
            label=label,
            severity=fields.pop("severity", "critical"),
            parts=fields.pop(
                "parts",
                [AlertPart(source="kitchen", kind="gas", event_id=uuid.uuid4().hex, label=label)],
            ),
            start_ts=time.time(),
            summary=fields.pop("summary", f"{label} in the kitchen"),
            **fields,
        )
        forwarder.publish(f"{self.root}/alert/{alert.parts[0].source}", alert.to_bytes())
        return alert


def _online(topic: str) -> Callable[[Seen], bool]:
    return lambda message: message.topic == topic and message.payload == b"online"


def wait_for_http(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/api/state", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout_s} s")


def jpeg(width: int = 320, height: int = 240) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 60, 40)).save(out, "JPEG")
    return out.getvalue()


@contextmanager
def chromium(profile: Path) -> Iterator[webdriver.Chrome]:
    """Debian's chromium, headless, with a fresh profile and its console logged."""
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium must never fetch a driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def open_page(driver: webdriver.Chrome, url: str, timeout_s: float = 10) -> None:
    """Load `url` and wait until the page has drawn the gateway's view once."""
    driver.get(url)
    WebDriverWait(driver, timeout_s).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1"
    )


def console_errors(driver: webdriver.Chrome) -> list[str]:
    return [
        str(entry["message"])
        for entry in driver.get_log("browser")  # type: ignore[no-untyped-call]
        if entry.get("level") in {"SEVERE", "ERROR"}
    ]


def page_weight_kb(driver: webdriver.Chrome) -> float:
    """Bytes the browser fetched for the page (document and every finished
    resource, headers included), in KB; the live event stream never finishes
    and is not counted."""
    total = driver.execute_script(
        """
        const entries = [...performance.getEntriesByType('navigation'),
                         ...performance.getEntriesByType('resource')];
        return entries.reduce((sum, e) => sum + (e.transferSize || e.encodedBodySize || 0), 0);
        """
    )
    return float(total) / 1000


def first_render_s(driver: webdriver.Chrome) -> float:
    """From the start of navigation to the page's first drawing of the view."""
    start = driver.execute_script(
        "return performance.getEntriesByName('edgegw-rendered')[0].startTime"
    )
    return float(start) / 1000


def alert_seen_at(driver: webdriver.Chrome, alert_id: str) -> float | None:
    """When (epoch seconds, the browser's clock) the alert first reached the screen."""
    seen = driver.execute_script("return window.edgegwAlertSeen[arguments[0]]", alert_id)
    return None if seen is None else float(seen) / 1000


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
