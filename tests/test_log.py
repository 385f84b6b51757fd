"""Secrets never reach the log output, whatever logs them."""

from __future__ import annotations

import io
import logging

from bot.log import RedactSecrets


def test_secrets_and_interaction_tokens_are_redacted() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets(["api-key-123", "bot-token-456"]))
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        token = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDpzZWNyZXRzZWNyZXRzZWNyZXQ"
        logger.info("key %s and %s", "api-key-123", "bot-token-456")
        logger.debug("PATCH https://discord.com/api/v10/webhooks/42/%s/messages/@original", token)
        try:
            raise RuntimeError("failed with api-key-123")
        except RuntimeError:
            logger.exception("boom at /interactions/99/%s/callback", token)
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert "api-key-123" not in output and "bot-token-456" not in output and token not in output
    assert output.count("[redacted]") >= 5
    assert "/webhooks/42/[redacted]/messages" in output
