"""The store on every backend: migrations, job transitions, atomic quota reservation, server
controls; and SQLite's own transaction handling under cancellation."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.models import FourKAccess, JobRecord, JobState, LimitKind, NewJob, QuotaRefusal
from bot.storage import PostgresStore, Store, open_store
from bot.storage.sqlite import SqliteStore
from tests.stores import NOW, OpenStore, created, new_job


@pytest.fixture
async def store(open_test_store: OpenStore) -> Store:
    return await open_test_store()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = await SqliteStore.open(str(tmp_path / "db" / "bot.sqlite3"))
    yield store
    await store.close()


async def schema_version(database_url: str) -> int:
    async with open_store(database_url) as store:
        assert isinstance(store, SqliteStore | PostgresStore)
        return await store.schema_version()


async def test_fresh_database_reaches_latest_version(database_url: str) -> None:
    version = await schema_version(database_url)
    assert await schema_version(database_url) == version >= 8  # migrations are not applied twice


async def test_job_round_trip(store: Store) -> None:
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


async def test_refund_and_usage(store: Store) -> None:
    a = await created(store, new_job(user=1))
    await created(store, new_job(user=2, resolution="4K"))
    usage = await store.usage(10, 1, day="2027-01-15")
    assert (usage.user_used, usage.guild_used, usage.user_active) == (1, 3, 1)
    await store.finish(a.id, JobState.FAILED, now=NOW, refund=True)
    usage = await store.usage(10, 1, day="2027-01-15")
    assert (usage.user_used, usage.guild_used, usage.user_active) == (0, 2, 0)


async def test_usage_counts_today_and_active_jobs_only(store: Store) -> None:
    """Yesterday's jobs count toward nothing but the member's active jobs; ended ones toward the day."""
    earlier = await created(store, new_job(user=1), now=NOW - 86_400)  # yesterday, still running
    ended = await created(store, new_job(user=1), now=NOW - 86_400)
    await store.finish(ended.id, JobState.DELIVERED, now=NOW - 86_400, refund=False)
    await created(store, new_job(user=1))
    done = await created(store, new_job(user=3))
    await store.finish(done.id, JobState.DELIVERED, now=NOW, refund=False)
    await created(store, new_job(user=1, guild=11))  # another server
    usage = await store.usage(10, 1, day="2027-01-15")
    assert (usage.user_used, usage.guild_used, usage.user_active) == (1, 2, 2)
    assert earlier.quota_day == "2027-01-14"


async def test_a_quota_check_reads_indexes_not_the_servers_history(sqlite_store: SqliteStore, tmp_path: Path) -> None:
    """Every statement a reservation runs finds its rows through an index: its cost does not grow
    with the server's history (the jobs table is never scanned)."""
    for _ in range(3):
        await created(sqlite_store, new_job(user=1))
    statements: list[str] = []
    await sqlite_store._db.set_trace_callback(statements.append)
    await created(sqlite_store, new_job(user=1))
    await sqlite_store._db.set_trace_callback(None)
    reads = [sql for sql in statements if sql.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE"))]
    assert any("quota_day" in sql and sql.lstrip().upper().startswith("SELECT") for sql in reads)
    with sqlite3.connect(tmp_path / "db" / "bot.sqlite3") as db:
        for sql in reads:
            plan = " / ".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}"))
            assert "SCAN jobs" not in plan, (sql, plan)
            if sql.lstrip().upper().startswith("SELECT") and "quota_day" in sql:
                assert "jobs_by_day" in plan and "jobs_active_by_member" in plan, plan


async def test_concurrent_reservations_never_exceed_the_limit(store: Store) -> None:
    await store.set_quota(10, {"user_daily": 5}, user_id=99, now=NOW)
    results = await asyncio.gather(*(store.create_job(new_job(), now=NOW, default_4k_weight=2) for _ in range(20)))
    assert sum(isinstance(r, JobRecord) for r in results) == 5
    refusals = [r for r in results if isinstance(r, QuotaRefusal)]
    assert {r.limit for r in refusals} == {LimitKind.USER_DAILY}


async def test_quota_settings_audit_and_reset(store: Store) -> None:
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


async def test_max_concurrent_counts_active_jobs(store: Store) -> None:
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


async def test_failed_commit_is_rolled_back(sqlite_store: SqliteStore) -> None:
    store = sqlite_store
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


async def test_history_pages_a_members_jobs_in_a_server_newest_first(store: Store) -> None:
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


async def test_active_jobs_and_counts_in_a_server(store: Store) -> None:
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


# -- server controls ------------------------------------------------------------------------------


def member_job(user: int = 1, roles: tuple[int, ...] = (), resolution: str = "1K") -> NewJob:
    return replace(new_job(user=user, resolution=resolution), role_ids=roles)


