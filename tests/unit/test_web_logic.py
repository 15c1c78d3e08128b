"""The web stage's pure parts: login sessions, the CSRF check, the view's
bounds, the live feed's handling of slow browsers, and thumbnails."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from services.web import thumbnails
from services.web.gateway_view import GatewayView
from services.web.live_feed import LiveFeed, TooManyStreams
from services.web.login import Sessions, TooManyAttempts, csrf_ok
from services.web.settings import WebSettings
from services.web.thumbnails import NotAnImage, thumbnail


def test_only_the_operators_password_opens_a_session() -> None:
    sessions = Sessions("s3cret", ttl_s=60, max_sessions=4)
    assert sessions.log_in("wrong", now=0) is None
    assert sessions.log_in("", now=0) is None
    token = sessions.log_in("s3cret", now=0)
    assert token is not None and sessions.valid(token, now=1)
    assert not sessions.valid("made-up", now=1)
    assert not sessions.valid(None, now=1)


def test_a_session_expires_and_logging_out_ends_it() -> None:
    sessions = Sessions("pw", ttl_s=10, max_sessions=4)
    expiring, ending = sessions.log_in("pw", now=0), sessions.log_in("pw", now=5)
    assert not sessions.valid(expiring, now=10)
    assert sessions.valid(ending, now=10)
    sessions.log_out(ending)
    assert not sessions.valid(ending, now=10)


def test_sessions_are_bounded_the_oldest_goes_first() -> None:
    sessions = Sessions("pw", ttl_s=100, max_sessions=2)
    first, second, third = (sessions.log_in("pw", now=0) for _ in range(3))
    assert not sessions.valid(first, now=1)
    assert sessions.valid(second, now=1) and sessions.valid(third, now=1)


def test_without_a_password_nobody_logs_in() -> None:
    sessions = Sessions("", ttl_s=60, max_sessions=4)
    assert not sessions.enabled
    assert sessions.log_in("", now=0) is None


def test_wrong_passwords_in_a_row_make_logins_wait() -> None:
    sessions = Sessions("pw", ttl_s=60, max_sessions=4, max_failures=3, failure_window_s=10)
    for second in range(3):
        assert sessions.log_in("guess", now=second) is None
    with pytest.raises(TooManyAttempts):
        sessions.log_in("pw", now=5)
    assert sessions.log_in("pw", now=10.5) is not None  # the first failure is 10 s old


def test_the_page_listens_on_localhost_unless_told_otherwise() -> None:
    assert WebSettings().web_host == "127.0.0.1"


def test_csrf_needs_the_same_token_in_cookie_and_header() -> None:
    assert csrf_ok("abc", "abc")
    assert not csrf_ok("abc", "abd")
    assert not csrf_ok("abc", None)
    assert not csrf_ok(None, "abc")
    assert not csrf_ok("", "")


def _alert(alert_id: str, kind: str = "new") -> dict[str, object]:
    return {"alert_id": alert_id, "type": kind, "severity": "warning", "ts": 1.0}


def test_an_alert_keeps_one_row_the_newest_last_and_the_list_is_bounded() -> None:
    view = GatewayView(max_alerts=2)
    view.alert("kitchen", _alert("a"))
    view.alert("kitchen", _alert("b"))
    kind, row = view.alert("kitchen", _alert("a", "end"))
    assert (kind, row["type"], row["topic_source"]) == ("alert", "end", "kitchen")
    assert [a["alert_id"] for a in view.everything()["alerts"]] == ["b", "a"]
    view.alert("hall", _alert("c"))
    assert [a["alert_id"] for a in view.everything()["alerts"]] == ["a", "c"]


def _usage(ts: float, used: float) -> dict[str, object]:
    return {"ts": ts, "used_kbps": used, "budget_kbps": 100.0}


def test_the_uplink_history_keeps_the_last_hour_and_ignores_older_copies() -> None:
    view = GatewayView(history_s=3600, max_history_points=1000)
    for minute in range(0, 120, 10):
        view.uplink_usage(_usage(minute * 60.0, minute))
    _, update = view.uplink_usage(_usage(0.0, 5))  # a stale retained copy
    assert update["point"] is None
    times = [p["ts"] for p in view.everything()["history"]]
    assert times[0] >= 110 * 60 - 3600 and times[-1] == 110 * 60
    assert view.uplink == _usage(0.0, 5)


def test_the_uplink_history_is_bounded_by_count() -> None:
    view = GatewayView(history_s=3600, max_history_points=10)
    for second in range(50):
        view.uplink_usage(_usage(float(second), 1))
    assert len(view.history) == 10


def test_snapshots_are_bounded_and_a_cleared_one_goes() -> None:
    view = GatewayView(max_snapshots=2)
    for label in ("person", "car", "dog"):
        view.snapshot("lobby", label, 1.0, b"jpeg-" + label.encode())
    assert set(view.thumbnails) == {"lobby/car", "lobby/dog"}
    _, row = view.snapshot("lobby", "car", 2.0, None)
    assert row["present"] is False
    assert set(view.thumbnails) == {"lobby/dog"}
    assert [s["label"] for s in view.everything()["snapshots"]] == ["dog"]


def test_a_stage_part_is_set_and_cleared() -> None:
    view = GatewayView()
    view.stage_part("gas-average", "status", "online")
    update = view.stage_part("gas-average", "health", {"state": "ok"})
    row = {"status": "online", "health": {"state": "ok"}}
    assert update == ("stage", {"stage": "gas-average", "row": row})
    view.stage_part("gas-average", "health", None)
    assert view.stages["gas-average"] == {"status": "online"}


async def test_a_browser_that_falls_behind_is_dropped_not_waited_for() -> None:
    counts: list[int] = []
    feed = LiveFeed(max_followers=2, queue_size=2, on_count=counts.append)
    slow, fast = feed.follow(), feed.follow()
    with pytest.raises(TooManyStreams):
        feed.follow()
    for n in range(2):
        feed.send(("event", {"n": n}))
    fast.queue.get_nowait()
    fast.queue.get_nowait()
    feed.send(("event", {"n": 2}))
    assert slow.dropped.is_set() and not fast.dropped.is_set()
    assert fast.queue.get_nowait() == ("event", {"n": 2})
    assert len(feed) == 1
    feed.follow()
    assert counts == [1, 2, 1, 2]  # the dropped one's place is free again


def _jpeg(width: int, height: int, fmt: str = "JPEG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(out, fmt)
    return out.getvalue()


def test_a_thumbnail_is_a_small_jpeg() -> None:
    small = thumbnail(_jpeg(1280, 720), 160)
    with Image.open(io.BytesIO(small)) as image:
        assert image.format == "JPEG"
        assert max(image.size) <= 160


def test_a_thumbnail_refuses_what_is_not_a_jpeg_or_too_large(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(NotAnImage):
        thumbnail(b"not an image at all", 160)
    with pytest.raises(NotAnImage):
        thumbnail(_jpeg(64, 64, "PNG"), 160)
    monkeypatch.setattr(thumbnails, "MAX_SOURCE_PIXELS", 100 * 100)
    with pytest.raises(NotAnImage):
        thumbnail(_jpeg(200, 200), 160)
