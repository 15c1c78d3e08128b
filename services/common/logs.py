"""Structured JSON logs on stderr: one object a line, with the stage name."""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson

_STANDARD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    def __init__(self, stage: str) -> None:
        super().__init__()
        self._stage = stage

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "stage": self._stage,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        # Extra fields (topic=..., message_id=...) passed with `extra=`.
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD_FIELDS})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(stage: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(stage))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # paho logs every packet at DEBUG; keep it at WARNING unless asked.
    logging.getLogger("mqtt").setLevel(max(logging.WARNING, logging.getLevelName(level)))
