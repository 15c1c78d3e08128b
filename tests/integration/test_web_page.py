"""The operator's web page in Debian's chromium (headless, selenium), against a
running gateway: a real Mosquitto with the project's ACLs, the web stage, the
bandwidth allocator and gas-average as processes. Screenshots go to the
test's tmp folder (the path is printed)."""

from __future__ import annotations

import http.cookiejar
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from schemas.alerts import AlertPart, UplinkUsage
from tests.harness.broker import MosquittoBroker
from tests.harness.probe import Probe
from tests.integration.web_helpers import (
    PAGES,
    WebGateway,
    alert_seen_at,
    chromium,
    console_errors,
    jpeg,
    open_page,
)

ALERT_ON_SCREEN_S = 2.0


@pytest.fixture(scope="module")
def gateway(
    broker: MosquittoBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebGateway]:
    running = WebGateway(broker, tmp_path_factory.mktemp("web-gateway"))
    try:
        running.start()
        yield running
    finally:
        running.stop()
        print(running.logs()[-4000:])


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    with chromium(tmp_path / "profile") as driver:
        yield driver


def _shot(driver: webdriver.Chrome, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")


def _text(driver: webdriver.Chrome, css: str) -> str:
    """The text of the first element `css` selects, read in one step: the
    page redraws live, so an element found in one call may be gone in the next."""
    script = "const e = document.querySelector(arguments[0]); return e ? e.innerText : ''"
    return str(driver.execute_script(script, css))


def _attributes(driver: webdriver.Chrome, css: str, name: str) -> set[str]:
    script = (
        "return [...document.querySelectorAll(arguments[0])].map(e => e.getAttribute(arguments[1]))"
    )
    return set(driver.execute_script(script, css, name))


def _log_in(driver: webdriver.Chrome, gateway: WebGateway) -> None:
    driver.find_element(By.ID, "password").send_keys(gateway.password)
    driver.find_element(By.ID, "login-button").click()
    WebDriverWait(driver, 5).until(lambda d: d.find_element(By.ID, "session").is_displayed())


def _report_uplink(bridge: Probe, root: str, used_kbps: float, spool_entries: int) -> None:
    usage = UplinkUsage(
        source="cloud-bridge",
        budget_kbps=256.0,
        window_s=10,
        used_kbps=used_kbps,
        bytes_by_class={"alert": 4096},
        spool_entries=spool_entries,
        spool_bytes=spool_entries * 1024,
        spool_max_bytes=64 * 1024 * 1024,
        cloud_connected=True,
    )
    bridge.publish(f"{root}/uplink/usage", usage.to_bytes(), retain=True)


def test_every_page_renders_without_console_errors(
    gateway: WebGateway, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    bridge = gateway.probe("cloud-bridge")  # one connection: the two arrive in order
    _report_uplink(bridge, gateway.root, used_kbps=120.0, spool_entries=3)
    _report_uplink(bridge, gateway.root, used_kbps=180.0, spool_entries=5)
    for path in PAGES:
        open_page(browser, gateway.url + path)
        name = path.strip("/") or "overview"
        if name == "overview":
            # Every stage's row, with its health once it has reported.
            WebDriverWait(browser, 10).until(
                lambda d: (
                    "ok" in _text(d, "tr[data-stage=web]")
                    and "online" in _text(d, "tr[data-stage=bandwidth-allocator]")
                )
            )
            # The uplink: use against budget, drawn from the reports, and the spool.
            WebDriverWait(browser, 10).until(
                lambda d: (
                    "180.0 of 256.0 kbit/s" in _text(d, "#uplink-card")
                    and d.find_elements(By.CSS_SELECTOR, "#uplink-chart polyline.used")
                    and d.find_elements(By.CSS_SELECTOR, "#uplink-chart polyline.budget")
                )
            )
            assert "5 messages" in _text(browser, "#spool-card")
        if name == "allocation":
            WebDriverWait(browser, 10).until(
                lambda d: d.find_elements(By.CSS_SELECTOR, "#plan-table tr[data-analytic]")
            )
        if name == "analytics":
            analytics = _attributes(browser, "tr[data-analytic]", "data-analytic")
            assert analytics >= {"camera.front", "audio.mic"}
            assert "deployer" in _text(browser, "#analytics-source")
        if name == "config":
            WebDriverWait(browser, 10).until(
                lambda d: d.find_elements(By.CSS_SELECTOR, "section[data-stage=gas-average]")
            )
        _shot(browser, tmp_path, name)
        assert console_errors(browser) == [], f"{path}: console errors"
        assert browser.title.startswith("edgegw")


def test_an_alert_is_on_the_alerts_page_within_two_seconds(
    gateway: WebGateway, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    detector = gateway.probe("object-tracker")  # the publisher of snapshots
    detector.publish(f"{gateway.root}/snapshot/lobby/person", jpeg(), retain=True)
    open_page(browser, gateway.url + "/alerts")
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#gallery img"))
    forwarder = gateway.probe("alert-forwarder")

    published = time.time()
    part = AlertPart(source="lobby", kind="object", event_id="e1", label="person")
    alert = gateway.publish_alert(forwarder, "person", parts=[part], severity="warning")
    row = f"tr[data-alert-id='{alert.alert_id}']"
    WebDriverWait(browser, 10, poll_frequency=0.02).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, row)
    )
    seen = alert_seen_at(browser, alert.alert_id)
    assert seen is not None
    latency = seen - published
    print(f"alert on screen {latency:.3f} s after it was published")
    assert latency <= ALERT_ON_SCREEN_S
    cells = _text(browser, row)
    assert "warning" in cells and "person" in cells and "lobby" in cells
    # Its snapshot's thumbnail, served small by the stage.
    width = "const i = document.querySelector(arguments[0]); return i ? i.naturalWidth : 0"
    WebDriverWait(browser, 5).until(lambda d: d.execute_script(width, f"{row} img.thumb") > 0)
    assert browser.execute_script(width, f"{row} img.thumb") <= 160

    # The filter: by severity, then by text.
    gas = gateway.publish_alert(forwarder, "co", severity="critical")
    WebDriverWait(browser, 5).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, f"tr[data-alert-id='{gas.alert_id}']")
    )
    browser.find_element(By.CSS_SELECTOR, "#severity-filter option[value=critical]").click()
    assert not browser.find_elements(By.CSS_SELECTOR, row)
    assert browser.find_elements(By.CSS_SELECTOR, f"tr[data-alert-id='{gas.alert_id}']")
    browser.find_element(By.CSS_SELECTOR, "#severity-filter option[value='']").click()
    browser.find_element(By.ID, "alert-filter").send_keys("lobby")
    assert browser.find_elements(By.CSS_SELECTOR, row)
    assert not browser.find_elements(By.CSS_SELECTOR, f"tr[data-alert-id='{gas.alert_id}']")
    _shot(browser, tmp_path, "alerts-filtered")
    assert console_errors(browser) == []


