"""Logging set-up: one stream handler, and a filter that blanks every secret value."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

# Interaction tokens travel inside webhook and callback URLs; they are credentials for 15 minutes.
_TOKEN_IN_URL = re.compile(r"(/(?:webhooks|interactions)/\d+/)[A-Za-z0-9_\-.]{20,}")


class RedactSecrets(logging.Filter):
    """Replaces secret values (API key, bot token, interaction tokens) wherever they would appear,
    tracebacks included."""

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
        return True


def setup_logging(level: str, secrets: Iterable[str]) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # These log request URLs or SQL parameters at DEBUG, which carry interaction tokens and bodies.
    for noisy in ("discord.http", "discord.gateway", "discord.webhook", "aiosqlite"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, root.level))
