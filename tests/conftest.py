"""Shared fixtures: the end-to-end world (fake Discord + simulator + the shipped bot)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.devtools.fakediscord import FakeDiscord
from bot.simulator import SimulatorOptions, run_simulator
from tests.harness import SIM_KEY, Rig, running_bot
from tests.stores import OpenStore, postgres_admin_url, postgres_database, postgres_wanted, sqlite_url, store_opener

StartWorld = Callable[..., Awaitable[Rig]]


# The database of the end-to-end world: SQLite, or with TEST_E2E_BACKEND=postgres a fresh PostgreSQL
# database per test (on TEST_POSTGRES_URL's server). .ci/run runs the world's tests once more so.
E2E_BACKEND = os.environ.get("TEST_E2E_BACKEND", "sqlite")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "world" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.world)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[StartWorld]:
    """``rig = await world(fake={...}, sim={...}, **settings)`` starts all three; teardown closes the
    bot first, then the simulator, then the fake Discord."""
    async with contextlib.AsyncExitStack() as stack:
        database: list[str] = []  # PostgreSQL's, made at the first start and kept for the test

        async def start(
            *,
            fake: dict[str, Any] | None = None,
            sim: dict[str, Any] | None = None,
            dev_guild: bool = False,
            **settings: Any,
        ) -> Rig:
            if E2E_BACKEND == "postgres" and "database_url" not in settings:
                if not database:
                    database.append(await stack.enter_async_context(postgres_database(postgres_admin_url())))
                settings["database_url"] = database[0]
            discord_fake = await stack.enter_async_context(FakeDiscord(**(fake or {})))
            if dev_guild:
                settings["dev_guild_id"] = int(discord_fake.guild.id)
            simulator = await stack.enter_async_context(
                run_simulator(SimulatorOptions(api_key=SIM_KEY, **{"job_duration": 0.05, **(sim or {})}))
            )
            return await stack.enter_async_context(
                running_bot(discord_fake, simulator, tmp_path / "bot.sqlite3", **settings)
            )

        yield start


@pytest.fixture(params=["sqlite", "postgres"] if postgres_wanted() else ["sqlite"])
def store_backend(request: pytest.FixtureRequest) -> str:
    """The storage tests run once per backend (PostgreSQL: see :mod:`tests.stores`)."""
    return str(request.param)


@pytest.fixture
async def database_url(store_backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database of ``store_backend`` for one test (PostgreSQL: dropped after it)."""
    if store_backend == "postgres":
        async with postgres_database(postgres_admin_url()) as url:
            yield url
    else:
        yield sqlite_url(tmp_path)


@pytest.fixture
async def postgres_database_url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for a test of PostgreSQL alone (dropped after it)."""
    async with postgres_database(postgres_admin_url()) as url:
        yield url


@pytest.fixture
async def open_test_store(database_url: str) -> AsyncIterator[OpenStore]:
    """``store = await open_test_store(ownership=...)``: one more store (one more process's) on the
    test's database; every one is closed after the test."""
    async with store_opener(database_url) as opener:
        yield opener
