"""What every stage's `__main__` does: settings, logging, run to the end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from services.common.logs import configure_logging
from services.common.settings import StageSettings, load_settings

SettingsT = TypeVar("SettingsT", bound=StageSettings)


def run_stage_main(
    stage: str,
    settings_model: type[SettingsT],
    run: Callable[[SettingsT], Coroutine[Any, Any, None]],
) -> None:
    """Read settings (exit 2 naming a bad one), log as JSON, run until stopped."""
    settings = load_settings(settings_model)
    configure_logging(stage, settings.log_level)
    asyncio.run(run(settings))
