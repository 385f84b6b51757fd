"""The Dockerfile and .dockerignore, read as text (scripts/check-docker.sh builds and runs the image in CI)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from bot.config import load_settings, sqlite_path

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = {"DISCORD_TOKEN": "discord-secret-token", "ODIROUTER_API_KEY": "odi-secret-key"}


def final_stage() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of the Dockerfile's last stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def arguments(keyword: str) -> list[str]:
    return [rest for word, rest in final_stage() if word == keyword]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for rest in arguments("ENV"):
        for pair in shlex.split(rest):
            name, _, value = pair.partition("=")
            env[name] = value
    return env


def test_image_settings_are_valid() -> None:
    """The image's own settings load: the database on the /data volume, the listener open to other containers."""
    env = image_env()
    settings = load_settings({**REQUIRED, **env}, env_file=ROOT / "absent.env")
    assert sqlite_path(settings.database_url) == "/data/bot.sqlite3"
    assert settings.metrics_port is not None and settings.metrics_host == "0.0.0.0"
    assert env["PATH"].startswith("/opt/venv/bin:")


def test_image_runs_the_bot_as_an_unprivileged_user() -> None:
    (user,) = arguments("USER")
    assert user.split(":")[0] not in ("", "0", "root")
    assert [json.loads(cmd) for cmd in arguments("CMD")] == [["python", "-m", "bot"]]
    assert arguments("ENTRYPOINT") == []
    assert arguments("STOPSIGNAL") == ["SIGTERM"]
    assert any("/data" in json.loads(volume) for volume in arguments("VOLUME"))


def test_healthcheck_asks_the_bots_healthz() -> None:
    (healthcheck,) = arguments("HEALTHCHECK")
    assert "CMD" in healthcheck and "/healthz" in healthcheck
    assert "127.0.0.1" in healthcheck and "METRICS_PORT" in healthcheck
    assert "curl" not in healthcheck and "wget" not in healthcheck  # neither is in a slim image


def test_dockerignore_keeps_out_tests_environments_and_secrets() -> None:
    ignored = {
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and line[0] != "#"
    }
    assert {".git", ".env", ".venv", "tests", "**/__pycache__", ".mypy_cache", ".pytest_cache"} <= ignored
    assert not any(line.startswith("!") for line in ignored)
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    sources = {source for line in copied for source in line.split()}
    assert sources == {"pyproject.toml", "README.md", "bot", "cogs"}
    assert not sources & ignored
