"""One microphone's stream through YAMNet: chunks in, per-patch class scores
and sound-event messages out.

Patches are cut across chunk borders (PatchStream); a gap in the chunks' `seq`
(a chunk lost on the way or dropped by the backlog) restarts the cut, so no
patch glues two moments together. Patch times are wall-clock seconds: the
capture time of the stream's first chunk plus the patch's offset in it, which
survives restarts and becomes the events' start and end times.

`analyse` is blocking (model inference): the stage runs it off the event loop,
one chunk at a time per stream.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from schemas.audio import AudioClasses, ClassScore, SoundEvent
from schemas.envelope import LifecycleStep, lifecycle_message, unit_score
from schemas.topics import AUDIO_CLASSIFIER
from services.audio_classifier.chunks import Chunk
from services.audio_classifier.frontend import PATCH_HOP_SECONDS, PATCH_SECONDS, PatchStream
from services.audio_classifier.sound_events import (
    SoundClassOfInterest,
    SoundEpisodeChange,
    SoundEventTracker,
)
from services.audio_classifier.yamnet import PatchScores, YamnetClassifier
from services.media.pcm_chunk import pcm16_to_float


@dataclasses.dataclass(frozen=True)
class Analysis:
    classes: list[AudioClasses]
    events: list[SoundEvent]
    patches: int
    gap: bool  # the chunk did not follow the previous one: patches restarted


class MicStream:
    def __init__(
        self,
        mic: str,
        classifier: YamnetClassifier,
        families: Iterable[SoundClassOfInterest],
        update_every_patches: int,
        patch_stride: int = 1,
    ) -> None:
        self.mic = mic
        # The QoS knob: classify every `patch_stride`-th patch only (see levels.py).
        self.patch_stride = patch_stride
        self._classifier = classifier
        self._patches = PatchStream(classifier.front_end)
        self._tracker = SoundEventTracker(
            classifier.class_names, families, update_every_patches=update_every_patches
        )
        self._next_seq: int | None = None
        self._origin_ts = 0.0  # wall time of the first sample since the last restart
        self._origin_index = 0  # patch index (of this mic) at the last restart
        self._next_index = 0
        self._messages_sent: dict[str, int] = {}  # event id -> messages so far

    def analyse(self, chunk: Chunk, top_k: int) -> Analysis:
        gap = self._next_seq is not None and chunk.seq != self._next_seq
        if chunk.seq != self._next_seq:
            self._patches = PatchStream(self._classifier.front_end)
            self._origin_ts = chunk.capture_ts
            self._origin_index = self._next_index
        self._next_seq = chunk.seq + 1
        batch = self._patches.push(pcm16_to_float(chunk.samples))
        # Patches are picked by their index in the stream, not in the chunk,
        # so the stride holds across chunk borders.
        kept = [
            offset
            for offset in range(len(batch.patches))
            if (batch.first_index + offset) % self.patch_stride == 0
        ]
        scored = self._classifier.classify_patches(batch.patches[kept], top_k=top_k)
        classes: list[AudioClasses] = []
        events: list[SoundEvent] = []
        for offset, patch in zip(kept, scored, strict=True):
            timed = self._timed(patch, batch.first_index + offset)
            classes.append(self._classes_message(timed))
            events.extend(self._event_message(e) for e in self._tracker.observe(timed))
        return Analysis(classes, events, len(scored), gap)

    def close(self) -> list[SoundEvent]:
        """End every open event (the mic fell silent, the config changed, we stop)."""
        return [self._event_message(e) for e in self._tracker.close_all(self._next_index)]

    @property
    def open_labels(self) -> tuple[str, ...]:
        return self._tracker.open_labels

    def _timed(self, patch: PatchScores, index_since_restart: int) -> PatchScores:
        start_ts = self._origin_ts + index_since_restart * PATCH_HOP_SECONDS
        index = self._origin_index + index_since_restart
        self._next_index = index + 1
        return dataclasses.replace(
            patch, index=index, start_s=start_ts, end_s=start_ts + PATCH_SECONDS
        )

    def _classes_message(self, patch: PatchScores) -> AudioClasses:
        return AudioClasses(
            source=AUDIO_CLASSIFIER,
            mic=self.mic,
            patch_index=patch.index,
            start_ts=patch.start_s,
            end_ts=patch.end_s,
            top=[ClassScore(index=c.index, name=c.name, score=c.score) for c in patch.top],
        )

    def _event_message(self, event: SoundEpisodeChange) -> SoundEvent:
        sequence = self._messages_sent.get(event.event_id, 0) + 1
        if event.kind == "end":
            self._messages_sent.pop(event.event_id, None)
        else:
            self._messages_sent[event.event_id] = sequence
        end_s = event.end_s if event.kind == "end" else None
        step = LifecycleStep(event.kind, event.event_id, sequence, event.start_s, end_s)
        return lifecycle_message(
            SoundEvent,
            AUDIO_CLASSIFIER,
            step,
            mic=self.mic,
            label=event.label,
            top_class=event.top_class,
            score=unit_score(event.score),
            peak_score=unit_score(event.peak_score),
        )
