"""The async shell of cloud-bridge: two doors (gateway and cloud), one spool.

Gateway -> cloud: alerts, summaries and status are appended to the spool
(durably, in a worker thread) inside the handler, so the door acknowledges a
QoS 1 message to the gateway broker only once it is on disk; the uplink then
sends it to the cloud. Cloud -> gateway: `config/#` of this gateway is
republished retained on the gateway broker. Every alert taken is named in an
`uplink/taken` receipt, so alert-forwarder stops publishing it again.

Rates: the whole upload follows the retained `qos/uplink` knob (the bridge's
own config until one arrives); what is uploaded on an analytic's behalf —
today camera snapshots, for `detector.<cam>` — also follows that analytic's
own knob (`qos/<analytic>`: the chosen level's cost), see snapshot_uplink.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from typing import Literal

from schemas.alerts import Alert, Summary
from schemas.analytics import (
    UPLINK_ANALYTIC,
    InvalidKnobParams,
    UplinkKnobParams,
    detector_analytic,
    knob_params,
)
from schemas.envelope import MAX_KBPS
from schemas.qos import QosKnob
from schemas.service import ConfigState
from schemas.topics import (
    ALERT,
    CLOUD_BRIDGE,
    CONFIG,
    CONFIG_STATE,
    QOS_KNOB,
    SNAPSHOT,
    STATUS,
    SUMMARY,
    UPLINK_USAGE,
)
from services.cloud_bridge.analytic_rates import AnalyticRates
from services.cloud_bridge.settings import (
    CloudBridgeConfig,
    CloudBridgeSettings,
    CloudSettings,
)
from services.cloud_bridge.snapshot_uplink import SnapshotUplink
from services.cloud_bridge.spool import (
    MessageClass,
    Spool,
    SpoolDiskError,
    SpooledMessage,
    SpoolFullError,
)
from services.cloud_bridge.spool_disk import fit_budget_to_disk
from services.cloud_bridge.taken_receipts import TakenReceipts
from services.cloud_bridge.token_bucket import UplinkPacer
from services.cloud_bridge.uplink import Uplink, UplinkPolicy
from services.cloud_bridge.upload_accounting import UploadAccounting
from services.cloud_bridge.usage_report import usage_message
from services.common.door import (
    InvalidMessage,
    LeaveUnacknowledged,
    MqttDoor,
    PublishFailed,
    Received,
)
from services.common.pacing import wait_set
from services.common.runtime_config import RuntimeConfig
from services.common.settings import load_settings
from services.common.stage_runner import serve

log = logging.getLogger(__name__)
JPEG_MAGIC = b"\xff\xd8"
USAGE_MIN_SPACING_S = 0.5
# Exit status when stopping with an alert the full spool refused in hand.


class CloudBridgeStage:
    def __init__(
        self, local: MqttDoor, cloud: MqttDoor, settings: CloudBridgeSettings, spool: Spool
    ) -> None:
        self._local = local
        self._cloud = cloud
        self._settings = settings
        self._spool = spool
        self._stop = asyncio.Event()
        self._usage_due = asyncio.Event()
        self._disk_errors = 0
        self._disk_full = False
        self._holding_on_disk = False
        self.config = RuntimeConfig(local, CloudBridgeConfig, settings.startup_config())
        self.config.on_change(self._on_config)
        self._budget_source: Literal["config", "allocator"] = "config"
        budget = self.config.current.budget_kbps
        now = time.monotonic()
        self._pacer = UplinkPacer(
            budget,
            now,
            burst_s=settings.burst_s,
            live_reserve_share=settings.live_reserve_share,
        )
        self._accounting = UploadAccounting(budget, now, window_s=settings.usage_window_s)
        self.uplink = Uplink(
            spool,
            cloud,
            self._pacer,
            self._accounting,
            local.metrics,
            UplinkPolicy(
                live_queue=settings.live_queue,
                drain_page=settings.drain_page,
                publish_timeout_s=settings.cloud_publish_timeout_s,
                mark_every_s=settings.mark_delivered_every_s,
                in_flight=settings.cloud_in_flight,
            ),
        )
        self.rates = AnalyticRates(burst_s=settings.burst_s)
        self.snapshots = SnapshotUplink(
            cloud,
            self._pacer,
            self.rates,
            self._accounting,
            local.metrics,
            max_pending=settings.snapshots_pending_max,
            publish_timeout_s=settings.cloud_publish_timeout_s,
        )
        self.snapshots.set_enabled(self.config.current.upload_snapshots)
        self.receipts = TakenReceipts(
            local,
            every_s=settings.receipts_every_s,
            batch=settings.receipts_batch,
            buffer=settings.receipts_buffer,
        )
        local.subscribe(ALERT, self._on_alert)
        local.subscribe(SUMMARY, self._on_summary)
        local.subscribe(STATUS, self._on_status)
        local.subscribe(CONFIG_STATE, self._on_config_state)
        local.subscribe(QOS_KNOB, self._on_knob)
        local.subscribe(SNAPSHOT, self._on_snapshot)
        cloud.subscribe(CONFIG, self._on_cloud_config)

    # -- gateway -> spool ---------------------------------------------------

    async def _on_alert(self, message: Received[Alert]) -> None:
        await self._take(message, "alert", message.payload.id, retain=False)

    async def _on_summary(self, message: Received[Summary]) -> None:
        await self._take(message, "summary", message.payload.id, retain=False)

    async def _on_config_state(self, message: Received[ConfigState | None]) -> None:
        if message.payload is None:
            # The stage's retained answer was cleared: clear the cloud's copy
            # too. A live change, so a fresh id (as for a live status).
            await self._take(message, "status", f"config-cleared-{uuid.uuid4().hex}", retain=True)
            return
        await self._take(message, "status", message.payload.id, retain=True)

    async def _on_status(self, message: Received[bytes]) -> None:
        # `online`/`offline` carry no id. A retained copy (sent again on every
        # resubscribe) gets a content id, so the spool forwards it once; a
        # live change gets a fresh one, so online-offline-online all go out.
        if message.retained:
            digest = hashlib.blake2b(message.topic.encode() + b"\x00" + message.raw, digest_size=10)
            message_id = f"status-{digest.hexdigest()}"
        else:
            message_id = f"status-{uuid.uuid4().hex}"
        await self._take(message, "status", message_id, retain=True)

    async def _take(
        self, message: Received[object], message_class: MessageClass, message_id: str, retain: bool
    ) -> None:
        """Return only once the message is durably spooled (then the door acks it)."""
        waited = False
        while True:
            try:
                result = await asyncio.to_thread(
                    self._spool.append,
                    message.topic,
                    message.raw,
                    message_class,
                    message_id,
                    1,
                    retain,
                )
                break
            except SpoolDiskError as error:
                # Spool-full too: the broker keeps the message while we wait.
                self._holding_on_disk = True
                self._on_disk_error(error)
                if self._stop.is_set():
                    self._holding_on_disk = False
                    raise LeaveUnacknowledged("stopping with the spool disk full") from error
                with contextlib.suppress(SpoolDiskError):
                    await asyncio.to_thread(self._spool.checkpoint)
                self.uplink.space_freed.clear()
                await wait_set(self.uplink.space_freed, self._settings.spool_full_retry_s)
                continue
            except SpoolFullError as error:
                # Backpressure: the gateway broker keeps the alert while we wait.
                self._local.metrics.count("spool_full_waits")
                self._usage_due.set()
                if not waited:
                    log.warning("spool full of alerts: holding", extra={"error": str(error)})
                    waited = True
                if self._stop.is_set():
                    raise LeaveUnacknowledged("stopping with the spool full") from error
                self.uplink.space_freed.clear()
                await wait_set(self.uplink.space_freed, self._settings.spool_full_retry_s)
        self._holding_on_disk = False
        self._disk_writable()
        self._local.metrics.count(f"spooled_{message_class}_{result.status}")
        if message_class == "alert" and result.status != "refused":
            # On disk now (or already): the forwarder may stop re-sending it.
            self.receipts.note(message_id)
        if result.evicted or result.status == "refused":
            self._usage_due.set()
        if result.status == "stored" and result.seq is not None:
            now = time.time()
            spooled = SpooledMessage(
                seq=result.seq,
                message_id=message_id,
                message_class=message_class,
                topic=message.topic,
                payload=message.raw,
                qos=1,
                retain=retain,
                ts=now,
                spooled_at=now,
            )
            self.uplink.offer_live(spooled)

    def _on_disk_error(self, error: SpoolDiskError) -> None:
        self._disk_errors += 1
        self._local.metrics.count("spool_disk_errors")
        if not self._disk_full:
            self._disk_full = True
            self._local.metrics.degraded = "spool disk full: messages held at the broker"
            self._usage_due.set()
            log.warning("spool disk full: holding", extra={"error": str(error)})

    def _disk_writable(self) -> None:
        if self._disk_full:
            self._disk_full = False
            self._local.metrics.degraded = None
            self._usage_due.set()
            log.warning("spool disk writable again")

    async def _on_snapshot(self, message: Received[bytes]) -> None:
        if not message.raw.startswith(JPEG_MAGIC):
            # Whatever it is, it is not a picture to put in the cloud.
            raise InvalidMessage("snapshot: not a JPEG (no FF D8 start of image)")
        analytic = detector_analytic(message.params["camera"])
        self.snapshots.offer(message.topic, message.raw, analytic)

    # -- budget -------------------------------------------------------------

    async def _on_knob(self, message: Received[QosKnob | None]) -> None:
        analytic = message.params["analytic"]
        knob = message.payload
        if analytic != UPLINK_ANALYTIC:
            # An analytic's own upload rate: the cost of the level it was given.
            if knob is None:
                self.rates.forget(analytic)
            else:
                self.rates.set_rate(analytic, knob.level.cost_kbps, time.monotonic())
            self._usage_due.set()
            return
        if knob is None:
            return  # the allocator went away: keep the last budget
        try:
            kbps = knob_params(UplinkKnobParams, knob).kbps
        except InvalidKnobParams as error:
            raise InvalidMessage(str(error)) from None
        kbps = kbps if kbps is not None else knob.budget_kbps
        # 1 bit/s at least: budget_used (used / budget) stays finite.
        if kbps is None or not 1e-3 <= kbps <= MAX_KBPS:
            raise InvalidMessage(
                f"qos/uplink: level.params.kbps or budget_kbps must be 1e-3..{MAX_KBPS}"
            )
        self._budget_source = "allocator"
        self._set_budget(kbps)

    def _on_config(self, config: CloudBridgeConfig) -> None:
        self.snapshots.set_enabled(config.upload_snapshots)
        if self._budget_source == "config":
            self._set_budget(config.budget_kbps)

    def _set_budget(self, kbps: float) -> None:
        self._pacer.set_rate(kbps, time.monotonic())
        self._accounting.set_budget(kbps)
        self._usage_due.set()
        log.info("upload budget", extra={"kbps": kbps, "from": self._budget_source})

    # -- cloud -> gateway -----------------------------------------------------

    async def _on_cloud_config(self, message: Received[bytes]) -> None:
        stage = message.params["stage"]
        try:
            await self._local.publish(CONFIG, message.raw, retain=True, stage=stage)
        except PublishFailed as error:
            # The cloud sends the retained config again on our next connect.
            log.error("config from the cloud not republished", extra={"error": str(error)})
            return
        self._local.metrics.count("configs_from_cloud")

    # -- workers --------------------------------------------------------------

    async def cloud_link(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._cloud.run())
            await stop.wait()
            self._stop.set()
            self._cloud.close()

    async def report_usage(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await wait_set(self._usage_due, self._settings.usage_interval_s)
            self._usage_due.clear()
            try:
                await asyncio.to_thread(self._spool.maintain)
            except SpoolDiskError as error:
                self._on_disk_error(error)
            else:
                if not self._holding_on_disk:  # else the held append says when
                    self._disk_writable()
            await self.publish_usage()
            await wait_set(stop, USAGE_MIN_SPACING_S)

    async def publish_usage(self) -> None:
        stats = await asyncio.to_thread(self._spool.stats)
        usage = usage_message(
            self._accounting.snapshot(time.monotonic()),
            stats,
            cloud_connected=self._cloud.connected.is_set(),
            budget_source=self._budget_source,
            analytic_rates_kbps=self.rates.all_kbit_per_s(),
            disk_full=self._disk_full,
            disk_errors=self._disk_errors,
        )
        self._local.metrics.gauge("spool_entries", stats.total_entries)
        self._local.metrics.gauge("spool_bytes", stats.total_bytes)
        try:
            await self._local.publish(UPLINK_USAGE, usage)
        except PublishFailed as error:
            log.warning("uplink usage not published", extra={"error": str(error)})


def cloud_settings_for(settings: CloudBridgeSettings, cloud: CloudSettings) -> CloudSettings:
    """The cloud side under the gateway's own tree and client identity."""
    return cloud.model_copy(
        update={
            "gateway_id": settings.gateway_id,
            "topic_root": settings.topic_root,
            "instance": settings.instance,
        }
    )


async def run(
    settings: CloudBridgeSettings,
    cloud_settings: CloudSettings | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    cloud_settings = cloud_settings_for(settings, cloud_settings or load_settings(CloudSettings))
    settings.spool_path.parent.mkdir(parents=True, exist_ok=True)
    max_bytes = fit_budget_to_disk(
        settings.spool_path, settings.spool_max_bytes, "EDGEGW_SPOOL_MAX_BYTES"
    )
    spool = await asyncio.to_thread(Spool, settings.spool_path, max_bytes, settings.ttl_s())
    try:
        local = MqttDoor(settings, CLOUD_BRIDGE)
        cloud = MqttDoor(cloud_settings, CLOUD_BRIDGE, root=settings.root)
        stage = CloudBridgeStage(local, cloud, settings, spool)
        await serve(
            local,
            [
                stage.cloud_link,
                stage.uplink.run,
                stage.snapshots.run,
                stage.report_usage,
                stage.receipts.run,
            ],
            stop=stop,
        )
    finally:
        await asyncio.to_thread(spool.close)