def _what_if(driver: webdriver.Chrome, budget: int) -> dict[str, str]:
    """The dry-run answer on the page for `budget`: analytic -> level."""
    WebDriverWait(driver, 10).until(
        lambda d: d.find_element(By.ID, "whatif").get_attribute("data-budget") == str(budget)
    )
    script = """return [...document.querySelectorAll('#whatif-plan tr[data-analytic]')]
        .map(r => [r.dataset.analytic, r.cells[1].innerText])"""
    return dict(driver.execute_script(script))


def test_moving_the_budget_slider_shows_the_allocators_dry_run(
    gateway: WebGateway, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    open_page(browser, gateway.url + "/allocation")
    WebDriverWait(browser, 10).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#plan-table tr[data-analytic]")
    )
    in_force = _text(browser, "#plan-table")
    slider = browser.find_element(By.ID, "budget-slider")
    # With the keyboard, as an operator would: End is the slider's maximum,
    # enough for both analytics' best levels.
    slider.send_keys(Keys.END)
    top = int(str(slider.get_attribute("value")))
    assert _what_if(browser, top) == {"camera.front": "high", "audio.mic": "high"}
    # 300 kbit/s: the optimum is camera low (50) + audio high (128), utility 1.3.
    browser.execute_script(
        "arguments[0].value = 300; arguments[0].dispatchEvent(new Event('input'))", slider
    )
    assert _what_if(browser, 300) == {"camera.front": "low", "audio.mic": "high"}
    assert "dry run at 300 kbit/s" in _text(browser, "#whatif")
    assert "solver dp" in _text(browser, "#whatif")
    # Below the cheapest levels: the allocator says it is not feasible.
    browser.execute_script(
        "arguments[0].value = 10; arguments[0].dispatchEvent(new Event('input'))", slider
    )
    _what_if(browser, 10)
    assert "not feasible" in _text(browser, "#whatif")
    _shot(browser, tmp_path, "allocation-what-if")
    # A dry run changes nothing: the plan in force is the same.
    assert _text(browser, "#plan-table") == in_force
    assert console_errors(browser) == []


