"""Settings, read once at start-up from the environment and an optional ``.env`` file.

Every problem is collected and reported together (:class:`ConfigError`), so an operator fixes
their configuration in one go. Secret values never appear in ``repr`` or in error messages.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

DEFAULT_BASE_URL = "https://odirouter.ai/model"
DEFAULT_MODEL = "nano_banana_pro"
DEFAULT_DATABASE_URL = "sqlite:///data/bot.sqlite3"
SIZE_TIERS = ("1K", "2K", "4K")
SIZE_FIELDS = ("resolution", "image_size")
DEFAULT_POLL_MIN = 1.0
DEFAULT_POLL_MAX = 10.0
DEFAULT_READS_PER_SECOND = 250.0
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")
DEFAULT_METRICS_HOST = "127.0.0.1"
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


class ConfigError(Exception):
    """One or more settings are missing or invalid; ``problems`` lists each of them."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"The bot cannot start, its configuration has {len(problems)} problem(s):\n{lines}")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the bot can be configured with. Build it with :func:`load_settings`."""

    discord_token: str = field(repr=False)
    odirouter_api_key: str = field(repr=False)
    odirouter_base_url: str = DEFAULT_BASE_URL
    odirouter_model: str = DEFAULT_MODEL
    database_url: str = field(default=DEFAULT_DATABASE_URL, repr=False)  # may hold a password
    discord_api_base_url: str | None = None
    discord_gateway_url: str | None = None
    dev_guild_id: int | None = None
    log_level: str = "INFO"
    log_format: str = "text"
    metrics_port: int | None = None
    metrics_host: str = DEFAULT_METRICS_HOST
    size_fields: tuple[str, ...] = SIZE_FIELDS
    default_resolution: str = "1K"
    max_reference_bytes: int = 7_000_000
    max_result_bytes: int = 80 * 1024 * 1024
    job_timeout: float = 600.0
    poll_min_interval: float = DEFAULT_POLL_MIN
    poll_max_interval: float = DEFAULT_POLL_MAX
    upstream_concurrency: int = 8
    upstream_reads_per_second: float = DEFAULT_READS_PER_SECOND
    status_edit_interval: float = 1.0
    queue_position_interval: float = 30.0
    default_4k_weight: int = 2
    sweep_interval: float = 30.0
    # Sharding (unset: one process, one unsharded gateway connection). See :meth:`shards`.
    shard_count: int | None = None
    shard_ids: tuple[int, ...] | None = None

    @property
    def sharded(self) -> bool:
        """Whether the bot connects as shards (``SHARD_COUNT`` is set, even to 1)."""
        return self.shard_count is not None

    @property
    def shards(self) -> tuple[int, tuple[int, ...]]:
        """The shard count and the shards this process runs: ``SHARD_IDS``, else all of them
        (unsharded: one shard, shard 0, which has every server)."""
        count = self.shard_count or 1
        return count, self.shard_ids if self.shard_ids is not None else tuple(range(count))

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never be written anywhere (logs are filtered for them)."""
        return tuple(
            s for s in (self.discord_token, self.odirouter_api_key, _database_password(self.database_url)) if s
        )


# (environment name, Settings field, parser) for the optional settings.
def _parse_url(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https", "ws", "wss") or not parsed.netloc:
        raise ValueError("must be an absolute http(s):// or ws(s):// URL")
    return value.rstrip("/") if parsed.scheme.startswith("http") else value


def _parse_positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError("must be a positive whole number")
    return number


def _parse_positive_float(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise ValueError("must be a positive number")
    return number


def _parse_snowflake(value: str) -> int:
    if not value.isdigit():
        raise ValueError("must be a numeric Discord server id")
    return int(value)


def _parse_level(value: str) -> str:
    level = value.upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return level


def _parse_log_format(value: str) -> str:
    fmt = value.strip().lower()
    if fmt not in LOG_FORMATS:
        raise ValueError(f"must be one of {', '.join(LOG_FORMATS)}")
    return fmt


def _parse_port(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 65535:
        raise ValueError("must be a port number from 1 to 65535")
    return int(value)


def _parse_host(value: str) -> str:
    host = value.strip()
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        if _HOSTNAME.fullmatch(host):
            return host
    raise ValueError("must be an address to listen on, such as 127.0.0.1, 0.0.0.0 or ::")


def _parse_size_fields(value: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    if not names or any(name not in SIZE_FIELDS for name in names):
        raise ValueError(f"must be a comma-separated subset of {', '.join(SIZE_FIELDS)}")
    return names


def _parse_tier(value: str) -> str:
    tier = value.strip().upper()
    if tier not in SIZE_TIERS:
        raise ValueError(f"must be one of {', '.join(SIZE_TIERS)}")
    return tier


def _parse_shard_ids(value: str) -> tuple[int, ...]:
    parts = [part.strip() for part in value.split(",")]
    if any(not (part.isascii() and part.isdigit()) for part in parts):
        raise ValueError("must be a comma-separated list of shard numbers such as 0,1 (each 0 or more)")
    ids = tuple(int(part) for part in parts)
    if len(set(ids)) != len(ids):
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"must not name a shard twice (repeated: {', '.join(map(str, repeated))})")
    return ids


def _parse_database_url(value: str) -> str:
    if value.startswith("sqlite:///"):
        return value
    if is_postgres_url(value):
        return value
    raise ValueError(
        "must look like sqlite:///path/to/file.sqlite3 (SQLite)"
        " or postgresql://user:password@host:5432/database (PostgreSQL)"
    )


OPTIONAL: tuple[tuple[str, str, object], ...] = (
    ("ODIROUTER_BASE_URL", "odirouter_base_url", _parse_url),
    ("ODIROUTER_MODEL", "odirouter_model", str.strip),
    ("DATABASE_URL", "database_url", _parse_database_url),
    ("DISCORD_API_BASE_URL", "discord_api_base_url", _parse_url),
    ("DISCORD_GATEWAY_URL", "discord_gateway_url", _parse_url),
    ("DEV_GUILD_ID", "dev_guild_id", _parse_snowflake),
    ("LOG_LEVEL", "log_level", _parse_level),
    ("LOG_FORMAT", "log_format", _parse_log_format),
    ("METRICS_PORT", "metrics_port", _parse_port),
    ("METRICS_HOST", "metrics_host", _parse_host),
    ("ODIROUTER_SIZE_FIELDS", "size_fields", _parse_size_fields),
    ("DEFAULT_RESOLUTION", "default_resolution", _parse_tier),
    ("MAX_REFERENCE_BYTES", "max_reference_bytes", _parse_positive_int),
    ("MAX_RESULT_BYTES", "max_result_bytes", _parse_positive_int),
    ("JOB_TIMEOUT_SECONDS", "job_timeout", _parse_positive_float),
    ("POLL_MIN_INTERVAL", "poll_min_interval", _parse_positive_float),
    ("POLL_MAX_INTERVAL", "poll_max_interval", _parse_positive_float),
    ("UPSTREAM_CONCURRENCY", "upstream_concurrency", _parse_positive_int),
    ("UPSTREAM_READS_PER_SECOND", "upstream_reads_per_second", _parse_positive_float),
    ("STATUS_EDIT_INTERVAL", "status_edit_interval", _parse_positive_float),
    ("QUEUE_POSITION_INTERVAL", "queue_position_interval", _parse_positive_float),
    ("QUOTA_4K_WEIGHT", "default_4k_weight", _parse_positive_int),
    ("SWEEP_INTERVAL_SECONDS", "sweep_interval", _parse_positive_float),
    ("SHARD_COUNT", "shard_count", _parse_positive_int),
    ("SHARD_IDS", "shard_ids", _parse_shard_ids),
)
REQUIRED = ("DISCORD_TOKEN", "ODIROUTER_API_KEY")
# The values .env.example ships with for settings that have no usable default. A setting still holding
# one was copied but never filled in, which is reported like a missing setting.
PLACEHOLDERS: Mapping[str, str] = {
    "DISCORD_TOKEN": "your-discord-bot-token",
    "ODIROUTER_API_KEY": "your-odirouter-api-key",
}
# Names in .env.example that are read by Docker Compose (compose.yaml), not by the bot.
COMPOSE_SETTINGS = ("COMPOSE_PROFILES",)


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a ``.env`` file: ``KEY=value`` lines, ``#`` comments, optional quotes and ``export``."""
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    return values


