"""Stores for the storage tests, on every backend: a fresh database per test, opened as many times
(as many processes' stores) as a test needs.

PostgreSQL: ``TEST_POSTGRES_URL`` is the admin URL of a server to make test databases on
(``bash scripts/start-test-postgres.sh`` starts one and prints it). Unset, the PostgreSQL runs are
left out, or fail in CI (``CI`` set), where PostgreSQL must have been started.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from bot.config import is_postgres_url, sqlite_path
from bot.models import JobRecord, NewJob, Ownership
from bot.storage import Store, open_store

NOW = 1_800_000_000.0
OpenStore = Callable[..., Awaitable[Store]]


def new_job(user: int = 1, guild: int | None = 10, resolution: str = "1K") -> NewJob:
    return NewJob(
        user_id=user,
        guild_id=guild,
        channel_id=20,
        message_id=None,
        application_id=5,
        interaction_token="tok",
        token_expires_at=NOW + 900,
        upload_limit=10 * 1024 * 1024,
        prompt="a cat",
        aspect_ratio="16:9",
        resolution=resolution,
        with_text=False,
        image_urls=("http://127.0.0.1/a.png",),
    )


async def created(store: Store, job: NewJob, now: float = NOW) -> JobRecord:
    record = await store.create_job(job, now=now, default_4k_weight=2)
    assert isinstance(record, JobRecord), record
    return record


@contextlib.asynccontextmanager
async def store_opener(database_url: str) -> AsyncIterator[OpenStore]:
    """``await open(ownership=...)`` opens one more store on the database; all are closed at the end."""
    async with contextlib.AsyncExitStack() as stack:

        async def open_one(ownership: Ownership | None = None) -> Store:
            return await stack.enter_async_context(open_store(database_url, ownership=ownership))

        yield open_one


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'db' / 'bot.sqlite3'}"


def postgres_wanted() -> bool:
    """Whether the storage tests run on PostgreSQL too (always in CI: there it must be running)."""
    return bool(os.environ.get("TEST_POSTGRES_URL") or os.environ.get("CI"))


def postgres_admin_url() -> str:
    """The test server's admin URL; fails the test in CI when PostgreSQL was not started, else skips it."""
    url = os.environ.get("TEST_POSTGRES_URL")
    if url:
        return url
    reason = (
        "TEST_POSTGRES_URL is not set: PostgreSQL was not started"
        ' (export TEST_POSTGRES_URL="$(bash scripts/start-test-postgres.sh)")'
    )
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def with_database(url: str, name: str) -> str:
    """``url`` naming the database ``name`` instead."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@contextlib.asynccontextmanager
async def postgres_database(admin_url: str) -> AsyncIterator[str]:
    """A new, empty database on the test server (its URL), dropped afterwards with whoever is still on it."""
    name = f"t_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    try:
        yield with_database(admin_url, name)
    finally:
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await admin.close()


async def delete_job(database_url: str, job_id: int) -> None:
    """Delete a job's row behind the bot's back, on either backend (as an operator pruning old rows would)."""
    if is_postgres_url(database_url):
        db = await asyncpg.connect(database_url)
        try:
            await db.execute("DELETE FROM jobs WHERE id = $1", job_id)
        finally:
            await db.close()
        return
    with contextlib.closing(sqlite3.connect(sqlite_path(database_url))) as conn, conn:
        conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
