"""SQLite store: migrations, job transitions, atomic quota reservation."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.models import JobRecord, JobState, LimitKind, NewJob, QuotaRefusal
from bot.storage.sqlite import SqliteStore

NOW = 1_800_000_000.0


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


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = await SqliteStore.open(str(tmp_path / "db" / "bot.sqlite3"))
    yield store
    await store.close()


async def created(store: SqliteStore, job: NewJob, now: float = NOW) -> JobRecord:
    record = await store.create_job(job, now=now, default_4k_weight=2)
    assert isinstance(record, JobRecord)
    return record


async def test_fresh_database_reaches_latest_version(tmp_path: Path) -> None:
    path = str(tmp_path / "bot.sqlite3")
    first = await SqliteStore.open(path)
    version = await first.schema_version()
    await first.close()
    again = await SqliteStore.open(path)  # migrations are not applied twice
    assert await again.schema_version() == version >= 1
    await again.close()


async def test_job_round_trip(store: SqliteStore) -> None:
    job = await created(store, new_job())
    assert job.status is JobState.PENDING and job.request_id is None and job.cost == 1
    job = await store.set_reply(job.id, message_id=99, token_dead=False, now=NOW)
    job = await store.mark_submitted(
        job.id, request_id="r1", status_url="s", response_url="r", cancel_url="c", queue_position=3, now=NOW + 1
    )
    assert (job.status, job.request_id, job.queue_position, job.message_id) == (JobState.QUEUED, "r1", 3, 99)
    assert (await store.job_by_message(99)) == job
    assert [j.id for j in await store.active_jobs()] == [job.id]
    job = await store.finish(job.id, JobState.DELIVERED, now=NOW + 2, refund=False)
    assert job.status is JobState.DELIVERED and job.cost == 1
    assert await store.active_jobs() == []


async def test_refund_and_usage(store: SqliteStore) -> None:
    a = await created(store, new_job(user=1))
    await created(store, new_job(user=2, resolution="4K"))
    usage = await store.usage(10, 1, day="2027-01-15")
    assert (usage.user_used, usage.guild_used, usage.user_active) == (1, 3, 1)
    await store.finish(a.id, JobState.FAILED, now=NOW, refund=True)
    usage = await store.usage(10, 1, day="2027-01-15")
    assert (usage.user_used, usage.guild_used, usage.user_active) == (0, 2, 0)


async def test_concurrent_reservations_never_exceed_the_limit(store: SqliteStore) -> None:
    await store.set_quota(10, {"user_daily": 5}, user_id=99, now=NOW)
    results = await asyncio.gather(*(store.create_job(new_job(), now=NOW, default_4k_weight=2) for _ in range(20)))
    assert sum(isinstance(r, JobRecord) for r in results) == 5
    refusals = [r for r in results if isinstance(r, QuotaRefusal)]
    assert {r.limit for r in refusals} == {LimitKind.USER_DAILY}


async def test_quota_settings_audit_and_reset(store: SqliteStore) -> None:
    settings = await store.set_quota(10, {"user_daily": 3, "max_concurrent": 2}, user_id=7, now=NOW)
    assert (settings.user_daily, settings.max_concurrent, settings.guild_daily) == (3, 2, None)
    settings = await store.set_quota(10, {"user_daily": None}, user_id=8, now=NOW + 1)
    assert settings.user_daily is None and settings.max_concurrent == 2 and settings.updated_by == 8
    changes = await store.quota_changes(10)
    first = changes[0]
    assert (first.field, first.old_value, first.new_value, first.user_id) == ("user_daily", 3, None, 8)
    await created(store, new_job(user=1))
    await created(store, new_job(user=2))
    assert await store.reset_usage(10, user_id=1, day="2027-01-15", by=7, now=NOW) == 1
    assert (await store.usage(10, 2, day="2027-01-15")).guild_used == 1
    assert await store.reset_usage(10, user_id=None, day="2027-01-15", by=7, now=NOW) == 1
    assert (await store.usage(10, 2, day="2027-01-15")).guild_used == 0


async def test_max_concurrent_counts_active_jobs(store: SqliteStore) -> None:
    await store.set_quota(10, {"max_concurrent": 1}, user_id=9, now=NOW)
    first = await created(store, new_job())
    refused = await store.create_job(new_job(), now=NOW, default_4k_weight=2)
    assert isinstance(refused, QuotaRefusal) and refused.limit is LimitKind.MAX_CONCURRENT
    await store.finish(first.id, JobState.DELIVERED, now=NOW, refund=False)
    await created(store, new_job())


# -- transactions and cancellation -----------------------------------------------------------
# aiosqlite runs every statement on the connection's own thread: cancelling the task that awaits a
# statement does not stop the statement. These tests cancel a write while BEGIN or COMMIT is on
# that thread and check the shared connection is not left inside a transaction.


def watch_statement(store: SqliteStore, monkeypatch: pytest.MonkeyPatch, statement: str) -> asyncio.Event:
    """An event set when ``statement`` is handed to the connection's thread."""
    handed = asyncio.Event()
    execute = store._db.execute

    def watched(sql: str, *args: Any) -> Any:
        if sql == statement:
            handed.set()  # the caller awaits the statement right after, in the same step
        return execute(sql, *args)

    monkeypatch.setattr(store._db, "execute", watched)
    return handed