def load_settings(environ: Mapping[str, str] | None = None, env_file: Path | None = None) -> Settings:
    """Build :class:`Settings` from ``environ`` (default ``os.environ``) over an optional ``.env`` file.

    Raises :class:`ConfigError` listing every missing or invalid setting.
    """
    env = dict(os.environ if environ is None else environ)
    path = env_file if env_file is not None else Path(env.get("ENV_FILE", ".env"))
    merged = {**read_env_file(path), **env} if path.is_file() else env

    problems: list[str] = []
    values: dict[str, object] = {}
    for name in REQUIRED:
        if not merged.get(name, "").strip():
            problems.append(f"{name} is required but not set")
    for name, placeholder in PLACEHOLDERS.items():
        if merged.get(name, "").strip() == placeholder:
            problems.append(f"{name} still holds the example value from .env.example; replace it with your own")
    for name, attr, parser in OPTIONAL:
        raw = merged.get(name, "").strip()
        if not raw:
            continue
        try:
            values[attr] = parser(raw)  # type: ignore[operator]
        except ValueError as exc:
            reason = str(exc) if "must" in str(exc) else "has an invalid value"
            problems.append(f"{name} {reason}")
    if "poll_min_interval" in values or "poll_max_interval" in values:
        low = values.get("poll_min_interval", DEFAULT_POLL_MIN)
        high = values.get("poll_max_interval", DEFAULT_POLL_MAX)
        if isinstance(low, float) and isinstance(high, float) and low > high:
            problems.append("POLL_MIN_INTERVAL must not be larger than POLL_MAX_INTERVAL")
    problems += _shard_problems(merged, values)
    if problems:
        raise ConfigError(problems)
    return Settings(
        discord_token=merged["DISCORD_TOKEN"].strip(),
        odirouter_api_key=merged["ODIROUTER_API_KEY"].strip(),
        **values,  # type: ignore[arg-type]
    )


