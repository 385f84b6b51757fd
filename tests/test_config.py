"""Settings: every problem reported at once, defaults, .env files, secrets kept out of sight."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings, read_env_file

REQUIRED = {"DISCORD_TOKEN": "discord-secret-token", "ODIROUTER_API_KEY": "odi-secret-key"}


def test_defaults(tmp_path: Path) -> None:
    """Only the two secrets are needed; everything else has the documented default."""
    settings = load_settings(REQUIRED, env_file=tmp_path / "missing.env")
    assert settings.odirouter_base_url == "https://odirouter.ai/model"
    assert settings.odirouter_model == "nano_banana_pro"
    assert settings.database_url == "sqlite:///data/bot.sqlite3"
    assert settings.size_fields == ("resolution", "image_size")
    assert settings.default_resolution == "1K"
    assert settings.discord_api_base_url is None and settings.dev_guild_id is None


def test_every_problem_reported_together(tmp_path: Path) -> None:
    """Missing and invalid settings are all named in one error."""
    env = {"DEV_GUILD_ID": "abc", "LOG_LEVEL": "LOUD", "ODIROUTER_SIZE_FIELDS": "width"}
    with pytest.raises(ConfigError) as info:
        load_settings(env, env_file=tmp_path / "none")
    text = str(info.value)
    for name in ("DISCORD_TOKEN", "ODIROUTER_API_KEY", "DEV_GUILD_ID", "LOG_LEVEL", "ODIROUTER_SIZE_FIELDS"):
        assert name in text
    assert len(info.value.problems) == 5


def test_env_file_and_override(tmp_path: Path) -> None:
    """A .env file is read; the environment wins over it."""
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# comment\nDISCORD_TOKEN=from-file\nexport ODIROUTER_API_KEY='file-key'\nDEFAULT_RESOLUTION=2k\n"
        "DISCORD_API_BASE_URL=http://127.0.0.1:9/api/v10/\n"
    )
    settings = load_settings({"DISCORD_TOKEN": "from-env"}, env_file=env_file)
    assert settings.discord_token == "from-env"
    assert settings.odirouter_api_key == "file-key"
    assert settings.default_resolution == "2K"
    assert settings.discord_api_base_url == "http://127.0.0.1:9/api/v10"


def test_secrets_not_in_repr(tmp_path: Path) -> None:
    settings = load_settings(REQUIRED, env_file=tmp_path / "none")
    assert "secret" not in repr(settings)
    assert set(settings.secrets) == set(REQUIRED.values())


def test_invalid_values_do_not_echo_secrets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({**REQUIRED, "POLL_MIN_INTERVAL": "20", "POLL_MAX_INTERVAL": "5"}, env_file=tmp_path / "x")
    assert "POLL_MIN_INTERVAL" in str(info.value)
    assert "secret" not in str(info.value)


def test_python_m_bot_without_configuration_exits_2(tmp_path: Path) -> None:
    """`python -m bot` with nothing set prints one message naming each missing variable, no traceback."""
    env = {"PATH": os.environ.get("PATH", ""), "ENV_FILE": str(tmp_path / "absent.env")}
    proc = subprocess.run(
        [sys.executable, "-m", "bot"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert proc.returncode == 2
    assert "DISCORD_TOKEN" in proc.stderr and "ODIROUTER_API_KEY" in proc.stderr
    assert "Traceback" not in proc.stderr


EXAMPLE = Path(__file__).resolve().parent.parent / ".env.example"


def test_env_example_lists_every_setting() -> None:
    """.env.example names every variable the bot reads (plus the Compose ones), and nothing else."""
    from bot.config import COMPOSE_SETTINGS, OPTIONAL, REQUIRED

    text = EXAMPLE.read_text()
    names = {line.split("=", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}
    assert {name for name, _, _ in OPTIONAL} | set(REQUIRED) | set(COMPOSE_SETTINGS) == names


def test_env_example_shows_the_defaults(tmp_path: Path) -> None:
    """Filled in with real secrets, .env.example configures exactly the built-in defaults."""
    from_example = load_settings(REQUIRED, env_file=EXAMPLE)
    assert from_example == load_settings(REQUIRED, env_file=tmp_path / "absent.env")


def test_env_example_placeholders_are_refused() -> None:
    """An .env copied from .env.example and never filled in names each placeholder in one error."""
    from bot.config import PLACEHOLDERS

    example = read_env_file(EXAMPLE)
    looks_like_placeholder = {
        name for name, value in example.items() if re.search(r"your|<|>|change.?me|xxx", value, re.IGNORECASE)
    }
    assert looks_like_placeholder == set(PLACEHOLDERS)
    assert {name: example[name] for name in PLACEHOLDERS} == dict(PLACEHOLDERS)

    with pytest.raises(ConfigError) as info:
        load_settings({}, env_file=EXAMPLE)
    assert len(info.value.problems) == len(PLACEHOLDERS)
    for name, value in PLACEHOLDERS.items():
        assert any(problem.startswith(f"{name} ") for problem in info.value.problems)
        assert value not in str(info.value)


@pytest.mark.parametrize("name", ["DISCORD_TOKEN", "ODIROUTER_API_KEY"])
def test_placeholder_from_the_environment_is_refused(tmp_path: Path, name: str) -> None:
    from bot.config import PLACEHOLDERS

    env = {**REQUIRED, name: f" {PLACEHOLDERS[name]} "}
    with pytest.raises(ConfigError) as info:
        load_settings(env, env_file=tmp_path / "none")
    assert info.value.problems == [f"{name} still holds the example value from .env.example; replace it with your own"]


def test_logging_and_metrics_defaults(tmp_path: Path) -> None:
    settings = load_settings(REQUIRED, env_file=tmp_path / "none")
    assert settings.log_format == "text"
    assert settings.metrics_port is None
    assert settings.metrics_host == "127.0.0.1"


def test_logging_and_metrics_settings(tmp_path: Path) -> None:
    env = {**REQUIRED, "LOG_FORMAT": "JSON", "METRICS_PORT": "8080", "METRICS_HOST": "0.0.0.0"}
    settings = load_settings(env, env_file=tmp_path / "none")
    assert (settings.log_format, settings.metrics_port, settings.metrics_host) == ("json", 8080, "0.0.0.0")
    for host in ("::", "::1", "localhost", "metrics.internal"):
        assert load_settings({**REQUIRED, "METRICS_HOST": host}, env_file=tmp_path / "none").metrics_host == host
    for port in ("1", "65535"):
        assert load_settings({**REQUIRED, "METRICS_PORT": port}, env_file=tmp_path / "none").metrics_port == int(port)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("METRICS_PORT", "0"),
        ("METRICS_PORT", "65536"),
        ("METRICS_PORT", "-1"),
        ("METRICS_PORT", "http"),
        ("METRICS_PORT", "80.5"),
        ("METRICS_HOST", "http://0.0.0.0"),
        ("METRICS_HOST", "0.0.0.0:8080"),
        ("METRICS_HOST", "two words"),
        ("LOG_FORMAT", "xml"),
    ],
)
def test_invalid_logging_and_metrics_settings(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({**REQUIRED, name: value}, env_file=tmp_path / "none")
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith(f"{name} must ")


def test_sharding_is_off_by_default(tmp_path: Path) -> None:
    """Without SHARD_COUNT the bot is one unsharded process that has every server (shard 0 of 1)."""
    settings = load_settings(REQUIRED, env_file=tmp_path / "none")
    assert not settings.sharded
    assert settings.shard_count is None and settings.shard_ids is None
    assert settings.shards == (1, (0,))


@pytest.mark.parametrize(
    ("count", "ids", "shards"),
    [("2", "", (2, (0, 1))), ("4", "1, 3", (4, (1, 3))), ("2", "1", (2, (1,))), ("1", "0", (1, (0,)))],
)
def test_sharding_settings(tmp_path: Path, count: str, ids: str, shards: tuple[int, tuple[int, ...]]) -> None:
    """SHARD_COUNT alone runs every shard in this process; SHARD_IDS picks some of them."""
    settings = load_settings({**REQUIRED, "SHARD_COUNT": count, "SHARD_IDS": ids}, env_file=tmp_path / "none")
    assert settings.sharded
    assert settings.shards == shards


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"SHARD_IDS": "0"}, "SHARD_IDS is set but SHARD_COUNT is not: set SHARD_COUNT to the total number of shards"),
        ({"SHARD_COUNT": "0"}, "SHARD_COUNT must be a positive whole number"),
        ({"SHARD_COUNT": "two"}, "SHARD_COUNT has an invalid value"),
        (
            {"SHARD_COUNT": "2", "SHARD_IDS": "0,2,5"},
            "SHARD_IDS must only name shards 0 to 1 (SHARD_COUNT is 2); not 2, 5",
        ),
        ({"SHARD_COUNT": "3", "SHARD_IDS": "1,1,2,2"}, "SHARD_IDS must not name a shard twice (repeated: 1, 2)"),
        (
            {"SHARD_COUNT": "2", "SHARD_IDS": "0,-1"},
            "SHARD_IDS must be a comma-separated list of shard numbers such as 0,1 (each 0 or more)",
        ),
        (
            {"SHARD_COUNT": "2", "SHARD_IDS": "0,,1"},
            "SHARD_IDS must be a comma-separated list of shard numbers such as 0,1 (each 0 or more)",
        ),
    ],
)
def test_invalid_sharding_settings(tmp_path: Path, env: dict[str, str], problem: str) -> None:
    """Each sharding mistake is named on its own (an invalid SHARD_COUNT is not reported twice)."""
    with pytest.raises(ConfigError) as info:
        load_settings({**REQUIRED, **env}, env_file=tmp_path / "none")
    assert info.value.problems == [problem]


def test_sharding_problems_reported_with_the_others(tmp_path: Path) -> None:
    env = {"SHARD_IDS": "0,0", "LOG_LEVEL": "LOUD"}
    with pytest.raises(ConfigError) as info:
        load_settings({**REQUIRED, **env}, env_file=tmp_path / "none")
    assert info.value.problems == [
        "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
        "SHARD_IDS must not name a shard twice (repeated: 0)",
        "SHARD_IDS is set but SHARD_COUNT is not: set SHARD_COUNT to the total number of shards",
    ]


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///data/bot.sqlite3",
        "sqlite:////var/lib/imagine/bot.sqlite3",
        "postgresql://imagine:secret-pw@db.internal:5432/imagine",
        "postgres://imagine@127.0.0.1/imagine",
        "postgresql:///imagine?host=/run/postgresql",
    ],
)
def test_database_url_sqlite_or_postgresql(tmp_path: Path, url: str) -> None:
    settings = load_settings({**REQUIRED, "DATABASE_URL": url}, env_file=tmp_path / "none")
    assert settings.database_url == url


@pytest.mark.parametrize("url", ["mysql://u@h/db", "sqlite://relative.db", "data/bot.sqlite3", "postgresql:/x"])
def test_other_database_urls_are_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({**REQUIRED, "DATABASE_URL": url}, env_file=tmp_path / "none")
    assert info.value.problems == [
        "DATABASE_URL must look like sqlite:///path/to/file.sqlite3 (SQLite)"
        " or postgresql://user:password@host:5432/database (PostgreSQL)"
    ]


def test_the_database_password_is_a_secret(tmp_path: Path) -> None:
    env = {**REQUIRED, "DATABASE_URL": "postgresql://imagine:db-secret-pw@127.0.0.1:5432/imagine"}
    settings = load_settings(env, env_file=tmp_path / "none")
    assert "db-secret-pw" in settings.secrets
    assert "db-secret-pw" not in repr(settings)
