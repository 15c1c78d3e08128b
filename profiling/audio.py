"""`edgegw profile audio`: the utility of each audio classification rate, measured.

The program one microphone hears is built from the bundled sounds
(.cache/media/audio) in `rounds` rounds; in each round every sound plays once:

- in an order drawn anew per round, so each sound follows different ones;
- after a gap drawn in GAP_S, in samples: where a sound falls against the
  0.48 s patch grid is spread over the whole hop instead of fixed by the
  lengths of the sounds before it;
- at a gain drawn in GAIN_DB: a source one to four times as far as where it
  was recorded (-6 dB per doubling of distance);
- over Noise.wav (pink noise) looped from a random point, at a floor drawn
  per round in FLOOR_DBFS: a quiet room to an office, for a microphone whose
  94 dB SPL reads -26 dBFS (a common MEMS part). A real microphone never
  hears digital silence.

All draws come from one generator with a fixed seed, so the program (and the
table) is the same on every run. One round holds one play of each sound, as
the old back-to-back playlist did, so the share of alarm-bearing audio -- and
with it the event-message rate -- is the same; more rounds only add plays.

The reference is what the full-rate run reports, not a human labelling.
Played alone in silence, only alarm-clock-elapsed opens events of the
default classes of interest (alarm and smoke_alarm, at score 0.5, which is
just the enter score); none of the other sounds of sound-theme-freedesktop
does, so fetching them would add no reference event. Over the floor, the
alarm clock also opens the odd glass_break and complete.wav (a ding) the odd
smoke_alarm: the full-rate stage reports those too, so a slower level is
judged on them as well. Every such event scores just 0.5, and most last a
single patch, which is what a stride > 1 misses. Under a floor above about
-55 dBFS YAMNet w8a8 no longer scores the alarm clock at 0.5 at all: louder
floors would leave no reference to measure against, which is why the floor
range stops at -60 dBFS. Plays in which the full-rate run sees nothing
simply add no reference event. Seeds 1 and 2 give utilities within 0.03 of
seed 0's: the rounds average out where the sounds fall.

YAMNet scores every 0.48 s patch once (the full-rate run, stride 1). A
level of stride N sees only every N-th patch -- averaged over the N possible
phases, since a stage's phase is wherever its stream happened to start --
and goes through audio-classifier's own event tracker (hysteresis, default
config) with the default classes of interest. Against the full-rate run:

- recall: share of the reference sound events that the level also reports
  (same label, overlapping in time);
- delay: mean extra time until the level's `new`, over detected events
  (when the opening patch ends, i.e. when the stage can know it); a late
  alarm is worth less: factor 0.5 ** (delay / LATENCY_HALF_LIFE_S).

utility = recall x latency factor (1 for stride 1). Also measured: sound-event
messages (new/update/end: what goes to the cloud as alerts) per second of
audio, from which the stage computes each level's upload cost.

Regenerate the table audio-classifier publishes (deterministic: fixed sounds,
model and seed):

    python -m profiling.audio
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from profiling.cli import profile_main, write_table
from profiling.timeliness import timeliness
from services.audio_capture.pcm import load_pcm16
from services.audio_classifier.levels import PROFILE_PATH, AudioProfile, ProfiledAudioLevel
from services.audio_classifier.settings import AudioClassifierConfig
from services.audio_classifier.sound_events import SoundEpisodeChange, SoundEventTracker
from services.audio_classifier.yamnet import PatchScores, YamnetClassifier
from services.media.pcm_chunk import (
    SAMPLE_RATE_HZ,
    FloatAudio,
    Pcm16,
    float_to_pcm16,
    pcm16_to_float,
)

REFERENCE_STRIDE = 1
STRIDES = (1, 2, 4, 8)
# Sound alarms are urgent: two seconds late halves their worth.
LATENCY_HALF_LIFE_S = 2.0
ROUNDS = 16
SEED = 0
GAP_S = (2.0, 4.0)
GAIN_DB = (-12.0, 0.0)
FLOOR_DBFS = (-80.0, -60.0)
FLOOR_SOUND = "Noise.wav"
DEFAULT_AUDIO_DIR = Path(".cache/media/audio")
DEFAULT_MODEL_DIR = Path(".cache/models/yamnet")
REGENERATE = "python -m profiling.audio"


@dataclass(frozen=True)
class Play:
    """One sound placed in the program."""

    round: int
    sound: str
    start_s: float
    end_s: float
    gain_db: float


@dataclass(frozen=True)
class Program:
    samples: Pcm16
    plays: tuple[Play, ...]
    floors_dbfs: tuple[float, ...]  # per round

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE_HZ


def _rms(samples: FloatAudio) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def build_program(sounds: Mapping[str, Pcm16], rounds: int, seed: int) -> Program:
    """`rounds` rounds of every sound (seeded order, gaps and gains) over a noise floor."""
    if rounds < 1:
        raise ValueError("rounds must be >= 1")
    if FLOOR_SOUND not in sounds:
        raise ValueError(f"the noise floor needs {FLOOR_SOUND} among the sounds")
    rng = np.random.default_rng(seed)
    names = sorted(sounds)
    plays: list[Play] = []
    round_starts: list[int] = []
    position = 0
    for round_index in range(rounds):
        round_starts.append(position)
        for pick in rng.permutation(len(names)):
            name = names[pick]
            position += round(rng.uniform(*GAP_S) * SAMPLE_RATE_HZ)
            gain_db = float(rng.uniform(*GAIN_DB))
            end = position + len(sounds[name])
            plays.append(
                Play(
                    round_index,
                    name,
                    position / SAMPLE_RATE_HZ,
                    end / SAMPLE_RATE_HZ,
                    round(gain_db, 2),
                )
            )
            position = end
    # A closing gap so that the last play's events end inside the program.
    total = position + round(GAP_S[1] * SAMPLE_RATE_HZ)
    mix = np.zeros(total, dtype=np.float32)
    noise = pcm16_to_float(sounds[FLOOR_SOUND])
    floors = []
    for start, stop in zip(round_starts, [*round_starts[1:], total], strict=True):
        floor_dbfs = float(rng.uniform(*FLOOR_DBFS))
        floors.append(round(floor_dbfs, 2))
        # Looped from a random point so that no two rounds share a noise phase.
        offset = int(rng.integers(len(noise)))
        looped = np.take(noise, np.arange(offset, offset + stop - start), mode="wrap")
        mix[start:stop] += looped * np.float32(10 ** (floor_dbfs / 20) / _rms(noise))
    for play in plays:
        sound = pcm16_to_float(sounds[play.sound])
        start = round(play.start_s * SAMPLE_RATE_HZ)
        mix[start : start + len(sound)] += sound * np.float32(10 ** (play.gain_db / 20))
    return Program(float_to_pcm16(mix), tuple(plays), tuple(floors))


@dataclass(frozen=True)
class ProfiledSoundEpisode:
    label: str
    known_at: float  # end of the patch that raised `new`
    start: float
    end: float


def track(patches: Sequence[PatchScores], class_names: Sequence[str]) -> list[SoundEpisodeChange]:
    config = AudioClassifierConfig()
    families = [family.family(label) for label, family in config.classes_of_interest.items()]
    tracker = SoundEventTracker(
        class_names, families, update_every_patches=config.update_every_patches
    )
    events: list[SoundEpisodeChange] = []
    for patch in patches:
        events.extend(tracker.observe(patch))
    if patches:
        events.extend(tracker.close_all(patches[-1].index + 1))
    return events


def episodes_of(
    events: Sequence[SoundEpisodeChange], known_at: dict[int, float]
) -> list[ProfiledSoundEpisode]:
    opened: dict[str, SoundEpisodeChange] = {}
    found = []
    for event in events:
        if event.kind == "new":
            opened[event.event_id] = event
        elif event.kind == "end" and event.event_id in opened:
            first = opened.pop(event.event_id)
            known = known_at[first.patch_index]
            found.append(ProfiledSoundEpisode(first.label, known, first.start_s, event.end_s))
    return found


@dataclass(frozen=True)
class Comparison:
    detected: int
    reference: int
    delays: list[float]
    messages: int


def compare(
    reference: list[ProfiledSoundEpisode], level: list[ProfiledSoundEpisode], messages: int
) -> Comparison:
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


def describe(program: Program, rounds: int, seed: int, sounds: int) -> str:
    """What `generated_by` says: the command, then how its program was built."""
    return (
        f"{REGENERATE} --rounds {rounds} --seed {seed}: {rounds} rounds, each playing the"
        f" {sounds} sounds once in a seeded order, {GAP_S[0]:g}-{GAP_S[1]:g} s apart, at"
        f" {GAIN_DB[0]:g}..{GAIN_DB[1]:g} dB, over {FLOOR_SOUND} looped at"
        f" {FLOOR_DBFS[0]:g}..{FLOOR_DBFS[1]:g} dBFS ({len(program.plays)} plays)"
    )


def profile_audio(
    classifier: YamnetClassifier,
    sounds: Sequence[Path],
    rounds: int = ROUNDS,
    seed: int = SEED,
) -> AudioProfile:
    program = build_program({path.name: load_pcm16(path) for path in sounds}, rounds, seed)
    seconds = program.seconds
    patches = classifier.classify(pcm16_to_float(program.samples), top_k=1)
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
        recall, delay, utility = timeliness(detected, wanted, delays, LATENCY_HALF_LIFE_S)
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
        generated_by=describe(program, rounds, seed, len(sounds)),
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
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="plays of each sound")
    parser.add_argument("--seed", type=int, default=SEED, help="order, gaps, gains, floor")


def profile_command(args: argparse.Namespace) -> int:
    """What `edgegw profile audio` runs: write the table, print a summary."""
    sounds = sorted(args.audio_dir.glob("*.wav"))
    if not any(path.name == FLOOR_SOUND for path in sounds):
        print(f"no {FLOOR_SOUND} in {args.audio_dir} (run `make assets`)")
        return 2
    began = time.monotonic()
    classifier = YamnetClassifier.load(args.model_dir, args.threads)
    profile = profile_audio(classifier, sounds, args.rounds, args.seed)
    summary = [f"{profile.reference_events} reference events in {profile.program_seconds:g} s"]
    summary += [
        f"stride {level.patch_stride}: utility {level.utility:.3f} recall {level.recall:.3f}"
        f" delay {level.mean_delay_s:.2f}s events/s {level.event_messages_per_s:.4f}"
        for level in profile.levels
    ]
    return write_table(args.out, profile, summary, f" in {time.monotonic() - began:.1f} s")


def main(argv: list[str] | None = None) -> None:
    profile_main(__doc__, add_arguments, profile_command, argv)


if __name__ == "__main__":
    main()
