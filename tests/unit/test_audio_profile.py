"""The audio QoS profile: its measurement program, and the table it wrote."""

from __future__ import annotations

import numpy as np
import pytest

from profiling.audio import (
    FLOOR_DBFS,
    FLOOR_SOUND,
    GAIN_DB,
    GAP_S,
    build_program,
    profile_audio,
)
from services.audio_classifier.frontend import PATCH_HOP_SECONDS
from services.audio_classifier.levels import load_profile
from services.media.pcm_chunk import SAMPLE_RATE_HZ, Pcm16, float_to_pcm16, pcm16_to_float
from tests.harness.assets import AUDIO_DIR, load_yamnet, require


def _tone(seconds: float, dbfs: float) -> Pcm16:
    t = np.arange(round(seconds * SAMPLE_RATE_HZ)) / SAMPLE_RATE_HZ
    # A sine's RMS is its amplitude / sqrt(2).
    amplitude = 10 ** (dbfs / 20) * np.sqrt(2)
    return float_to_pcm16((amplitude * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))


def _sounds() -> dict[str, Pcm16]:
    noise = np.random.default_rng(7).normal(0, 0.03, SAMPLE_RATE_HZ).astype(np.float32)
    return {
        FLOOR_SOUND: float_to_pcm16(noise),
        "beep.wav": _tone(1.0, -20.0),
        "long.wav": _tone(2.5, -10.0),
    }


def _dbfs(samples: Pcm16) -> float:
    floats = pcm16_to_float(samples).astype(np.float64)
    return float(20 * np.log10(np.sqrt(np.mean(floats**2))))


def test_each_round_plays_every_sound_once_in_order_without_overlap() -> None:
    program = build_program(_sounds(), rounds=5, seed=3)
    assert len(program.plays) == 15
    for round_index in range(5):
        names = [p.sound for p in program.plays if p.round == round_index]
        assert sorted(names) == sorted(_sounds())
    for before, after in zip(program.plays, program.plays[1:], strict=False):
        assert GAP_S[0] - 1e-3 <= after.start_s - before.end_s <= GAP_S[1] + 1e-3
    assert all(GAIN_DB[0] <= p.gain_db <= GAIN_DB[1] for p in program.plays)
    assert program.seconds >= program.plays[-1].end_s + GAP_S[1] - 1e-3


def test_the_same_seed_builds_the_same_program_and_another_does_not() -> None:
    first = build_program(_sounds(), rounds=3, seed=11)
    again = build_program(_sounds(), rounds=3, seed=11)
    other = build_program(_sounds(), rounds=3, seed=12)
    assert np.array_equal(first.samples, again.samples) and first.plays == again.plays
    assert first.plays != other.plays


def test_sounds_fall_all_over_the_patch_hop() -> None:
    program = build_program(_sounds(), rounds=8, seed=0)
    phases = {int((p.start_s % PATCH_HOP_SECONDS) / PATCH_HOP_SECONDS * 4) for p in program.plays}
    assert phases == {0, 1, 2, 3}


def test_gaps_hold_the_noise_floor_and_sounds_their_gain() -> None:
    program = build_program(_sounds(), rounds=4, seed=5)
    for play in program.plays:
        floor = program.floors_dbfs[play.round]
        assert FLOOR_DBFS[0] <= floor <= FLOOR_DBFS[1]
        # The second before a sound: floor only, never digital silence.
        start = round(play.start_s * SAMPLE_RATE_HZ)
        assert _dbfs(program.samples[start - SAMPLE_RATE_HZ : start]) == pytest.approx(floor, abs=1)
        if play.sound == "long.wav":
            stop = round(play.end_s * SAMPLE_RATE_HZ)
            heard = _dbfs(program.samples[start:stop])
            assert heard == pytest.approx(-10.0 + play.gain_db, abs=0.3)


def test_the_floor_needs_its_noise() -> None:
    sounds = _sounds()
    del sounds[FLOOR_SOUND]
    with pytest.raises(ValueError, match=FLOOR_SOUND):
        build_program(sounds, rounds=1, seed=0)
    with pytest.raises(ValueError, match="rounds"):
        build_program(_sounds(), rounds=0, seed=0)


def test_the_committed_table_rests_on_many_reference_events() -> None:
    profile = load_profile()
    assert profile.reference_events >= 15
    assert "--rounds" in profile.generated_by and "--seed" in profile.generated_by
    utilities = [level.utility for level in profile.levels]
    assert utilities[0] == 1.0 and utilities == sorted(utilities, reverse=True)


def test_the_profile_on_real_sounds_is_deterministic() -> None:
    require(AUDIO_DIR / FLOOR_SOUND)
    classifier = load_yamnet()
    sounds = sorted(AUDIO_DIR.glob("*.wav"))
    profile = profile_audio(classifier, sounds, rounds=2, seed=0)
    assert profile.levels[0].utility == 1.0 and profile.levels[0].recall == 1.0
    assert all(0 <= level.utility <= 1 for level in profile.levels)
    assert profile_audio(classifier, sounds, rounds=2, seed=0) == profile
