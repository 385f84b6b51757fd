"""SQLite storage through aiosqlite: one connection, WAL, numbered migrations in ``user_version``.

Writes that read-then-write (the quota reservation above all) run in ``BEGIN IMMEDIATE``
transactions, which take SQLite's write lock up front, so even several processes sharing the
file cannot both reserve the last unit of a quota.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

from bot import quota
from bot.config import sqlite_path
from bot.models import (
    ACTIVE_STATES,
    JobRecord,
    JobState,
    NewJob,
    QuotaChange,
    QuotaRefusal,
    QuotaSettings,
    Usage,
)

log = logging.getLogger(__name__)

QUOTA_FIELDS = ("user_daily", "guild_daily", "max_concurrent", "weight_4k")
_ACTIVE = ",".join(f"'{s.value}'" for s in ACTIVE_STATES)


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files("bot.storage").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(found)


class SqliteStore:
    """The :class:`bot.storage.base.Store` on SQLite. Open it with :func:`open_store`."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        # One connection is shared by every task: the lock keeps a write from landing inside
        # another task's open transaction (and from being rolled back with it).
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str) -> SqliteStore:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path, isolation_level=None)
        db.row_factory = aiosqlite.Row
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA foreign_keys=ON")
            await db.execute("PRAGMA busy_timeout=5000")
            store = cls(db)
            await store._migrate()
        except BaseException:
            await db.close()
            raise
        return store

    async def close(self) -> None:
        await self._db.close()

    async def _migrate(self) -> None:
        async with self._db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        current = int(row[0]) if row else 0
        for version, script in _migrations():
            if version <= current:
                continue
            log.info("applying database migration %04d", version)
            statements = _statements(script)
            async with self._transaction():
                for statement in statements:
                    await self._db.execute(statement)
                await self._db.execute(f"PRAGMA user_version = {version}")

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        async with self._write_lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    async def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        async with self._write_lock:
            await self._db.execute(sql, params)

    async def schema_version(self) -> int:
        async with self._db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    # -- jobs ------------------------------------------------------------------------------

    async def create_job(
        self, new: NewJob, *, now: float, default_4k_weight: int, enforce_quota: bool = True
    ) -> JobRecord | QuotaRefusal:
        day = quota.utc_day(now)
        async with self._transaction():
            settings = await self.get_quota(new.guild_id) if new.guild_id is not None else None
            weight = quota.effective_4k_weight(settings, default_4k_weight) if settings else default_4k_weight
            cost = quota.job_cost(new.resolution, weight)
            if enforce_quota and settings is not None:
                refusal = quota.check(settings, await self.usage(new.guild_id, new.user_id, day=day), cost)
                if refusal is not None:
                    return refusal
            cur = await self._db.execute(
                """INSERT INTO jobs (status, user_id, guild_id, channel_id, message_id, application_id,
                       interaction_token, token_expires_at, upload_limit, prompt, aspect_ratio, resolution,
                       with_text, image_urls, cost, quota_day, created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    JobState.PENDING.value,
                    new.user_id,
                    new.guild_id,
                    new.channel_id,
                    new.message_id,
                    new.application_id,
                    new.interaction_token,
                    new.token_expires_at,
                    new.upload_limit,
                    new.prompt,
                    new.aspect_ratio,
                    new.resolution,
                    int(new.with_text),
                    json.dumps(list(new.image_urls)),
                    cost,
                    day,
                    now,
                    now,
                ),
            )
            job_id = cur.lastrowid
            await cur.close()
        assert job_id is not None
        return await self._require(job_id)

    async def get_job(self, job_id: int) -> JobRecord | None:
        return await self._one("SELECT * FROM jobs WHERE id = ?", (job_id,))

    async def job_by_message(self, message_id: int) -> JobRecord | None:
        return await self._one("SELECT * FROM jobs WHERE message_id = ? ORDER BY id DESC LIMIT 1", (message_id,))

    async def active_jobs(self) -> list[JobRecord]:
        return await self._many(f"SELECT * FROM jobs WHERE status IN ({_ACTIVE}) ORDER BY id", ())

    async def active_jobs_for_user(self, user_id: int, guild_id: int | None) -> list[JobRecord]:
        return await self._many(
            f"SELECT * FROM jobs WHERE status IN ({_ACTIVE}) AND user_id = ? AND guild_id IS ? ORDER BY id",
            (user_id, guild_id),
        )

    async def mark_submitted(
        self,
        job_id: int,
        *,
        request_id: str,
        status_url: str,
        response_url: str,
        cancel_url: str,
        queue_position: int | None,
        now: float,
    ) -> JobRecord:
        await self._write(
            """UPDATE jobs SET status = ?, request_id = ?, status_url = ?, response_url = ?, cancel_url = ?,
                   queue_position = ?, submitted_at = ?, updated_at = ? WHERE id = ?""",
            (JobState.QUEUED.value, request_id, status_url, response_url, cancel_url, queue_position, now, now, job_id),
        )
        return await self._require(job_id)

    async def update_progress(
        self, job_id: int, state: JobState, *, queue_position: int | None, started_at: float | None, now: float
    ) -> JobRecord:
        await self._write(
            """UPDATE jobs SET status = ?, queue_position = ?, started_at = COALESCE(started_at, ?), updated_at = ?
               WHERE id = ?""",
            (state.value, queue_position, started_at, now, job_id),
        )
        return await self._require(job_id)

    async def request_cancel(self, job_id: int, *, user_id: int, now: float) -> JobRecord | None:
        async with self._write_lock:
            cur = await self._db.execute(
                f"""UPDATE jobs SET cancel_requested_by = ?, cancel_requested_at = ?, updated_at = ?
                    WHERE id = ? AND cancel_requested_at IS NULL AND status IN ({_ACTIVE})""",
                (user_id, now, now, job_id),
            )
            changed = cur.rowcount
            await cur.close()
        return await self._require(job_id) if changed else None

    async def mark_delivery_attempt(self, job_id: int, *, now: float) -> JobRecord:
        await self._write("UPDATE jobs SET delivery_attempted_at = ?, updated_at = ? WHERE id = ?", (now, now, job_id))
        return await self._require(job_id)

    async def forget_token(self, job_id: int) -> None:
        await self._write("UPDATE jobs SET interaction_token = NULL WHERE id = ?", (job_id,))

    async def clear_cancel(self, job_id: int, *, now: float) -> JobRecord:
        await self._write(
            "UPDATE jobs SET cancel_requested_by = NULL, cancel_requested_at = NULL, updated_at = ? WHERE id = ?",
            (now, job_id),
        )
        return await self._require(job_id)

    async def finish(
        self,
        job_id: int,
        state: JobState,
        *,
        now: float,
        refund: bool,
        error_type: str | None = None,
        error_message: str | None = None,
    ) -> JobRecord:
        await self._write(
            """UPDATE jobs SET status = ?, finished_at = ?, updated_at = ?, error_type = ?, error_message = ?,
                   queue_position = NULL, cost = CASE WHEN ? THEN 0 ELSE cost END WHERE id = ?""",
            (state.value, now, now, error_type, error_message, int(refund), job_id),
        )
        return await self._require(job_id)

    async def set_reply(self, job_id: int, *, message_id: int | None, token_dead: bool, now: float) -> JobRecord:
        await self._write(
            """UPDATE jobs SET message_id = COALESCE(?, message_id),
                   token_expires_at = CASE WHEN ? THEN MIN(COALESCE(token_expires_at, ?), ?) ELSE token_expires_at END,
                   updated_at = ? WHERE id = ?""",
            (message_id, int(token_dead), now, now, now, job_id),
        )
        return await self._require(job_id)

    async def mark_delivering(self, job_id: int, *, now: float) -> JobRecord:
        return await self.update_progress(job_id, JobState.DELIVERING, queue_position=None, started_at=now, now=now)

    # -- bookkeeping -------------------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        async with self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)) as cur:
            row = await cur.fetchone()
        return str(row[0]) if row else None

    async def set_meta(self, key: str, value: str) -> None:
        await self._write(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- quotas ----------------------------------------------------------------------------

    async def get_quota(self, guild_id: int) -> QuotaSettings:
        async with self._db.execute("SELECT * FROM quota_settings WHERE guild_id = ?", (guild_id,)) as cur:
            row = await cur.fetchone()
        if row is None:
            return QuotaSettings(guild_id=guild_id)
        return QuotaSettings(
            guild_id=guild_id,
            user_daily=row["user_daily"],
            guild_daily=row["guild_daily"],
            max_concurrent=row["max_concurrent"],
            weight_4k=row["weight_4k"],
            updated_by=row["updated_by"],
            updated_at=row["updated_at"],
        )

    async def set_quota(
        self, guild_id: int, changes: Mapping[str, int | None], *, user_id: int, now: float
    ) -> QuotaSettings:
        unknown = set(changes) - set(QUOTA_FIELDS)
        if unknown:
            raise ValueError(f"unknown quota fields: {sorted(unknown)}")
        async with self._transaction():
            before = await self.get_quota(guild_id)
            await self._db.execute(
                "INSERT INTO quota_settings (guild_id) VALUES (?) ON CONFLICT (guild_id) DO NOTHING", (guild_id,)
            )
            for name, value in changes.items():
                old = getattr(before, name)
                await self._db.execute(f"UPDATE quota_settings SET {name} = ? WHERE guild_id = ?", (value, guild_id))
                await self._db.execute(
                    "INSERT INTO quota_changes (guild_id, user_id, field, old_value, new_value, at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (guild_id, user_id, name, old, value, now),
                )
            await self._db.execute(
                "UPDATE quota_settings SET updated_by = ?, updated_at = ? WHERE guild_id = ?", (user_id, now, guild_id)
            )
        return await self.get_quota(guild_id)

    async def quota_changes(self, guild_id: int, *, limit: int = 10) -> list[QuotaChange]:
        async with self._db.execute(
            "SELECT * FROM quota_changes WHERE guild_id = ? ORDER BY at DESC, id DESC LIMIT ?", (guild_id, limit)
        ) as cur:
            rows = await cur.fetchall()
        return [
            QuotaChange(r["guild_id"], r["user_id"], r["field"], r["old_value"], r["new_value"], r["at"]) for r in rows
        ]

    async def usage(self, guild_id: int | None, user_id: int, *, day: str) -> Usage:
        async with self._db.execute(
            f"""SELECT
                    COALESCE(SUM(CASE WHEN user_id = ? AND quota_day = ? THEN cost END), 0) AS user_used,
                    COALESCE(SUM(CASE WHEN quota_day = ? THEN cost END), 0) AS guild_used,
                    COUNT(CASE WHEN user_id = ? AND status IN ({_ACTIVE}) THEN 1 END) AS user_active
                FROM jobs WHERE guild_id IS ? AND (quota_day = ? OR status IN ({_ACTIVE}))""",
            (user_id, day, day, user_id, guild_id, day),
        ) as cur:
            row = await cur.fetchone()
        assert row is not None
        return Usage(user_used=row["user_used"], guild_used=row["guild_used"], user_active=row["user_active"])

    async def reset_usage(self, guild_id: int, *, user_id: int | None, day: str, by: int, now: float) -> int:
        async with self._transaction():
            where = "guild_id = ? AND quota_day = ? AND cost > 0"
            params: tuple[Any, ...] = (guild_id, day)
            if user_id is not None:
                where += " AND user_id = ?"
                params += (user_id,)
            async with self._db.execute(f"SELECT COALESCE(SUM(cost), 0) FROM jobs WHERE {where}", params) as cur:
                row = await cur.fetchone()
            cleared = int(row[0]) if row else 0
            await self._db.execute(f"UPDATE jobs SET cost = 0, updated_at = ? WHERE {where}", (now, *params))
            await self._db.execute(
                "INSERT INTO quota_changes (guild_id, user_id, field, old_value, new_value, at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (guild_id, by, f"reset:{user_id}" if user_id is not None else "reset:server", cleared, 0, now),
            )
        return cleared

    # -- helpers ---------------------------------------------------------------------------

    async def _one(self, sql: str, params: tuple[Any, ...]) -> JobRecord | None:
        async with self._db.execute(sql, params) as cur:
            row = await cur.fetchone()
        return _job(row) if row is not None else None

    async def _many(self, sql: str, params: tuple[Any, ...]) -> list[JobRecord]:
        async with self._db.execute(sql, params) as cur:
            rows = await cur.fetchall()
        return [_job(r) for r in rows]

    async def _require(self, job_id: int) -> JobRecord:
        job = await self.get_job(job_id)
        if job is None:
            raise LookupError(f"job {job_id} does not exist")
        return job


def _statements(script: str) -> list[str]:
    """Split a migration into statements (comments may contain semicolons)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements


def _job(row: aiosqlite.Row) -> JobRecord:
    return JobRecord(
        id=row["id"],
        status=JobState(row["status"]),
        user_id=row["user_id"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        message_id=row["message_id"],
        application_id=row["application_id"],
        interaction_token=row["interaction_token"],
        token_expires_at=row["token_expires_at"],
        upload_limit=row["upload_limit"],
        prompt=row["prompt"],
        aspect_ratio=row["aspect_ratio"],
        resolution=row["resolution"],
        with_text=bool(row["with_text"]),
        image_urls=tuple(json.loads(row["image_urls"])),
        cost=row["cost"],
        quota_day=row["quota_day"],
        request_id=row["request_id"],
        status_url=row["status_url"],
        response_url=row["response_url"],
        cancel_url=row["cancel_url"],
        queue_position=row["queue_position"],
        created_at=row["created_at"],
        submitted_at=row["submitted_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        cancel_requested_by=row["cancel_requested_by"],
        cancel_requested_at=row["cancel_requested_at"],
        error_type=row["error_type"],
        error_message=row["error_message"],
        delivery_attempted_at=row["delivery_attempted_at"],
    )


@asynccontextmanager
async def open_store(database_url: str) -> AsyncIterator[SqliteStore]:
    """Open the store named by ``DATABASE_URL`` for the lifetime of the ``async with`` block."""
    store = await SqliteStore.open(sqlite_path(database_url))
    try:
        yield store
    finally:
        await store.close()
