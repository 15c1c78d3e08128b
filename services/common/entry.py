"""What every stage's `__main__` does: settings, logging, run to the end.

Exit codes: 0 after a requested stop, 1 when a worker failed (the stage still
stopped in order, see `stage_runner`), 2 for bad settings. A library call
blocked in a worker thread (an OpenCV open of a dead RTSP URL, say) cannot be
cancelled; once the stage has stopped, the process exits without waiting for
such a thread, so SIGTERM always ends it.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Final, TypeVar

from services.common.logs import configure_logging
from services.common.settings import StageSettings, load_settings
from services.common.stage_runner import StageFailed

SettingsT = TypeVar("SettingsT", bound=StageSettings)
log = logging.getLogger(__name__)

THREAD_JOIN_S = 1.0  # what a worker thread gets to finish once the stage stopped

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
    run_until_stopped(run(settings))


def run_until_stopped(main: Coroutine[Any, Any, None]) -> None:
    """Run a stage's whole life; exit 1 if a worker failed (see the docstring)."""
    code = 0
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main)
    except StageFailed as failure:
        log.error("stage failed", extra={"reason": str(failure)})
        code = 1
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()  # does not wait for the executor's threads
    _exit(code)


def _exit(code: int) -> None:
    stuck = [
        thread
        for thread in threading.enumerate()
        if thread is not threading.main_thread() and not thread.daemon
    ]
    for thread in stuck:
        thread.join(THREAD_JOIN_S / max(1, len(stuck)))
    if any(thread.is_alive() for thread in stuck):
        log.warning("worker threads still blocked at exit: not waiting for them")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    if code:
        raise SystemExit(code)
