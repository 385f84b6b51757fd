"""Settings: every problem reported at once, defaults, .env files, secrets kept out of sight."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings

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


def test_env_example_lists_every_setting_and_loads() -> None:
    """.env.example names every variable the bot reads, and as a .env file it configures the bot."""
    from bot.config import OPTIONAL, REQUIRED

    example = Path(__file__).resolve().parent.parent / ".env.example"
    text = example.read_text()
    names = {line.split("=", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}
    assert {name for name, _, _ in OPTIONAL} | set(REQUIRED) == names
    settings = load_settings({}, env_file=example)
    assert settings.discord_token == "your-discord-bot-token"
