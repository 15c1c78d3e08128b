"""What every stage's `__main__` does: settings, logging, run to the end.

Exit codes: 0 after a requested stop, 1 when a worker failed (the stage still
stopped in order, see `stage_runner`), 2 for bad settings. A library call
blocked in a worker thread (an OpenCV open of a dead RTSP URL, say) cannot be
cancelled; once the stage has stopped, the process exits without waiting for
such a thread, so SIGTERM always ends it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from services.common.logs import configure_logging
from services.common.settings import StageSettings, load_settings
from services.common.stage_runner import StageFailed

SettingsT = TypeVar("SettingsT", bound=StageSettings)
log = logging.getLogger(__name__)

THREAD_JOIN_S = 1.0  # what a worker thread gets to finish once the stage stopped


def run_stage_main(
    stage: str,
    settings_model: type[SettingsT],
    run: Callable[[SettingsT], Coroutine[Any, Any, None]],
) -> None:
    """Read settings (exit 2 naming a bad one), log as JSON, run until stopped."""
    settings = load_settings(settings_model)
    configure_logging(stage, settings.log_level)
    code = 0
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(run(settings))
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