async def test_role_allowances_and_overrides_in_the_reservation(store: Store) -> None:
    await store.set_quota(10, {"user_daily": 1}, user_id=99, now=NOW)
    await store.set_role_limit(10, 501, 2, by=99, now=NOW)
    await store.set_role_limit(10, 502, 3, by=99, now=NOW)
    await store.set_role_limit(11, 503, 50, by=99, now=NOW)  # another server's role
    both, one, other = (501, 502), (501,), (503,)
    for _ in range(3):
        await created(store, member_job(user=1, roles=both))
    refused = await store.create_job(member_job(user=1, roles=both), now=NOW, default_4k_weight=2)
    assert isinstance(refused, QuotaRefusal) and (refused.limit, refused.allowed, refused.used) == (
        LimitKind.USER_DAILY,
        3,
        3,
    )
    for _ in range(2):
        await created(store, member_job(user=2, roles=one))
    assert isinstance(await store.create_job(member_job(user=2, roles=one), now=NOW, default_4k_weight=2), QuotaRefusal)
    await created(store, member_job(user=3, roles=other))  # the default: 1
    assert isinstance(
        await store.create_job(member_job(user=3, roles=other), now=NOW, default_4k_weight=2), QuotaRefusal
    )
    # A member override beats both roles; None is no limit.
    await store.set_member_limit(10, 1, 4, by=99, now=NOW)
    await created(store, member_job(user=1, roles=both))
    refused = await store.create_job(member_job(user=1, roles=both), now=NOW, default_4k_weight=2)
    assert isinstance(refused, QuotaRefusal) and refused.allowed == 4
    await store.set_member_limit(10, 1, None, by=99, now=NOW)
    await created(store, member_job(user=1, roles=both))
    assert await store.remove_member_limit(10, 1) and not await store.remove_member_limit(10, 1)
    assert await store.remove_role_limit(10, 502) and not await store.remove_role_limit(10, 502)
    assert [r.role_id for r in (await store.server_controls(10)).role_limits] == [501]


async def test_concurrent_reservations_under_a_role_allowance_never_exceed_it(store: Store) -> None:
    await store.set_role_limit(10, 501, 5, by=99, now=NOW)
    results = await asyncio.gather(
        *(store.create_job(member_job(roles=(501,)), now=NOW, default_4k_weight=2) for _ in range(20))
    )
    assert sum(isinstance(r, JobRecord) for r in results) == 5


async def test_a_blocked_member_reserves_nothing(store: Store) -> None:
    assert await store.block_member(10, 1, by=99, now=NOW)
    assert not await store.block_member(10, 1, by=99, now=NOW + 1)  # already blocked: kept as it was
    controls = await store.member_controls(10, 1)
    assert (
        controls.blocked and controls.block is not None and (controls.block.set_by, controls.block.set_at) == (99, NOW)
    )
    refused = await store.create_job(member_job(user=1), now=NOW, default_4k_weight=2)
    assert isinstance(refused, QuotaRefusal) and refused.limit is LimitKind.BLOCKED
    assert await store.history(10, 1, limit=10) == []
    assert not (await store.member_controls(11, 1)).blocked  # per server
    assert [b.user_id for b in await store.blocked_members(10, limit=10)] == [1]
    assert await store.unblock_member(10, 1) and not await store.unblock_member(10, 1)
    await created(store, member_job(user=1))


async def test_four_k_access_and_roles(store: Store) -> None:
    assert (await store.server_controls(10)).four_k is FourKAccess.EVERYONE
    assert await store.add_four_k_role(10, 501, by=99, now=NOW) is FourKAccess.ROLES  # no longer everyone
    await store.set_four_k(10, FourKAccess.OFF, by=99, now=NOW)
    assert await store.add_four_k_role(10, 502, by=99, now=NOW) is FourKAccess.OFF  # stays off
    controls = await store.server_controls(10)
    assert controls.four_k_roles == (501, 502) and controls.updated_by == 99
    assert await store.remove_four_k_role(10, 501) and not await store.remove_four_k_role(10, 501)
    await store.set_role_limit(10, 502, 3, by=99, now=NOW)
    await store.set_role_limit(10, 503, 3, by=99, now=NOW)
    assert await store.forget_roles(10, [502, 999]) == 2  # its limit and its 4K access
    controls = await store.server_controls(10)
    assert controls.four_k_roles == () and [r.role_id for r in controls.role_limits] == [503]


async def test_blocked_words_are_folded_deduplicated_and_capped(store: Store) -> None:
    added = await store.add_blocked_words(10, ["Crème", "creme", " forbidden  FRUIT "], by=99, now=NOW, max_words=4)
    assert added is not None and added.added == ("Crème", "forbidden  FRUIT") and added.total == 2
    again = await store.add_blocked_words(10, ["CREME", "new"], by=99, now=NOW, max_words=4)
    assert again is not None and again.added == ("new",) and again.present == ("CREME",) and again.total == 3
    # Over the cap: nothing at all is stored.
    assert await store.add_blocked_words(10, ["one", "two"], by=99, now=NOW, max_words=4) is None
    assert (await store.server_controls(10)).blocked_words == ("Crème", "forbidden  FRUIT", "new")
    assert await store.remove_blocked_words(10, ["CRÈME", "Forbidden fruit", "absent"]) == ("Crème", "forbidden  FRUIT")
    assert (await store.server_controls(10)).blocked_words == ("new",)
    assert (await store.server_controls(11)).blocked_words == ()


async def test_failed_jobs_to_log_only_where_a_log_channel_is_set(store: Store) -> None:
    await store.set_log_channel(10, 700, by=99, now=NOW)
    first = await created(store, new_job(user=1))
    second = await created(store, new_job(user=2))
    elsewhere = await created(store, new_job(user=1, guild=11))
    delivered = await created(store, new_job(user=3))
    for job in (first, second, elsewhere):
        await store.finish(job.id, JobState.FAILED, now=NOW + 5, refund=True, error_type="upstream_failed")
    await store.finish(delivered.id, JobState.DELIVERED, now=NOW + 5, refund=False)
    found = await store.failed_jobs_to_log(after=(NOW, 0), limit=10)
    assert [(j.id, channel) for j, channel in found] == [(first.id, 700), (second.id, 700)]
    assert [j.id for j, _ in await store.failed_jobs_to_log(after=(NOW + 5, first.id), limit=10)] == [second.id]
    assert await store.failed_jobs_to_log(after=(NOW + 5, second.id), limit=10) == []
    await store.set_log_channel(10, None, by=99, now=NOW)
    assert await store.failed_jobs_to_log(after=(NOW, 0), limit=10) == []
