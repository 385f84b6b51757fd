"""Log output: secrets never reach it, text or JSON lines carry a job's context, voice warnings are dropped."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

import discord
import pytest

from bot.log import DropVoiceWarnings, RedactSecrets, setup_logging


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


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """setup_logging changes process-wide state; put it back after each test."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    voice = logging.getLogger("discord.client")
    saved_filters = voice.filters[:]
    noisy = {name: logging.getLogger(name).level for name in ("discord.http", "discord.gateway", "discord.webhook")}
    try:
        yield
    finally:
        root.handlers[:], root.level = saved_handlers, saved_level
        voice.filters[:] = saved_filters
        for name, level in noisy.items():
            logging.getLogger(name).setLevel(level)


CONTEXT = {"job_id": 3, "request_id": "abc", "guild_id": 1}


def test_text_lines_show_the_job_context(restore_logging: None) -> None:
    stream = io.StringIO()
    setup_logging("INFO", [], stream=stream)
    log = logging.getLogger("test.text")
    log.info("submitted", extra=CONTEXT)
    log.info("partial", extra={"request_id": "r-9"})
    log.info("plain")
    first, second, third = stream.getvalue().splitlines()
    assert first.endswith("INFO    test.text: submitted job=3 request=abc guild=1")
    assert second.endswith("test.text: partial request=r-9")
    assert third.endswith("test.text: plain")


def test_text_is_the_default_format(restore_logging: None) -> None:
    stream = io.StringIO()
    setup_logging("INFO", ["secret-value"], stream=stream)
    logging.getLogger("test.default").warning("not json")
    line = stream.getvalue().strip()
    assert line.endswith("WARNING test.default: not json")
    assert not line.startswith("{")


def test_json_lines(restore_logging: None) -> None:
    stream = io.StringIO()
    setup_logging("DEBUG", [], "json", stream=stream)
    log = logging.getLogger("test.json")
    log.info("submitted %s", "job", extra=CONTEXT)
    log.debug("no context")
    try:
        raise ValueError("bad value")
    except ValueError:
        log.exception("failed", extra={"job_id": 4})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    first, second, third = (json.loads(line) for line in lines)
    assert first == {
        "time": first["time"],
        "level": "INFO",
        "logger": "test.json",
        "message": "submitted job",
        "job_id": 3,
        "request_id": "abc",
        "guild_id": 1,
    }
    assert datetime.fromisoformat(first["time"]).utcoffset() == timedelta(0)
    assert set(second) == {"time", "level", "logger", "message"} and second["level"] == "DEBUG"
    assert third["job_id"] == 4 and third["level"] == "ERROR"
    assert third["exception"].startswith("Traceback") and "ValueError: bad value" in third["exception"]


def test_json_lines_are_redacted(restore_logging: None) -> None:
    stream = io.StringIO()
    setup_logging("INFO", ["api-key-123", 'tok"en\\456'], "json", stream=stream)
    log = logging.getLogger("test.json.redaction")
    token = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDpzZWNyZXRzZWNyZXRzZWNyZXQ"
    log.info("key %s, token %s", "api-key-123", 'tok"en\\456', extra={"request_id": "api-key-123"})
    try:
        raise RuntimeError(f"POST /interactions/1/{token}/callback with api-key-123")
    except RuntimeError:
        log.exception("boom")
    output = stream.getvalue()
    assert "api-key-123" not in output and token not in output and "456" not in output
    first, second = (json.loads(line) for line in output.splitlines())
    assert first["message"] == "key [redacted], token [redacted]"
    assert first["request_id"] == "[redacted]"
    assert "/interactions/1/[redacted]/callback with [redacted]" in second["exception"]


def test_unknown_format_is_refused(restore_logging: None) -> None:
    with pytest.raises(ValueError, match="xml"):
        setup_logging("INFO", [], "xml", stream=io.StringIO())


def test_discord_voice_warnings_are_silenced(restore_logging: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """discord.py's own 'voice will NOT be supported' warnings are dropped; its other warnings are not."""
    stream = io.StringIO()
    setup_logging("INFO", [], stream=stream)
    setup_logging("INFO", [], stream=stream)  # set up twice: still one filter, still works
    assert sum(isinstance(f, DropVoiceWarnings) for f in logging.getLogger("discord.client").filters) == 1
    monkeypatch.setattr(discord.VoiceClient, "warn_nacl", True)
    monkeypatch.setattr(discord.VoiceClient, "warn_dave", True)
    discord.Client(intents=discord.Intents.none())  # warns at construction when voice libraries are missing
    logging.getLogger("discord.client").warning("something else went wrong")
    output = stream.getvalue()
    assert "voice" not in output
    assert "discord.client: something else went wrong" in output
    assert logging.getLogger("discord").getEffectiveLevel() <= logging.WARNING