def _shard_problems(merged: Mapping[str, str], values: Mapping[str, object]) -> list[str]:
    """SHARD_IDS needs SHARD_COUNT, and each id must be below it (an invalid value of either is
    reported by its parser already)."""
    if not merged.get("SHARD_IDS", "").strip():
        return []
    if not merged.get("SHARD_COUNT", "").strip():
        return ["SHARD_IDS is set but SHARD_COUNT is not: set SHARD_COUNT to the total number of shards"]
    ids, count = values.get("shard_ids"), values.get("shard_count")
    if not isinstance(ids, tuple) or not isinstance(count, int):
        return []
    beyond = [i for i in ids if i >= count]
    if beyond:
        listed = ", ".join(map(str, beyond))
        return [f"SHARD_IDS must only name shards 0 to {count - 1} (SHARD_COUNT is {count}); not {listed}"]
    return []


def _database_password(database_url: str) -> str | None:
    try:
        return urlparse(database_url).password
    except ValueError:
        return None


def is_postgres_url(database_url: str) -> bool:
    """Whether ``DATABASE_URL`` names a PostgreSQL database (``postgresql://`` or ``postgres://``)."""
    return database_url.startswith(("postgresql://", "postgres://"))


def sqlite_path(database_url: str) -> str:
    """The file path in a ``sqlite:///`` URL (``sqlite:///:memory:`` gives ``:memory:``)."""
    return database_url.removeprefix("sqlite:///")
