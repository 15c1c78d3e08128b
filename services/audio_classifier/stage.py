"""The async shell of audio-classifier: chunks in; class scores and sound events out.

The chunk handler only checks a chunk and queues it in the bounded backlog
(bad chunks are dead-lettered with the reason); one worker takes chunks in
turn across mics and runs the front end and YAMNet in a thread, so the event
loop keeps reading while the model runs, and the backlog's bound — not the
broker's queue — decides what waits. Config changes are applied by the
worker between two chunks, never under a running analysis.

Each mic is an analytic of the bandwidth allocator (`audio.<mic>`, see
`levels.py`): when a mic is first heard its levels are published retained,
and cleared when it falls silent, so its budget goes to the others. The
retained knob `qos/audio.<mic>` sets the mic's patch stride; it applies
from the next chunk (chunks are 0.5 s by default), a cleared knob restores
stride 1 (every patch).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from functools import partial

from pydantic import ValidationError

from schemas.analytics import (
    AudioKnobParams,
    InvalidKnobParams,
    audio_analytic,
    knob_params,
    source_of,
)
from schemas.audio import SoundEvent
from schemas.qos import QosKnob, QosLevels
from schemas.topics import (
    AUDIO_CHUNK,
    AUDIO_CLASSES,
    AUDIO_CLASSIFIER,
    QOS_KNOB,
    QOS_LEVELS,
)
from services.audio_classifier.chunks import Chunk, ChunkBacklog, parse_chunk
from services.audio_classifier.levels import (
    load_profile,
    mic_levels,
)
from services.audio_classifier.mic_stream import MicStream
from services.audio_classifier.settings import (
    AudioClassifierConfig,
    AudioClassifierSettings,
    config_model_for,
)
from services.audio_classifier.yamnet import YamnetClassifier
from services.common.door import (
    InvalidMessage,
    MqttDoor,
    PublishFailed,
    Received,
    describe_validation_error,
)
from services.common.pacing import wait_set
from services.common.periodic_summary import Tally, publish_summaries
from services.common.runtime_config import RuntimeConfig
from services.common.settings import ENV_PREFIX
from services.common.stage_runner import serve
from services.common.unsent_events import UnsentEvents
from services.inference import ModelLoadError
from services.media.pcm_chunk import BadChunkError

log = logging.getLogger(__name__)
IDLE_CHECK_S = 1.0


class AudioClassifierStage:
    def __init__(
        self,
        door: MqttDoor,
        settings: AudioClassifierSettings,
        classifier: YamnetClassifier,
        startup: AudioClassifierConfig,
    ) -> None:
        self._door = door
        self._settings = settings
        self._classifier = classifier
        self.summary = Tally(time.time())
        self._unsent = UnsentEvents[SoundEvent](
            door, lambda event: event.mic, settings.max_unsent_events, self._sent
        )
        self.config = RuntimeConfig(door, config_model_for(classifier.class_names), startup)
        self.config.on_change(self._config_changed)
        self._config_pending = False
        self._backlog = ChunkBacklog(settings.max_pending_s)
        self._ready = asyncio.Event()
        self._streams: dict[str, MicStream] = {}
        self._last_heard: dict[str, float] = {}
        self._profile = load_profile()
        self._strides: dict[str, int] = {}  # mic -> stride from its knob; absent: 1
        self._announced: set[str] = set()  # mics whose levels are retained
        door.subscribe(AUDIO_CHUNK, self.on_chunk)
        # Mics are only known as their chunks arrive: every knob, ours filtered.
        door.subscribe(QOS_KNOB, self.on_knob)

    # -- on the event loop, per message ----------------------------------------

    async def on_chunk(self, message: Received[bytes]) -> None:
        mic = message.params["mic"]
        try:
            chunk = parse_chunk(mic, message.payload, message.properties)
        except BadChunkError as error:
            raise InvalidMessage(error.reason) from None
        if mic not in self._last_heard and len(self._last_heard) >= self._settings.max_mics:
            raise InvalidMessage(f"more than {self._settings.max_mics} mics")
        self._last_heard[mic] = time.monotonic()
        metrics = self._door.metrics
        metrics.count("chunks_received")
        dropped = self._backlog.offer(chunk)
        if dropped:
            metrics.count("chunks_dropped", dropped)
        metrics.gauge("backlog_chunks", len(self._backlog))
        self._ready.set()

    async def on_knob(self, message: Received[QosKnob | None]) -> None:
        mic = source_of("audio", message.params["analytic"])
        if mic is None:
            return  # another analytic's knob
        if message.payload is None:  # the knob was cleared: back to every patch
            stride = 1
        else:
            try:
                stride = knob_params(AudioKnobParams, message.payload).patch_stride
            except InvalidKnobParams as error:
                raise InvalidMessage(str(error)) from None
        if self._strides.get(mic, 1) != stride:
            log.info("qos knob applied", extra={"mic": mic, "patch_stride": stride})
        self._strides[mic] = stride
        stream = self._streams.get(mic)
        if stream is not None:
            stream.patch_stride = stride

    def _config_changed(self, _: AudioClassifierConfig) -> None:
        self._config_pending = True
        self._ready.set()

    # -- the worker --------------------------------------------------------------

    async def classify(self, stop: asyncio.Event) -> None:
        next_silence_check = time.monotonic() + IDLE_CHECK_S
        try:
            while not stop.is_set():
                if self._config_pending:
                    await self._apply_config()
                # Also while other mics keep the worker busy.
                if time.monotonic() >= next_silence_check:
                    next_silence_check = time.monotonic() + IDLE_CHECK_S
                    await self._close_silent_mics()
                    if self._unsent and self._door.connected.is_set():
                        await self._unsent.send()  # what a lost connection held back
                chunk = self._backlog.take()
                if chunk is None:
                    self._ready.clear()
                    await wait_set(self._ready, IDLE_CHECK_S)
                    continue
                if chunk.mic not in self._announced:
                    await self._announce_levels(chunk.mic)
                await self._analyse(chunk)
        finally:
            # Whoever follows an event must learn that it ended with us.
            for mic in list(self._streams):
                await self._publish_events(self._streams.pop(mic).close())

    async def _analyse(self, chunk: Chunk) -> None:
        stream = self._streams.get(chunk.mic)
        config = self.config.current
        if stream is None:
            stream = self._new_stream(chunk.mic, config)
        started = time.perf_counter()
        analysis = await asyncio.to_thread(stream.analyse, chunk, config.top_k)
        elapsed = time.perf_counter() - started
        metrics = self._door.metrics
        metrics.count("chunks_classified")
        metrics.count("patches", analysis.patches)
        if analysis.gap:
            metrics.count("stream_gaps")
        if elapsed > 0:
            metrics.gauge("real_time_factor", round(chunk.seconds / elapsed, 1))
        metrics.gauge("backlog_chunks", len(self._backlog))
        for classes in analysis.classes:
            if classes.top:
                self.summary.add("top_class", f"{chunk.mic}.{classes.top[0].name}")
            # QoS 0: a lost score is replaced by the next patch's, 0.48 s later.
            with contextlib.suppress(PublishFailed):
                await self._door.publish(AUDIO_CLASSES, classes, mic=chunk.mic)
        await self._publish_events(analysis.events)

    def _new_stream(self, mic: str, config: AudioClassifierConfig) -> MicStream:
        families = [family.family(label) for label, family in config.classes_of_interest.items()]
        stream = MicStream(
            mic,
            self._classifier,
            families,
            config.update_every_patches,
            patch_stride=self._strides.get(mic, 1),
        )
        self._streams[mic] = stream
        self._door.metrics.gauge("mics", len(self._streams))
        return stream

    async def _publish_events(self, events: list[SoundEvent]) -> None:
        """Queue `events` and send what is queued; what the broker does not
        confirm stays queued (same ids) for the next try after a reconnect."""
        self._unsent.extend(events)
        if self._unsent:
            await self._unsent.send()

    def _sent(self, event: SoundEvent) -> None:
        if event.type == "new":
            self.summary.add("sound_events", f"{event.mic}.{event.label}")

    async def _announce_levels(self, mic: str) -> None:
        levels = QosLevels(
            source=AUDIO_CLASSIFIER,
            analytic=audio_analytic(mic),
            levels=mic_levels(self._profile, self._door.root, mic),
        )
        try:
            await self._door.publish(QOS_LEVELS, levels, analytic=levels.analytic)
            self._announced.add(mic)
        except PublishFailed as error:  # tried again with the mic's next chunk
            log.warning("levels not published", extra={"mic": mic, "error": str(error)})

    async def _withdraw_levels(self, mic: str) -> None:
        """A silent mic frees its budget: clear its retained levels."""
        if mic not in self._announced:
            return
        try:
            await self._door.publish(QOS_LEVELS, None, retain=True, analytic=audio_analytic(mic))
            self._announced.discard(mic)
        except PublishFailed as error:
            log.warning("levels not withdrawn", extra={"mic": mic, "error": str(error)})

    async def _apply_config(self) -> None:
        """New classes of interest: end every open event, then track with the new ones."""
        self._config_pending = False
        config = self.config.current
        for mic, stream in list(self._streams.items()):
            await self._publish_events(stream.close())
            # A fresh stream keeps no patch state either; the next chunk
            # restarts its patches, as after a gap.
            self._new_stream(mic, config)

    async def _close_silent_mics(self) -> None:
        horizon = time.monotonic() - self.config.current.silent_after_s
        for mic, heard in list(self._last_heard.items()):
            if heard >= horizon:
                continue
            del self._last_heard[mic]
            self._backlog.discard(mic)
            stream = self._streams.pop(mic, None)
            if stream is not None:
                await self._publish_events(stream.close())
            await self._withdraw_levels(mic)
            self._door.metrics.gauge("mics", len(self._streams))


async def run(settings: AudioClassifierSettings, stop: asyncio.Event | None = None) -> None:
    try:
        classifier = await asyncio.to_thread(
            YamnetClassifier.load, settings.model_dir, settings.threads
        )
    except ModelLoadError as error:
        log.error("cannot load the model", extra={"error": str(error)})
        raise SystemExit(2) from None
    try:
        # Env-given classes of interest are checked against the model's classes.
        startup = config_model_for(classifier.class_names).model_validate(
            settings.startup_config().model_dump()
        )
    except ValidationError as error:
        # As load_settings reports the others: on stderr, naming the variable.
        reason = describe_validation_error(error)
        print(f"invalid setting {ENV_PREFIX}CLASSES_OF_INTEREST: {reason}", file=sys.stderr)
        raise SystemExit(2) from None
    log.info("model loaded", extra={"runtime": classifier.runtime, "threads": settings.threads})
    door = MqttDoor(settings, AUDIO_CLASSIFIER)
    stage = AudioClassifierStage(door, settings, classifier, startup)
    summaries = partial(
        publish_summaries, door, AUDIO_CLASSIFIER, stage.summary, settings.summary_period_s
    )
    await serve(door, [stage.classify, summaries], stop=stop)