def _edit_config(driver: webdriver.Chrome, stage: str, text: str) -> str:
    editor = driver.find_element(By.ID, f"config-{stage}")
    editor.send_keys(Keys.CONTROL, "a")  # replace the text, keeping the focus
    editor.send_keys(text)
    answer = driver.find_element(By.ID, f"answer-{stage}")
    before = answer.text
    driver.find_element(By.ID, f"apply-{stage}").click()
    WebDriverWait(driver, 10).until(
        lambda d: answer.text != before and not answer.text.startswith("published")
    )
    return str(answer.text)


def test_a_config_edit_shows_accepted_and_a_bad_one_names_the_field(
    gateway: WebGateway, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    open_page(browser, gateway.url + "/config")
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.ID, "config-gas-average"))
    assert not browser.find_element(By.ID, "apply-gas-average").is_enabled()  # read-only
    _log_in(browser, gateway)
    WebDriverWait(browser, 5).until(
        lambda d: d.find_element(By.ID, "apply-gas-average").is_enabled()
    )

    answer = _edit_config(browser, "gas-average", '{"time_window_s": 7}')
    assert answer.startswith("accepted"), answer
    # The config in force (the stage's applied-state answer) shows the change.
    applied = "return document.querySelector('section[data-stage=gas-average] pre').textContent"
    WebDriverWait(browser, 5).until(lambda d: '"time_window_s": 7' in d.execute_script(applied))
    _shot(browser, tmp_path, "config-accepted")

    answer = _edit_config(browser, "gas-average", '{"time_window_s": -1}')
    assert answer.startswith("rejected"), answer
    assert "time_window_s" in answer
    _shot(browser, tmp_path, "config-rejected")
    assert console_errors(browser) == []


class _Client:
    """A plain HTTP client with cookies, as a script or another site would be."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def csrf_token(self) -> str:
        with self.opener.open(self.url + "/config", timeout=5) as response:
            page = response.read().decode()
        found = re.search(r'name="csrf-token" content="([^"]+)"', page)
        assert found is not None
        return found.group(1)

    def post(self, path: str, body: object, token: str | None) -> tuple[int, dict[str, object]]:
        headers = {"content-type": "application/json"}
        if token is not None:
            headers["x-csrf-token"] = token
        request = urllib.request.Request(
            self.url + path, data=orjson.dumps(body), headers=headers, method="POST"
        )
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, orjson.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, orjson.loads(error.read())


def test_changes_are_refused_without_a_login_or_without_the_csrf_token(
    gateway: WebGateway,
) -> None:
    client = _Client(gateway.url)
    token = client.csrf_token()
    change = {"config": {"time_window_s": 9}}

    status, body = client.post("/api/config/gas-average", change, token)
    assert (status, "log in" in str(body["error"])) == (403, True)
    status, _ = client.post("/login", {"password": "not the password"}, token)
    assert status == 401
    status, _ = client.post("/login", {"password": gateway.password}, None)
    assert status == 403  # no CSRF token: not even a login

    status, _ = client.post("/login", {"password": gateway.password}, token)
    assert status == 200
    status, body = client.post("/api/config/gas-average", change, None)
    assert (status, "CSRF" in str(body["error"])) == (403, True)
    status, _ = client.post("/api/config/gas-average", change, token[::-1])
    assert status == 403
    # Logged in and with the token, the same change goes through.
    status, body = client.post("/api/config/gas-average", change, token)
    assert (status, body["status"]) == (200, "accepted")

    # A session cookie alone is not enough: another client, same cookie, no token.
    other = _Client(gateway.url)
    for cookie in client.cookies:
        if cookie.name == "edgegw_session":
            other.cookies.set_cookie(cookie)
    status, _ = other.post("/api/config/gas-average", change, None)
    assert status == 403


def test_the_page_says_when_the_web_stage_has_lost_the_broker(
    gateway: WebGateway, browser: webdriver.Chrome, broker: MosquittoBroker, tmp_path: Path
) -> None:
    open_page(browser, gateway.url + "/")
    warning = "return document.getElementById('broker').hidden"
    assert browser.execute_script(warning) is True
    broker.stop()
    try:
        WebDriverWait(browser, 10).until(lambda d: d.execute_script(warning) is False)
        assert "lost the broker" in _text(browser, "#broker")
        _shot(browser, tmp_path, "broker-lost")
    finally:
        broker.start()
    WebDriverWait(browser, 20).until(lambda d: d.execute_script(warning) is True)
