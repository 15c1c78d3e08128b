"""The async shell of audio-capture: PCM16 mono 16 kHz chunks out on `audio/<mic>/chunk`.

Two sources feed the same publisher:
- sound files, decoded and resampled once at start-up, replayed paced by the
  clock (`speed` times real time) and looped;
- an ALSA device, read through `arecord` (Debian's alsa-utils) as a child
  process writing raw S16_LE 16 kHz mono to a pipe. ALSA itself does the
  resampling and down-mixing (the `plug` layer of the `default` device), and
  asyncio reads the pipe without ever blocking the event loop; no Python
  audio binding is needed. A stalled or dead `arecord` is restarted with
  backoff.

Each chunk carries `seq`, `capture_ts` (wall-clock time of its first sample),
`sample_rate` and `channels` as MQTT 5 user properties; it is QoS 0, so a
chunk that cannot be published is counted and the stream goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

import numpy as np

from schemas.audio import SAMPLE_RATE_HZ
from schemas.topics import AUDIO_CAPTURE, AUDIO_CHUNK
from services.audio_capture.pcm import AudioFileError, load_pcm16, samples_per_chunk
from services.audio_capture.playlist import build_program, program_chunks
from services.audio_capture.settings import AudioCaptureSettings
from services.common.backoff import Backoff
from services.common.door import MqttDoor, PublishFailed
from services.common.pacing import wait_set
from services.common.stage_runner import serve
from services.media.pcm_chunk import SAMPLE_WIDTH_BYTES, ChunkMeta, Pcm16

log = logging.getLogger(__name__)

Emit = Callable[[Pcm16, float], Awaitable[bool]]  # (chunk, capture_ts) -> go on?
# A replay this many chunks behind its clock (a stalled broker, a busy CPU)
# jumps to now instead of bursting the missed chunks out at once.
MAX_CHUNKS_BEHIND = 2
ARECORD_STOP_TIMEOUT_S = 2.0
STDERR_LINES_KEPT = 20
CONNECT_POLL_S = 0.2


def arecord_command(device: str) -> list[str]:
    """arecord writing raw PCM16 little-endian mono 16 kHz to stdout, quietly."""
    return [
        "arecord",
        "-D",
        device,
        "-q",
        "-t",
        "raw",
        "-f",
        "S16_LE",
        "-r",
        str(SAMPLE_RATE_HZ),
        "-c",
        "1",
    ]


class AudioCaptureStage:
    def __init__(self, door: MqttDoor, settings: AudioCaptureSettings, program: Pcm16 | None):
        self._door = door
        self._settings = settings
        self._program = program
        self._seq = 0

    async def capture(self, stop: asyncio.Event) -> None:
        # Chunks sent before the broker answers would be lost (QoS 0), and a
        # replay would start with a hole: begin once connected.
        while not (self._door.connected.is_set() or stop.is_set()):
            await wait_set(self._door.connected, CONNECT_POLL_S)
        try:
            if self._program is not None:
                await self._replay(stop, self._emit)
            else:
                await self._record(stop, self._emit)
        finally:
            log.info("capture finished", extra={"chunks": self._seq})
            stop.set()  # a finite replay (or max_chunks) ends the stage

    async def _emit(self, chunk: Pcm16, capture_ts: float) -> bool:
        settings = self._settings
        properties = ChunkMeta(self._seq, capture_ts).to_properties()
        self._seq += 1
        payload = chunk.astype("<i2", copy=False).tobytes()
        try:
            await self._door.publish(
                AUDIO_CHUNK,
                payload,
                user_properties=properties,
                wait_s=max(settings.chunk_s, 1.0),
                mic=settings.mic,
            )
            self._door.metrics.count("chunks_sent")
        except PublishFailed as error:
            self._door.metrics.count("chunks_lost")
            log.warning("chunk not published", extra={"error": str(error)})
        return not (settings.max_chunks and self._seq >= settings.max_chunks)

    async def _replay(self, stop: asyncio.Event, emit: Emit) -> None:
        settings = self._settings
        assert self._program is not None
        wall_start = time.time()
        clock_start = time.monotonic()
        for index, chunk in enumerate(
            program_chunks(self._program, settings.chunk_s, loop=settings.loop)
        ):
            if stop.is_set():
                return
            offset_s = index * settings.chunk_s
            if settings.speed > 0:
                delay = clock_start + offset_s / settings.speed - time.monotonic()
                if delay < -MAX_CHUNKS_BEHIND * settings.chunk_s / settings.speed:
                    self._door.metrics.count("replay_resyncs")
                    clock_start -= delay
                elif delay > 0:
                    await wait_set(stop, delay)
                    if stop.is_set():
                        return
            if not await emit(chunk, wall_start + offset_s):
                return

    async def _record(self, stop: asyncio.Event, emit: Emit) -> None:
        settings = self._settings
        backoff = Backoff(settings.reconnect_initial_s, settings.reconnect_max_s)
        while not stop.is_set():
            finished = await self._record_once(stop, emit)
            if finished:
                return
            self._door.metrics.count("arecord_restarts")
            await wait_set(stop, backoff.next_delay())

    async def _record_once(self, stop: asyncio.Event, emit: Emit) -> bool:
        """Run arecord until it fails (False) or we are done (True)."""
        settings = self._settings
        chunk_bytes = samples_per_chunk(settings.chunk_s) * SAMPLE_WIDTH_BYTES
        try:
            process = await asyncio.create_subprocess_exec(
                *arecord_command(settings.alsa_device),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as error:
            log.error("cannot start arecord (install alsa-utils)", extra={"error": str(error)})
            return False
        assert process.stdout is not None and process.stderr is not None
        errors: deque[str] = deque(maxlen=STDERR_LINES_KEPT)
        async with asyncio.TaskGroup() as tasks:
            # Drained all along: a full stderr pipe would stall arecord. It
            # ends at arecord's exit, which the `finally` below brings about.
            tasks.create_task(_collect_lines(process.stderr, errors))
            try:
                while not stop.is_set():
                    data = await asyncio.wait_for(
                        process.stdout.readexactly(chunk_bytes), settings.alsa_read_timeout_s
                    )
                    # The chunk's first sample was heard one chunk ago.
                    capture_ts = time.time() - settings.chunk_s
                    if not await emit(np.frombuffer(data, dtype="<i2"), capture_ts):
                        return True
                return True
            except asyncio.IncompleteReadError:
                log.error(
                    "arecord stopped",
                    extra={"device": settings.alsa_device, "stderr": " | ".join(errors)},
                )
                return False
            except TimeoutError:
                log.error("arecord gave no audio", extra={"device": settings.alsa_device})
                return False
            finally:
                await _stop_process(process)


async def _collect_lines(stream: asyncio.StreamReader, lines: deque[str]) -> None:
    while line := await stream.readline():
        lines.append(line.decode(errors="replace").strip())


async def _stop_process(process: asyncio.subprocess.Process) -> None:
    """Terminate arecord (kill it if it lingers) and reap it."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
    try:
        await asyncio.wait_for(_drain_until_exit(process), ARECORD_STOP_TIMEOUT_S)
        return
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    try:
        await asyncio.wait_for(_drain_until_exit(process), ARECORD_STOP_TIMEOUT_S)
    except TimeoutError:
        log.error("arecord did not exit", extra={"pid": process.pid})


async def _drain_until_exit(process: asyncio.subprocess.Process) -> None:
    # Read stdout to its end: arecord blocked on a full pipe never gets to
    # its exit, and asyncio (3.11) reports the exit only once the pipes close.
    if process.stdout is not None:
        while await process.stdout.read(1 << 16):
            pass
    await process.wait()


def load_program(settings: AudioCaptureSettings) -> Pcm16:
    """Decode every file once (blocking: call it off the loop)."""
    sounds = [load_pcm16(path) for path in settings.file_paths()]
    return build_program(sounds, settings.silence_between_s)


async def run(settings: AudioCaptureSettings, stop: asyncio.Event | None = None) -> None:
    program = None
    if settings.file_paths():
        try:
            program = await asyncio.to_thread(load_program, settings)
        except (AudioFileError, ValueError) as error:
            log.error("cannot read the sound files", extra={"error": str(error)})
            raise SystemExit(2) from None
        log.info("sounds loaded", extra={"seconds": round(len(program) / SAMPLE_RATE_HZ, 3)})
    door = MqttDoor(settings, AUDIO_CAPTURE)
    stage = AudioCaptureStage(door, settings, program)
    await serve(door, [stage.capture], stop=stop)
