"""Stores for the storage tests, on every backend: a fresh database per test, opened as many times
(as many processes' stores) as a test needs."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

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
