"""`edgegw profile audio`: the utility of each audio classification rate, measured.

The bundled sounds (.cache/media/audio) are played back to back, with
silence between them, as one microphone would hear them. YAMNet scores
every 0.48 s patch once (the full-rate run, stride 1). A level of stride N
sees only every N-th patch — averaged over the N possible phases, since a
stage's phase is wherever its stream happened to start — and goes through
audio-classifier's own event tracker (hysteresis, default config) with the
default classes of interest. Against the full-rate run:

- recall: share of the reference sound events that the level also reports
  (same label, overlapping in time);
- delay: mean extra time until the level's `new`, over detected events
  (when the opening patch ends, i.e. when the stage can know it); a late
  alarm is worth less: factor 0.5 ** (delay / LATENCY_HALF_LIFE_S).

utility = recall x latency factor (1 for stride 1). Also measured: sound-event
messages (new/update/end: what goes to the cloud as alerts) per second of
audio, from which the stage computes each level's upload cost.

Regenerate the table audio-classifier publishes (deterministic: fixed sounds
and model):

    python -m services.bandwidth_allocator.profile_audio
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from services.audio_capture.pcm import load_pcm16, pcm16_to_float
from services.audio_capture.playlist import build_program
from services.audio_classifier.levels import PROFILE_PATH, AudioProfile, ProfiledAudioLevel
from services.audio_classifier.settings import AudioClassifierConfig
from services.audio_classifier.sound_events import SoundEvent, SoundEventTracker
from services.audio_classifier.yamnet import PatchScores, YamnetClassifier

REFERENCE_STRIDE = 1
STRIDES = (1, 2, 4, 8)
# Sound alarms are urgent: two seconds late halves their worth.
LATENCY_HALF_LIFE_S = 2.0
SILENCE_BETWEEN_S = 3.0
DEFAULT_AUDIO_DIR = Path(".cache/media/audio")
DEFAULT_MODEL_DIR = Path(".cache/models/yamnet")
REGENERATE = "python -m services.bandwidth_allocator.profile_audio"


@dataclass(frozen=True)
class Episode:
    label: str
    known_at: float  # end of the patch that raised `new`
    start: float
    end: float


def track(patches: Sequence[PatchScores], class_names: Sequence[str]) -> list[SoundEvent]:
    config = AudioClassifierConfig()
    families = [family.family(label) for label, family in config.classes_of_interest.items()]
    tracker = SoundEventTracker(
        class_names, families, update_every_patches=config.update_every_patches
    )
    events: list[SoundEvent] = []
    for patch in patches:
        events.extend(tracker.observe(patch))
    if patches:
        events.extend(tracker.close_all(patches[-1].index + 1))
    return events


def episodes_of(events: Sequence[SoundEvent], known_at: dict[int, float]) -> list[Episode]:
    opened: dict[str, SoundEvent] = {}
    found = []
    for event in events:
        if event.kind == "new":
            opened[event.event_id] = event
        elif event.kind == "end" and event.event_id in opened:
            first = opened.pop(event.event_id)
            known = known_at[first.patch_index]
            found.append(Episode(first.label, known, first.start_s, event.end_s))
    return found


@dataclass(frozen=True)
class Comparison:
    detected: int
    reference: int
    delays: list[float]
    messages: int


def compare(reference: list[Episode], level: list[Episode], messages: int) -> Comparison:
    delays = []
    for wanted in reference:
        matching = [
            e
            for e in level
            if e.label == wanted.label and e.start <= wanted.end and e.end >= wanted.start
        ]
        if matching:
            delays.append(max(0.0, matching[0].known_at - wanted.known_at))
    return Comparison(len(delays), len(reference), delays, messages)


def profile_audio(classifier: YamnetClassifier, sounds: Sequence[Path]) -> AudioProfile:
    program = build_program([load_pcm16(path) for path in sounds], SILENCE_BETWEEN_S)
    seconds = len(program) / 16_000
    patches = classifier.classify(pcm16_to_float(program), top_k=1)
    known_at = {p.index: p.end_s for p in patches}
    names = classifier.class_names
    reference = episodes_of(track(patches, names), known_at)
    levels = []
    for stride in STRIDES:
        runs = []
        for phase in range(stride):
            # Indexes renumbered as the stage numbers classified patches, so
            # `update_every_patches` counts patches it actually saw.
            seen = [replace(p, index=i) for i, p in enumerate(patches[phase::stride])]
            seen_known_at = {i: p.end_s for i, p in enumerate(seen)}
            events = track(seen, names)
            runs.append(compare(reference, episodes_of(events, seen_known_at), len(events)))
        detected = sum(r.detected for r in runs)
        wanted = sum(r.reference for r in runs)
        delays = [d for r in runs for d in r.delays]
        recall = detected / wanted if wanted else 1.0
        delay = statistics.fmean(delays) if delays else 0.0
        utility = recall * 0.5 ** (delay / LATENCY_HALF_LIFE_S)
        levels.append(
            ProfiledAudioLevel(
                patch_stride=stride,
                utility=round(utility, 4),
                recall=round(recall, 4),
                mean_delay_s=round(delay, 3),
                event_messages_per_s=round(float(np.mean([r.messages for r in runs])) / seconds, 5),
                classified_patches_per_s=round(len(patches) / stride / seconds, 4),
            )
        )
    return AudioProfile(
        generated_by=REGENERATE,
        reference_patch_stride=REFERENCE_STRIDE,
        sounds=[path.name for path in sounds],
        program_seconds=round(seconds, 3),
        reference_events=len(reference),
        latency_half_life_s=LATENCY_HALF_LIFE_S,
        levels=levels,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=PROFILE_PATH, help="JSON table to write")
    parser.add_argument("--audio-dir", type=Path, default=DEFAULT_AUDIO_DIR)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--threads", type=int, default=1)


def profile_command(args: argparse.Namespace) -> int:
    """What `edgegw profile audio` runs: write the table, print a summary."""
    sounds = sorted(args.audio_dir.glob("*.wav"))
    if not sounds:
        print(f"no .wav sounds in {args.audio_dir} (run `make assets`)")
        return 2
    classifier = YamnetClassifier.load(args.model_dir, args.threads)
    profile = profile_audio(classifier, sounds)
    args.out.write_text(profile.model_dump_json(indent=2) + "\n")
    print(f"{profile.reference_events} reference events in {profile.program_seconds:g} s")
    for level in profile.levels:
        print(
            f"stride {level.patch_stride}: utility {level.utility:.3f} recall {level.recall:.3f}"
            f" delay {level.mean_delay_s:.2f}s events/s {level.event_messages_per_s:.4f}"
        )
    print(f"wrote {args.out}")
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_arguments(parser)
    raise SystemExit(profile_command(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
