"""The re-send worker of alert-forwarder: one alert never ends it (no broker:
the door is only built, so every publish fails before reaching one)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from schemas.topics import ALERT, ALERT_FORWARDER
from services.alert_forwarder.confirmation import BridgeConfirmation
from services.alert_forwarder.settings import AlertForwarderSettings
from services.alert_forwarder.stage import AlertForwarderStage
from services.common.door import MqttDoor
from tests.unit.alert_samples import sample_alert as _alert


async def test_an_alert_that_can_never_be_published_is_dropped_and_the_worker_goes_on(
    tmp_path: Path,
) -> None:
    settings = AlertForwarderSettings(
        confirm_timeout_s=0.01, operation_timeout_s=0.05, outbox_path=tmp_path / "outbox.db"
    )
    door = MqttDoor(settings, ALERT_FORWARDER)
    confirmation = BridgeConfirmation(door, settings)
    for source in ("kitchen oven", "kitchen/oven", "k" * 10_000):
        await confirmation.track(source, _alert(len(confirmation.outbox)))
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as tasks:
        worker = tasks.create_task(confirmation.resend(stop))
        async with asyncio.timeout(30):  # a bound on a hang, not a measurement
            while len(confirmation.outbox) > 0:  # noqa: ASYNC110 - the outbox has no event
                await asyncio.sleep(0.01)
        assert not worker.done()
        stop.set()
    assert door.metrics.counters["alerts_unpublishable"] == 3
    assert confirmation.outbox.has_room


async def test_an_alert_over_the_topic_limit_is_dropped_not_kept_for_ever(tmp_path: Path) -> None:
    """The bridge refuses an alert over alert/<source>'s limit: it would
    never confirm it, and the outbox would re-send it for ever."""
    settings = AlertForwarderSettings(operation_timeout_s=0.05, outbox_path=tmp_path / "outbox.db")
    door = MqttDoor(settings, ALERT_FORWARDER)
    stage = AlertForwarderStage(door, settings)
    assert stage.confirmation is not None
    huge = _alert(1).model_copy(update={"summary": "x" * ALERT.max_bytes})
    await stage._publish(huge, "kitchen")  # noqa: SLF001 - one publish, no broker
    assert len(stage.confirmation.outbox) == 0
    assert door.metrics.counters["alerts_unpublishable"] == 1
