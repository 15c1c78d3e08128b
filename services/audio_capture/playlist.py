"""A playlist of sound files as one continuous PCM16 stream cut into chunks.

The files (each followed by optional silence) are joined into one program;
a looping replay wraps around its end mid-chunk, so every chunk is full and
the stream has no seam a classifier could hear as a click of silence.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from services.audio_capture.pcm import samples_per_chunk
from services.media.pcm_chunk import SAMPLE_RATE_HZ, Pcm16


def build_program(sounds: Sequence[Pcm16], silence_between_s: float = 0.0) -> Pcm16:
    """The sounds in order, each followed by `silence_between_s` of zeros."""
    if not sounds:
        raise ValueError("a playlist needs at least one sound")
    gap = np.zeros(round(silence_between_s * SAMPLE_RATE_HZ), dtype=np.int16)
    parts: list[Pcm16] = []
    for sound in sounds:
        parts.extend((sound.astype(np.int16, copy=False), gap))
    program: Pcm16 = np.concatenate(parts)
    if len(program) == 0:
        raise ValueError("the playlist holds no sample")
    return program


def program_chunks(program: Pcm16, chunk_seconds: float, *, loop: bool) -> Iterator[Pcm16]:
    """Chunks of exactly `chunk_seconds`; endless when `loop`, else the last is zero-padded."""
    size = samples_per_chunk(chunk_seconds)
    if not loop:
        for start in range(0, len(program), size):
            chunk = program[start : start + size]
            if len(chunk) < size:
                chunk = np.concatenate([chunk, np.zeros(size - len(chunk), dtype=np.int16)])
            yield chunk
        return
    position = 0
    while True:
        # `take(..., mode="wrap")` reads across the end of the program into
        # its start, so a program shorter than a chunk still fills it.
        indexes = np.arange(position, position + size)
        yield np.take(program, indexes, mode="wrap")
        position = (position + size) % len(program)
