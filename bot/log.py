"""Logging set-up: one stream handler, readable lines or JSON lines, and a filter that blanks every secret.

A record may carry a job's context as extras, ``extra={"job_id": 3, "request_id": "abc", "guild_id": 1}``;
both formats show it (``job=3 request=abc guild=1`` at the end of a text line, keys of the JSON object).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

# Interaction tokens travel inside webhook and callback URLs; they are credentials for 15 minutes.
_TOKEN_IN_URL = re.compile(r"(/(?:webhooks|interactions)/\d+/)[A-Za-z0-9_\-.]{20,}")

# Extras shown by both formats: (record attribute, short name in a text line).
CONTEXT_FIELDS = (("job_id", "job"), ("request_id", "request"), ("guild_id", "guild"))
LOG_FORMATS = ("text", "json")


class RedactSecrets(logging.Filter):
    """Replaces secret values (API key, bot token, interaction tokens) wherever they would appear,
    tracebacks and context extras included."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = tuple(s for s in secrets if s)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return _TOKEN_IN_URL.sub(r"\1[redacted]", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for attr, _ in CONTEXT_FIELDS:
            value = getattr(record, attr, None)
            if isinstance(value, str):
                setattr(record, attr, self.redact(value))
        return True


class DropVoiceWarnings(logging.Filter):
    """Drops discord.py's start-up warnings that voice support is missing (PyNaCl, davey): the bot has
    no voice features, so they would only alarm an operator. Everything else discord.py says passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.name.startswith("discord")
            and record.levelno == logging.WARNING
            and "voice will NOT be supported" in record.getMessage()
        )


def _context(record: logging.LogRecord) -> list[tuple[str, str, Any]]:
    """``(attribute, short name, value)`` for each context extra the record carries."""
    found = []
    for attr, short in CONTEXT_FIELDS:
        value = getattr(record, attr, None)
        if value is not None:
            found.append((attr, short, value))
    return found


class TextFormatter(logging.Formatter):
    """``time level logger: message job=3 request=abc guild=1``, then the traceback if any."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        context = " ".join(f"{short}={value}" for _, short, value in _context(record))
        return f"{line} {context}" if context else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the context extras present,
    and ``exception`` / ``stack`` texts when the record has them."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for attr, _, value in _context(record):
            entry[attr] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def make_formatter(fmt: str) -> logging.Formatter:
    """The formatter for ``LOG_FORMAT`` (``text`` or ``json``)."""
    if fmt == "text":
        return TextFormatter()
    if fmt == "json":
        return JsonFormatter()
    raise ValueError(f"unknown log format {fmt!r}, expected one of {', '.join(LOG_FORMATS)}")


def setup_logging(level: str, secrets: Iterable[str], fmt: str = "text", *, stream: TextIO | None = None) -> None:
    """Send every log record to ``stream`` (standard error) in format ``fmt``, secrets blanked."""
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(make_formatter(fmt))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # These log request URLs or SQL parameters at DEBUG, which carry interaction tokens and bodies.
    for noisy in ("discord.http", "discord.gateway", "discord.webhook", "aiosqlite"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, root.level))
    # A filter on the logger that emits them, so no handler (ours or another) ever receives them.
    voice_logger = logging.getLogger("discord.client")
    for old in [f for f in voice_logger.filters if isinstance(f, DropVoiceWarnings)]:
        voice_logger.removeFilter(old)
    voice_logger.addFilter(DropVoiceWarnings())
