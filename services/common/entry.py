"""What every stage's `__main__` does: settings, logging, run to the end."""

from __future__ import annotations

import asyncio
import ctypes
from collections.abc import Callable, Coroutine
from typing import Any, Final, TypeVar

from services.common.logs import configure_logging
from services.common.settings import StageSettings, load_settings

SettingsT = TypeVar("SettingsT", bound=StageSettings)

# glibc's mallopt(M_MMAP_THRESHOLD): a fixed threshold also turns off the
# dynamic one, which after the first freed frame rises to the frame's size and
# then keeps every frame, PCM buffer and tensor of that size in the heap, where
# fragmentation holds on to it. Fixed at glibc's default, those come from mmap
# and go back to the OS when freed: idle RSS -3 MB camera-capture, -8 MB
# object-detector, -3 MB audio-classifier (memory bench).
_M_MMAP_THRESHOLD: Final = -3
_MMAP_THRESHOLD_BYTES: Final = 128 * 1024


def return_large_buffers_to_the_os() -> None:
    """Fix glibc's mmap threshold; a no-op on a C library without mallopt."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)


def run_stage_main(
    stage: str,
    settings_model: type[SettingsT],
    run: Callable[[SettingsT], Coroutine[Any, Any, None]],
) -> None:
    """Read settings (exit 2 naming a bad one), log as JSON, run until stopped."""
    return_large_buffers_to_the_os()
    settings = load_settings(settings_model)
    configure_logging(stage, settings.log_level)
    asyncio.run(run(settings))
