"""The Dockerfile and .dockerignore, read as text (scripts/check-docker.sh builds and runs the image in CI), and\ncompose.sharded.yaml, read as Docker Compose reads it."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import discord
import yaml

from bot.config import OPTIONAL, is_postgres_url, load_settings, sqlite_path
from bot.config import REQUIRED as REQUIRED_NAMES

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


# -- compose.sharded.yaml: two bot processes, one PostgreSQL, one Discord REST proxy -----------------


def sharded_compose() -> dict[str, Any]:
    """compose.sharded.yaml with ``${NAME...}`` filled in as Compose would from a ``.env`` file."""
    text = (ROOT / "compose.sharded.yaml").read_text()
    filled = re.sub(r"\$\{(\w+)(?::?[-?][^}]*)?\}", lambda m: COMPOSE_ENV[m.group(1)], text)
    loaded: dict[str, Any] = yaml.safe_load(filled)
    return loaded


COMPOSE_ENV = {"POSTGRES_PASSWORD": "s3cretpassword"}


def bot_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose["services"].items() if s.get("image") == "imagine-bot"}


def test_sharded_compose_runs_every_shard_once_on_one_database() -> None:
    compose = sharded_compose()
    bots = bot_services(compose)
    assert set(compose["services"]) == {"postgres", "discord-proxy", *bots} and len(bots) >= 2
    counts = {int(bot["environment"]["SHARD_COUNT"]) for bot in bots.values()}
    assert len(counts) == 1, "every process must use the same SHARD_COUNT"
    (count,) = counts
    ids = [int(i) for bot in bots.values() for i in str(bot["environment"]["SHARD_IDS"]).split(",")]
    assert sorted(ids) == list(range(count)), "each shard must be run by exactly one process"
    urls = {bot["environment"]["DATABASE_URL"] for bot in bots.values()}
    assert len(urls) == 1, "every process must use the same database"


def test_sharded_compose_bots_read_only_real_settings_and_load() -> None:
    """Every variable set for a bot is one the bot reads, and each bot's settings load."""
    known = {name for name, _, _ in OPTIONAL} | set(REQUIRED_NAMES)
    for name, bot in bot_services(sharded_compose()).items():
        env = {key: str(value) for key, value in bot["environment"].items()}
        assert set(env) <= known, (name, set(env) - known)
        settings = load_settings({**REQUIRED, **env}, env_file=ROOT / "absent.env")
        assert settings.sharded and settings.metrics_port is not None and settings.metrics_host == "0.0.0.0"
        assert is_postgres_url(settings.database_url)
        assert bot["env_file"] == ".env" and bot["build"] == "."


def test_sharded_compose_database_is_the_postgres_service() -> None:
    compose = sharded_compose()
    postgres = compose["services"]["postgres"]
    (url,) = {bot["environment"]["DATABASE_URL"] for bot in bot_services(compose).values()}
    parsed = urlparse(url)
    assert parsed.scheme == "postgresql" and parsed.hostname == "postgres" and parsed.port == 5432
    assert parsed.username == postgres["environment"]["POSTGRES_USER"]
    assert parsed.password == postgres["environment"]["POSTGRES_PASSWORD"] == COMPOSE_ENV["POSTGRES_PASSWORD"]
    assert parsed.path == "/" + postgres["environment"]["POSTGRES_DB"]
    # Its data on a named volume, and a healthcheck the bots wait for.
    (volume,) = postgres["volumes"]
    assert volume.split(":")[0] in compose["volumes"]
    assert "pg_isready" in postgres["healthcheck"]["test"]
    for bot in bot_services(compose).values():
        assert bot["depends_on"]["postgres"] == {"condition": "service_healthy"}
        assert "discord-proxy" in bot["depends_on"]


def test_sharded_compose_sends_discord_rest_through_the_proxy_in_the_form_discord_py_uses() -> None:
    """DISCORD_API_BASE_URL replaces discord.py's whole REST base (scheme, host and /api/v10), so it
    must be the proxy service on its port with Discord's own path."""
    compose = sharded_compose()
    proxy = compose["services"]["discord-proxy"]
    assert proxy["image"].startswith("ghcr.io/germanoeich/nirn-proxy:")
    for bot in bot_services(compose).values():
        base = urlparse(bot["environment"]["DISCORD_API_BASE_URL"])
        assert (base.scheme, base.hostname, base.port) == ("http", "discord-proxy", int(proxy["environment"]["PORT"]))
        assert base.path == urlparse(discord.http.Route.BASE).path == "/api/v10"
        assert "DISCORD_GATEWAY_URL" not in bot["environment"]  # the gateway goes to Discord itself