async def test_cancel_during_begin_leaves_no_transaction_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bot.sqlite3"
    store = await SqliteStore.open(str(path))
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock: our BEGIN waits on the thread
        handed = watch_statement(store, monkeypatch, "BEGIN IMMEDIATE")
        write = asyncio.create_task(store.set_quota(10, {"user_daily": 3}, user_id=1, now=NOW))
        await handed.wait()
        write.cancel()
        other.execute("COMMIT")  # now the abandoned BEGIN succeeds on the thread
        with pytest.raises(asyncio.CancelledError):
            await write
        await store.schema_version()  # runs after everything already handed to the thread
        assert not store._db.in_transaction
        settings = await store.set_quota(10, {"user_daily": 5}, user_id=1, now=NOW)  # later writes work...
        assert settings.user_daily == 5
        row = other.execute("SELECT user_daily FROM quota_settings WHERE guild_id = 10").fetchone()
        assert row == (5,)  # ...and are committed, visible to another connection
    finally:
        other.close()
        await store.close()


async def test_cancel_during_commit_leaves_no_transaction_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bot.sqlite3"
    store = await SqliteStore.open(str(path))
    try:
        handed = watch_statement(store, monkeypatch, "COMMIT")
        write = asyncio.create_task(store.set_quota(10, {"user_daily": 3}, user_id=1, now=NOW))
        await handed.wait()
        write.cancel()
        with pytest.raises(asyncio.CancelledError):
            await write
        await store.schema_version()
        assert not store._db.in_transaction
        # The COMMIT had been sent, so the change is in (the caller cannot know; it was cancelled).
        assert (await store.get_quota(10)).user_daily == 3
        assert (await store.set_quota(10, {"user_daily": 5}, user_id=1, now=NOW)).user_daily == 5
    finally:
        await store.close()
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT user_daily FROM quota_settings WHERE guild_id = 10").fetchone() == (5,)


async def test_failed_commit_is_rolled_back(store: SqliteStore) -> None:
    """A COMMIT can fail and leave SQLite's transaction open (here: a deferred foreign key)."""
    await store._db.execute("CREATE TEMP TABLE parent (id INTEGER PRIMARY KEY)")
    await store._db.execute(
        "CREATE TEMP TABLE child (parent_id INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
    )
    with pytest.raises(sqlite3.IntegrityError):
        async with store._transaction():
            await store._db.execute("INSERT INTO child VALUES (1)")
    assert not store._db.in_transaction
    async with store._db.execute("SELECT COUNT(*) FROM child") as cur:
        row = await cur.fetchone()
    assert row is not None and row[0] == 0
    assert (await store.set_quota(10, {"user_daily": 5}, user_id=1, now=NOW)).user_daily == 5


# -- history and the queue as /history and /jobs see it -----------------------------------------


async def test_history_pages_a_members_jobs_in_a_server_newest_first(store: SqliteStore) -> None:
    mine = [(await created(store, new_job(user=1))).id for _ in range(7)]
    await created(store, new_job(user=2))  # another member
    await created(store, new_job(user=1, guild=11))  # another server

    def ids(jobs: list[JobRecord]) -> list[int]:
        return [j.id for j in jobs]

    newest = mine[::-1]
    assert ids(await store.history(10, 1, limit=3)) == newest[:3]
    assert ids(await store.history(10, 1, before_id=newest[2], limit=3)) == newest[3:6]
    assert ids(await store.history(10, 1, before_id=newest[5], limit=3)) == newest[6:]
    assert await store.history(10, 1, before_id=mine[0], limit=3) == []
    # Paging back: the jobs just newer than the cursor, still newest first.
    assert ids(await store.history(10, 1, after_id=newest[6], limit=3)) == newest[3:6]
    assert ids(await store.history(10, 1, after_id=newest[1], limit=3)) == newest[:1]
    assert await store.history(10, 3, limit=3) == []
    assert len(await store.history(10, 1, limit=10_000)) == 7  # bounded, whatever is asked


async def test_active_jobs_and_counts_in_a_server(store: SqliteStore) -> None:
    a = await created(store, new_job(user=1))
    b = await created(store, new_job(user=2))
    c = await created(store, new_job(user=1))
    await created(store, new_job(user=1, guild=11))
    await store.mark_submitted(
        b.id, request_id="rb", status_url="s", response_url="r", cancel_url="c", queue_position=4, now=NOW
    )
    await store.mark_submitted(
        c.id, request_id="rc", status_url="s", response_url="r", cancel_url="c", queue_position=2, now=NOW
    )
    await store.finish(a.id, JobState.DELIVERED, now=NOW, refund=False)

    assert [j.id for j in await store.active_jobs_in_guild(10, limit=10)] == [b.id, c.id]
    assert [j.id for j in await store.active_jobs_in_guild(10, user_id=1, limit=10)] == [c.id]
    assert [j.id for j in await store.active_jobs_in_guild(10, limit=1)] == [b.id]
    assert await store.active_jobs_in_guild(12, limit=10) == []
    assert await store.active_counts_in_guild(10) == {"queued": 2}
    assert await store.active_counts_in_guild(11) == {"pending": 1}
    # Every server's waiting jobs (the upstream queue is shared), and the last known position.
    assert await store.waiting_summary() == (3, 4)
    await store.update_progress(b.id, JobState.RUNNING, queue_position=None, started_at=NOW, now=NOW)
    assert await store.waiting_summary() == (2, 2)
    assert await store.active_counts_in_guild(10) == {"queued": 1, "running": 1}
