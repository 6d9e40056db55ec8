"""The process's log: text lines or JSON lines ([logging] format), never personal data.

What the bot's own code logs names updates, rows and reference ids, never what a parent
typed. Every record made while an update is handled carries it as `update`
("telegram:1234"), and the safety net's reference id (the one the parent is shown after
an error) as `ref`. The libraries that would log SQL parameters, request bodies or
addresses with secrets at DEBUG (aiosqlite, SQLAlchemy's engine, urllib3, vk_api) are
held at WARNING whatever the level. As a last guard, anything shaped like a Russian
phone number or a СНИЛС that still reaches a record is replaced with "[hidden]".
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime

# "channel:update id" of the update being handled in this task, for every record.
current_update: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "navbot_update", default=None
)

# Loggers that print SQL parameters, request payloads or URLs with keys below WARNING.
QUIET = ("aiosqlite", "sqlalchemy.engine", "sqlalchemy.pool", "urllib3", "vk_api", "asyncio")
# Loggers that say a line per update or request at INFO.
CHATTY = ("aiogram.event", "aiohttp.access", "apscheduler.scheduler")

_PHONE = re.compile(r"(?<![\w+])(?:\+7|8|7)[\s\-()]*(?:\d[\s\-()]*){9}\d(?!\d)")
_SNILS = re.compile(r"(?<!\d)\d{3}[\s\-]?\d{3}[\s\-]?\d{3}[\s\-]?\d{2}(?!\d)")
HIDDEN = "[hidden]"
# The record's fields shown after the message: the update being handled, the reference id.
TAGS = ("update", "ref")


def redact(text: str) -> str:
    if not any(char.isdigit() for char in text):
        return text
    return _SNILS.sub(HIDDEN, _PHONE.sub(HIDDEN, text))


class _Context(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "update", None) is None:
            record.update = current_update.get()
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        tags = [
            f"{key}={value}" for key in ("update", "ref") if (value := getattr(record, key, None))
        ]
        if tags:
            first, newline, rest = line.partition("\n")
            line = f"{first} [{' '.join(tags)}]{newline}{rest}"
        return redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, update, ref, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key in TAGS:
            value = getattr(record, key, None)
            if value:
                entry[key] = str(value)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def setup(level: int, fmt: str = "text", *, sql_echo: bool = False, stream=None) -> None:
    """Log to `stream` (stderr) at `level` in `fmt` ("text" or "json")."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_Context())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    if sql_echo:
        # [database] echo: the statements, with their parameters hidden by the engine.
        logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    for name in CHATTY:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
