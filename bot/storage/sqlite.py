"""SQLite storage through aiosqlite: one connection, WAL, numbered migrations in ``user_version``.

Writes that read-then-write (the quota reservation above all) run in ``BEGIN IMMEDIATE``
transactions, which take SQLite's write lock up front, so even several processes sharing the
file cannot both reserve the last unit of a quota.

SQLite is the store of one process: :meth:`SqliteStore.claim_shards` takes the jobs of its shards
without asking whether another process runs (PostgreSQL's store holds a lock per shard instead).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

from bot import quota
from bot.models import (
    FourKAccess,
    JobRecord,
    JobState,
    MemberBlock,
    MemberControls,
    MemberLimit,
    NewJob,
    Ownership,
    QuotaChange,
    QuotaInputs,
    QuotaRefusal,
    QuotaSettings,
    RoleLimit,
    ServerControls,
    Usage,
    WordsAdded,
)
from bot.storage.base import CLAIM_WAIT, QUOTA_FIELDS, NotOwnerError, StoreOpenError
from bot.storage.base import SQL_ACTIVE as _ACTIVE
from bot.storage.base import SQL_CLAIMED as _CLAIMED
from bot.storage.base import SQL_FOLLOWED as _FOLLOWED
from bot.storage.base import SQL_UNTOLD as _UNTOLD
from bot.storage.base import job_from_row as _job

log = logging.getLogger(__name__)

# A member's use on a day, their server's, and the member's unfinished jobs (parameters: server, day,
# user, server, day, server, user), each through its own index (migration 0009): a new job's quota
# check reads the day's entries of the server's index and the member's active jobs, never the
# server's whole history.
_USAGE = f"""(SELECT COALESCE(SUM(cost), 0) FROM jobs WHERE guild_id IS ? AND quota_day = ? AND user_id = ?),
    (SELECT COALESCE(SUM(cost), 0) FROM jobs WHERE guild_id IS ? AND quota_day = ?),
    (SELECT COUNT(*) FROM jobs WHERE guild_id IS ? AND user_id = ? AND status IN ({_ACTIVE}))"""


def _usage_parameters(guild_id: int | None, user_id: int, day: str) -> tuple[Any, ...]:
    return (guild_id, day, user_id, guild_id, day, guild_id, user_id)


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files("bot.storage").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(found)


BUSY_TIMEOUT = 5.0  # seconds a statement waits for another process's lock before giving up


def _prepare_folder(path: str) -> None:
    """Create the database's folder if needed; a folder at ``path`` itself is refused too."""
    folder = Path(path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise StoreOpenError(f"cannot create the folder of the database {path}: {folder} is a file") from exc
    except OSError as exc:
        raise StoreOpenError(f"cannot create the folder of the database {path}: {exc.strerror or exc}") from exc
    if Path(path).is_dir():
        raise StoreOpenError(f"cannot open the database {path}: it is a folder, not a file")


def _open_error(path: str, exc: sqlite3.Error) -> StoreOpenError | None:
    """What an SQLite error met while opening ``path`` means to the operator (None: not an open problem)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return None
    primary = code & 0xFF
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return StoreOpenError(f"the database {path} is locked by another process (is another copy of the bot running?)")
    if code == sqlite3.SQLITE_READONLY_DIRECTORY:
        return StoreOpenError(
            f"the database {path} is read-only: the bot must be able to write to its folder {Path(path).parent}"
        )
    if primary in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM):
        return StoreOpenError(f"the database {path} is read-only: the bot must be able to write to it")
    if primary == sqlite3.SQLITE_CANTOPEN:
        if not Path(path).exists():
            return StoreOpenError(f"cannot create the database {path} (can the bot write to {Path(path).parent}?)")
        return StoreOpenError(f"cannot open the database {path} ({exc})")
    if primary == sqlite3.SQLITE_NOTADB:
        return StoreOpenError(f"{path} is not a SQLite database (check DATABASE_URL)")
    if primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR):
        return StoreOpenError(f"cannot use the database {path} ({exc})")
    return None


async def _enter_wal(db: aiosqlite.Connection, busy_timeout: float) -> None:
    """Switch to WAL. Two processes opening one new file at once can both hold a read lock here;
    SQLite then answers one of them "busy" at once instead of waiting (a deadlock otherwise), so
    that one tries again, within ``busy_timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + busy_timeout
    while True:
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
            if code not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or loop.time() >= deadline:
                raise
            await asyncio.sleep(0.02)


class SqliteStore:
    """The :class:`bot.storage.base.Store` on SQLite. Open it with :func:`open_store`."""

    def __init__(self, db: aiosqlite.Connection, ownership: Ownership | None = None) -> None:
        self._db = db
        self._ownership = ownership or Ownership()
        self._me = self._ownership.owner
        # One connection is shared by every task: the lock keeps a write from landing inside
        # another task's open transaction (and from being rolled back with it).
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(
        cls, path: str, *, busy_timeout: float = BUSY_TIMEOUT, ownership: Ownership | None = None
    ) -> SqliteStore:
        """Open the database at ``path`` (creating it and its folder if needed) and migrate it.
        ``ownership``: the jobs this process may change (default: one process with every job).

        Raises :class:`StoreOpenError` when the file cannot be used: its folder cannot be
        created, it is a folder, it is read-only, another process holds its lock for longer than
        ``busy_timeout`` seconds, or it was written by a newer version of the bot.
        """
        if path != ":memory:":
            _prepare_folder(path)
        try:
            db = await aiosqlite.connect(path, isolation_level=None, timeout=busy_timeout)
            db.row_factory = aiosqlite.Row
            try:
                await _enter_wal(db, busy_timeout)
                await db.execute("PRAGMA synchronous=NORMAL")
                await db.execute("PRAGMA foreign_keys=ON")
                await db.execute(f"PRAGMA busy_timeout={round(busy_timeout * 1000)}")
                store = cls(db, ownership)
                await store._migrate(path)
            except BaseException:
                await db.close()
                raise
        except sqlite3.Error as exc:
            error = _open_error(path, exc)
            if error is None:
                raise
            raise error from exc
        return store

    @property
    def ownership(self) -> Ownership:
        return self._ownership

    async def close(self) -> None:
        await self._db.close()

    async def claim_shards(self, *, wait: float = CLAIM_WAIT) -> int:
        # One process by design: nothing to wait for. A job's shard is worked out again from its
        # server, so a change of SHARD_COUNT moves unfinished jobs to the shards now receiving them.
        ours = ",".join(str(s) for s in sorted(self._ownership.shard_ids))
        shard = f"COALESCE((guild_id >> 22) % {self._ownership.shard_count}, 0)"
        return await self._update(
            f"""UPDATE jobs SET shard_id = {shard}, owner = ?
                WHERE {_CLAIMED} AND {shard} IN ({ours}) AND (owner IS NOT ? OR shard_id != {shard})""",
            (self._me, self._me),
        )

    async def _refused(self, job_id: int) -> None:
        """After a conditional write changed nothing: raise if that is because the job is not ours."""
        row = await self._row("SELECT owner FROM jobs WHERE id = ?", (job_id,))
        if row is not None and row[0] != self._me:
            raise NotOwnerError(job_id, row[0])

    async def _migrate(self, path: str) -> None:
        current = await self.schema_version()
        migrations = _migrations()
        newest = migrations[-1][0] if migrations else 0
        if current > newest:
            raise StoreOpenError(
                f"the database {path} was written by a newer version of the bot"
                f" (schema {current}, this version knows up to {newest})"
            )
        if current == newest:
            # Nothing to apply, but reading works on a read-only file too: find out now that
            # writing does not, rather than at the first job. (Rewrites the same version.)
            async with self._transaction():
                await self._db.execute(f"PRAGMA user_version = {current}")
            return
        for version, script in migrations:
            if version <= current:
                continue
            statements = _statements(script)
            async with self._transaction():
                # Another process opening the same new database may have applied it meanwhile: read
                # the version again under the write lock (BEGIN IMMEDIATE) before applying.
                if await self.schema_version() >= version:
                    continue
                log.info("applying database migration %04d", version)
                for statement in statements:
                    await self._db.execute(statement)
                await self._db.execute(f"PRAGMA user_version = {version}")

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        async with self._write_lock:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                yield
                await self._db.execute("COMMIT")
            except BaseException as exc:
                # Cancelled at BEGIN or COMMIT, a failed COMMIT, an error in the block: whatever
                # is open must be gone before the lock lets the next writer in.
                if await self._roll_back() and not isinstance(exc, asyncio.CancelledError):
                    raise asyncio.CancelledError from exc
                raise

    async def _roll_back(self) -> bool:
        """Roll back the open transaction, if any; returns whether this task was cancelled meanwhile.

        A cancelled ``await`` does not stop a statement already handed to aiosqlite's thread (an
        abandoned BEGIN still opens its transaction), so ``in_transaction`` read here could be
        stale. ``Connection.rollback`` checks it on that thread, after every statement sent
        before it, and does nothing when no transaction is open. The rollback is never abandoned:
        the next writer's statements would otherwise land in the transaction left open.
        """
        rollback = asyncio.ensure_future(self._db.rollback())
        cancelled = False
        while not rollback.done():
            try:
                await asyncio.shield(rollback)
            except asyncio.CancelledError:
                cancelled = True
        if not rollback.cancelled() and rollback.exception() is not None:
            log.error("rolling back a database transaction failed", exc_info=rollback.exception())
        return cancelled

    async def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        async with self._write_lock:
            await self._db.execute(sql, params)

    async def _owned_write(self, sql: str, params: tuple[Any, ...], job_id: int) -> None:
        """Run an UPDATE of one job ending ``WHERE id = ? AND owner = ?``; raise if the job is not ours."""
        if not await self._update(sql, (*params, job_id, self._me)):
            await self._refused(job_id)

    async def _changed_job(self, sql: str, params: tuple[Any, ...]) -> JobRecord | None:
        """Run one conditional UPDATE of a job and return the job as it is after it (``None``: the
        condition held for no row). ``RETURNING`` reads the row in the same trip as the write."""
        async with self._write_lock:
            rows = await self._db.execute_fetchall(f"{sql} RETURNING *", params)
        return _job(next(iter(rows))) if rows else None

    async def _owned_job(self, sql: str, params: tuple[Any, ...], job_id: int) -> JobRecord:
        """:meth:`_changed_job` for an UPDATE ending ``WHERE id = ? AND owner = ?`` that must change the job."""
        job = await self._changed_job(sql, (*params, job_id, self._me))
        if job is None:
            await self._refused(job_id)
            return await self._require(job_id)  # raises LookupError: no such job
        return job

    async def _update(self, sql: str, params: tuple[Any, ...]) -> int:
        """Run one conditional UPDATE; returns how many rows it changed."""
        async with self._write_lock:
            cur = await self._db.execute(sql, params)
        return cur.rowcount  # an UPDATE's cursor holds nothing open: no need for a trip to close it

    async def schema_version(self) -> int:
        row = await self._row("PRAGMA user_version")
        return int(row[0]) if row else 0

    # -- jobs ------------------------------------------------------------------------------

    async def create_job(
        self, new: NewJob, *, now: float, default_4k_weight: int, enforce_quota: bool = True
    ) -> JobRecord | QuotaRefusal:
        day = quota.utc_day(now)
        async with self._transaction():
            inputs = await self._quota_inputs(new, day) if new.guild_id is not None else None
            cost, refusal = quota.reservation(
                new.resolution, new.role_ids, inputs, default_4k_weight=default_4k_weight, enforce=enforce_quota
            )
            if refusal is not None:
                return refusal
            shard = self._ownership.shard_of(new.guild_id)
            rows = await self._db.execute_fetchall(
                """INSERT INTO jobs (status, user_id, guild_id, channel_id, message_id, application_id,
                       interaction_token, token_expires_at, upload_limit, prompt, aspect_ratio, resolution,
                       with_text, image_urls, cost, quota_day, created_at, updated_at, parent_job_id, action,
                       locale, guild_locale, shard_id, owner)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   RETURNING *""",
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
                    new.parent_job_id,
                    new.action,
                    new.locale,
                    new.guild_locale,
                    shard,
                    self._me if shard in self._ownership.shard_ids else None,
                ),
            )
            created = next(iter(rows))
        return _job(created)

    async def _quota_inputs(self, new: NewJob, day: str) -> QuotaInputs:
        """What the quota check of a new job in a server reads, in one trip to the database (each
        trip waits its turn on aiosqlite's thread, and a burst of commands makes many): the server's
        limits, the member's allowance and block, the allowances of the member's roles, and the use."""
        guild_id, user_id, role_ids = new.guild_id, new.user_id, tuple(new.role_ids)
        roles = f"AND role_id IN ({','.join('?' * len(role_ids))})" if role_ids else "AND 0"
        rows = await self._rows(
            f"""SELECT 'quota', user_daily, guild_daily, max_concurrent, weight_4k
                    FROM quota_settings WHERE guild_id = ?
                UNION ALL SELECT 'limit', daily, set_by, set_at, NULL
                    FROM member_limits WHERE guild_id = ? AND user_id = ?
                UNION ALL SELECT 'block', NULL, set_by, set_at, NULL
                    FROM blocked_members WHERE guild_id = ? AND user_id = ?
                UNION ALL SELECT 'role', role_id, daily, set_by, set_at
                    FROM role_limits WHERE guild_id = ? {roles}
                UNION ALL SELECT 'usage', {_USAGE}, NULL""",
            (
                guild_id,
                *(guild_id, user_id),
                *(guild_id, user_id),
                guild_id,
                *role_ids,
                *_usage_parameters(guild_id, user_id, day),
            ),
        )
        assert guild_id is not None
        settings = QuotaSettings(guild_id=guild_id)
        limit: MemberLimit | None = None
        block: MemberBlock | None = None
        role_limits: list[RoleLimit] = []
        usage = Usage(user_used=0, guild_used=0, user_active=0)
        for kind, a, b, c, d in rows:
            if kind == "quota":
                settings = QuotaSettings(guild_id=guild_id, user_daily=a, guild_daily=b, max_concurrent=c, weight_4k=d)
            elif kind == "limit":
                limit = MemberLimit(user_id, a, b, c)
            elif kind == "block":
                block = MemberBlock(user_id, b, c)
            elif kind == "role":
                role_limits.append(RoleLimit(a, b, c, d))
            else:
                usage = Usage(user_used=a, guild_used=b, user_active=c)
        role_limits.sort(key=lambda r: (r.set_at, r.role_id))
        return QuotaInputs(settings, MemberControls(limit=limit, block=block), tuple(role_limits), usage)

    async def get_job(self, job_id: int) -> JobRecord | None:
        return await self._one("SELECT * FROM jobs WHERE id = ?", (job_id,))

    async def job_by_message(self, message_id: int) -> JobRecord | None:
        return await self._one("SELECT * FROM jobs WHERE message_id = ? ORDER BY id DESC LIMIT 1", (message_id,))

    async def active_jobs(self) -> list[JobRecord]:
        return await self._many(
            f"SELECT * FROM jobs WHERE status IN ({_ACTIVE}) AND owner = ? ORDER BY id", (self._me,)
        )

    async def active_jobs_for_user(self, user_id: int, guild_id: int | None) -> list[JobRecord]:
        return await self._many(
            f"SELECT * FROM jobs WHERE status IN ({_ACTIVE}) AND user_id = ? AND guild_id IS ? ORDER BY id",
            (user_id, guild_id),
        )

    async def active_counts(self) -> dict[str, int]:
        rows = await self._rows(
            f"SELECT status, COUNT(*) FROM jobs WHERE status IN ({_ACTIVE}) AND owner = ? GROUP BY status",
            (self._me,),
        )
        return {str(row[0]): int(row[1]) for row in rows}

    async def ping(self) -> bool:
        row = await self._row("SELECT 1")
        return row is not None

    async def untold_jobs(self, *, since: float) -> list[JobRecord]:
        return await self._many(
            f"""SELECT * FROM jobs WHERE status IN ({_UNTOLD}) AND told_at IS NULL AND finished_at >= ? AND owner = ?
                ORDER BY id""",
            (since, self._me),
        )

    async def begin_submit(self, job_id: int, *, now: float) -> JobRecord | None:
        """Record that the submit is about to leave, unless the job was cancelled or already sent."""
        job = await self._changed_job(
            """UPDATE jobs SET submit_started_at = ?, updated_at = ?
               WHERE id = ? AND status = ? AND submit_started_at IS NULL AND cancel_requested_at IS NULL
                 AND owner = ?""",
            (now, now, job_id, JobState.PENDING.value, self._me),
        )
        if job is None:
            await self._refused(job_id)
        return job

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
        job = await self._changed_job(
            """UPDATE jobs SET status = ?, request_id = ?, status_url = ?, response_url = ?, cancel_url = ?,
                   queue_position = ?, submitted_at = ?, updated_at = ? WHERE id = ? AND status = ? AND owner = ?""",
            (
                JobState.QUEUED.value,
                request_id,
                status_url,
                response_url,
                cancel_url,
                queue_position,
                now,
                now,
                job_id,
                JobState.PENDING.value,
                self._me,
            ),
        )
        if job is None:
            await self._refused(job_id)
            return await self._require(job_id)  # ours, and left as it was
        return job

    async def update_progress(
        self, job_id: int, state: JobState, *, queue_position: int | None, started_at: float | None, now: float
    ) -> JobRecord:
        job = await self._changed_job(
            f"""UPDATE jobs SET status = ?, queue_position = ?, started_at = COALESCE(started_at, ?), updated_at = ?
                WHERE id = ? AND status IN ({_FOLLOWED}) AND owner = ?""",
            (state.value, queue_position, started_at, now, job_id, self._me),
        )
        if job is None:
            await self._refused(job_id)
            return await self._require(job_id)  # ours, and left as it was
        return job

    async def request_cancel(self, job_id: int, *, user_id: int, now: float) -> JobRecord | None:
        job = await self._changed_job(
            f"""UPDATE jobs SET cancel_requested_by = ?, cancel_requested_at = ?, updated_at = ?
                WHERE id = ? AND cancel_requested_at IS NULL AND status IN ({_ACTIVE}) AND owner = ?""",
            (user_id, now, now, job_id, self._me),
        )
        if job is None:
            await self._refused(job_id)
        return job

    async def mark_delivery_attempt(self, job_id: int, *, now: float) -> JobRecord:
        return await self._owned_job(
            "UPDATE jobs SET delivery_attempted_at = ?, updated_at = ? WHERE id = ? AND owner = ?", (now, now), job_id
        )

    async def forget_token(self, job_id: int) -> None:
        await self._owned_write("UPDATE jobs SET interaction_token = NULL WHERE id = ? AND owner = ?", (), job_id)

    async def clear_cancel(self, job_id: int, *, now: float) -> JobRecord:
        job = await self._changed_job(
            f"""UPDATE jobs SET cancel_requested_by = NULL, cancel_requested_at = NULL, updated_at = ?
                WHERE id = ? AND status IN ({_ACTIVE}) AND owner = ?""",
            (now, job_id, self._me),
        )
        if job is None:
            await self._refused(job_id)
            return await self._require(job_id)  # ours, and left as it was
        return job

    async def finish(
        self,
        job_id: int,
        state: JobState,
        *,
        now: float,
        refund: bool,
        error_type: str | None = None,
        error_message: str | None = None,
        told: bool = False,
    ) -> JobRecord | None:
        job = await self._changed_job(
            f"""UPDATE jobs SET status = ?, finished_at = ?, updated_at = ?, error_type = ?, error_message = ?,
                    queue_position = NULL, cost = CASE WHEN ? THEN 0 ELSE cost END,
                    told_at = CASE WHEN ? THEN ? ELSE NULL END,
                    interaction_token = CASE WHEN ? THEN NULL ELSE interaction_token END
                WHERE id = ? AND status IN ({_ACTIVE}) AND owner = ?""",
            (
                state.value,
                now,
                now,
                error_type,
                error_message,
                int(refund),
                int(told),
                now,
                int(told),
                job_id,
                self._me,
            ),
        )
        if job is None:
            await self._refused(job_id)
        return job

    async def mark_told(self, job_id: int, *, now: float) -> None:
        # The interaction token is a credential: once the member has been told, it is not needed.
        await self._owned_write(
            "UPDATE jobs SET told_at = COALESCE(told_at, ?), interaction_token = NULL WHERE id = ? AND owner = ?",
            (now,),
            job_id,
        )

    async def set_reply(self, job_id: int, *, message_id: int | None, token_dead: bool, now: float) -> JobRecord:
        return await self._owned_job(
            """UPDATE jobs SET message_id = COALESCE(?, message_id),
                   token_expires_at = CASE WHEN ? THEN MIN(COALESCE(token_expires_at, ?), ?) ELSE token_expires_at END,
                   updated_at = ? WHERE id = ? AND owner = ?""",
            (message_id, int(token_dead), now, now, now),
            job_id,
        )

    async def mark_delivering(self, job_id: int, *, now: float) -> JobRecord:
        return await self.update_progress(job_id, JobState.DELIVERING, queue_position=None, started_at=now, now=now)

    LIST_MAX = 100  # the most rows one history or active-jobs query returns

    async def history(
        self, guild_id: int, user_id: int, *, before_id: int | None = None, after_id: int | None = None, limit: int
    ) -> list[JobRecord]:
        # A range of the index jobs_by_member (guild_id, user_id, id), read from either end.
        limit = max(1, min(limit, self.LIST_MAX))
        where = "guild_id = ? AND user_id = ?"
        params: tuple[Any, ...] = (guild_id, user_id)
        if after_id is not None:
            newer = await self._many(
                f"SELECT * FROM jobs WHERE {where} AND id > ? ORDER BY id ASC LIMIT ?", (*params, after_id, limit)
            )
            return newer[::-1]
        if before_id is not None:
            where, params = f"{where} AND id < ?", (*params, before_id)
        return await self._many(f"SELECT * FROM jobs WHERE {where} ORDER BY id DESC LIMIT ?", (*params, limit))

    async def active_jobs_in_guild(self, guild_id: int, *, user_id: int | None = None, limit: int) -> list[JobRecord]:
        # "+guild_id": look the jobs up by state (few are active), not through the server's whole history.
        limit = max(1, min(limit, self.LIST_MAX))
        if user_id is None:
            return await self._many(
                f"SELECT * FROM jobs WHERE status IN ({_ACTIVE}) AND +guild_id = ? ORDER BY id LIMIT ?",
                (guild_id, limit),
            )
        return await self._many(
            f"SELECT * FROM jobs WHERE status IN ({_ACTIVE}) AND +guild_id = ? AND +user_id = ? ORDER BY id LIMIT ?",
            (guild_id, user_id, limit),
        )

    async def active_counts_in_guild(self, guild_id: int) -> dict[str, int]:
        rows = await self._rows(
            f"SELECT status, COUNT(*) FROM jobs WHERE status IN ({_ACTIVE}) AND +guild_id = ? GROUP BY status",
            (guild_id,),
        )
        return {str(row[0]): int(row[1]) for row in rows}

    async def waiting_summary(self) -> tuple[int, int | None]:
        row = await self._row(
            "SELECT COUNT(*), MAX(queue_position) FROM jobs WHERE status IN (?, ?)",
            (JobState.PENDING.value, JobState.QUEUED.value),
        )
        if row is None:
            return 0, None
        return int(row[0]), None if row[1] is None else int(row[1])

    # -- bookkeeping -------------------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        row = await self._row("SELECT value FROM meta WHERE key = ?", (key,))
        return str(row[0]) if row else None

    async def set_meta(self, key: str, value: str) -> None:
        await self._write(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- quotas ----------------------------------------------------------------------------

    async def get_quota(self, guild_id: int) -> QuotaSettings:
        row = await self._row("SELECT * FROM quota_settings WHERE guild_id = ?", (guild_id,))
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
        rows = await self._rows(
            "SELECT * FROM quota_changes WHERE guild_id = ? ORDER BY at DESC, id DESC LIMIT ?", (guild_id, limit)
        )
        return [
            QuotaChange(r["guild_id"], r["user_id"], r["field"], r["old_value"], r["new_value"], r["at"]) for r in rows
        ]

    async def usage(self, guild_id: int | None, user_id: int, *, day: str) -> Usage:
        row = await self._row(f"SELECT {_USAGE}", _usage_parameters(guild_id, user_id, day))
        assert row is not None
        return Usage(user_used=row[0], guild_used=row[1], user_active=row[2])

    async def reset_usage(self, guild_id: int, *, user_id: int | None, day: str, by: int, now: float) -> int:
        async with self._transaction():
            where = "guild_id = ? AND quota_day = ? AND cost > 0"
            params: tuple[Any, ...] = (guild_id, day)
            if user_id is not None:
                where += " AND user_id = ?"
                params += (user_id,)
            row = await self._row(f"SELECT COALESCE(SUM(cost), 0) FROM jobs WHERE {where}", params)
            cleared = int(row[0]) if row else 0
            await self._db.execute(f"UPDATE jobs SET cost = 0, updated_at = ? WHERE {where}", (now, *params))
            await self._db.execute(
                "INSERT INTO quota_changes (guild_id, user_id, field, old_value, new_value, at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (guild_id, by, f"reset:{user_id}" if user_id is not None else "reset:server", cleared, 0, now),
            )
        return cleared

    # -- server controls -------------------------------------------------------------------

    async def server_controls(self, guild_id: int) -> ServerControls:
        # One trip (read before every /imagine): the server's row, its 4K roles, blocked words and
        # role allowances, told apart by the first column.
        rows = await self._rows(
            """SELECT 'row', four_k, log_channel_id, updated_by, updated_at FROM server_controls WHERE guild_id = ?
               UNION ALL SELECT 'four_k', role_id, set_at, NULL, NULL FROM four_k_roles WHERE guild_id = ?
               UNION ALL SELECT 'word', phrase, folded, NULL, NULL FROM blocked_words WHERE guild_id = ?
               UNION ALL SELECT 'role', role_id, daily, set_by, set_at FROM role_limits WHERE guild_id = ?""",
            (guild_id,) * 4,
        )
        row: tuple[Any, ...] | None = None
        four_k: list[tuple[float, int]] = []
        words: list[tuple[str, str]] = []
        roles: list[RoleLimit] = []
        for kind, a, b, c, d in rows:
            if kind == "row":
                row = (a, b, c, d)
            elif kind == "four_k":
                four_k.append((b, a))
            elif kind == "word":
                words.append((b, a))
            else:
                roles.append(RoleLimit(a, b, c, d))
        return ServerControls(
            guild_id=guild_id,
            four_k=FourKAccess(row[0]) if row is not None else FourKAccess.EVERYONE,
            four_k_roles=tuple(int(role) for _, role in sorted(four_k)),
            blocked_words=tuple(str(phrase) for _, phrase in sorted(words)),
            log_channel_id=row[1] if row is not None else None,
            role_limits=tuple(sorted(roles, key=lambda r: (r.set_at, r.role_id))),
            updated_by=row[2] if row is not None else None,
            updated_at=row[3] if row is not None else None,
        )

    async def _role_limits(self, guild_id: int, role_ids: Sequence[int] | None = None) -> list[RoleLimit]:
        """The server's role allowances (only those of ``role_ids`` when given)."""
        sql = "SELECT * FROM role_limits WHERE guild_id = ?"
        params: tuple[Any, ...] = (guild_id,)
        if role_ids is not None:
            if not role_ids:
                return []
            sql += f" AND role_id IN ({','.join('?' * len(role_ids))})"
            params += tuple(role_ids)
        rows = await self._rows(sql + " ORDER BY set_at, role_id", params)
        return [RoleLimit(r["role_id"], r["daily"], r["set_by"], r["set_at"]) for r in rows]

    async def member_controls(self, guild_id: int, user_id: int) -> MemberControls:
        rows = await self._rows(
            """SELECT 'limit', daily, set_by, set_at FROM member_limits WHERE guild_id = ? AND user_id = ?
               UNION ALL SELECT 'block', NULL, set_by, set_at FROM blocked_members WHERE guild_id = ? AND user_id = ?""",
            (guild_id, user_id) * 2,
        )
        found = {kind: (a, b, c) for kind, a, b, c in rows}
        limit, block = found.get("limit"), found.get("block")
        return MemberControls(
            limit=MemberLimit(user_id, *limit) if limit else None,
            block=MemberBlock(user_id, block[1], block[2]) if block else None,
        )

    async def member_limits(self, guild_id: int, *, limit: int) -> list[MemberLimit]:
        rows = await self._rows(
            "SELECT * FROM member_limits WHERE guild_id = ? ORDER BY set_at DESC, user_id LIMIT ?", (guild_id, limit)
        )
        return [MemberLimit(r["user_id"], r["daily"], r["set_by"], r["set_at"]) for r in rows]

    async def blocked_members(self, guild_id: int, *, limit: int) -> list[MemberBlock]:
        rows = await self._rows(
            "SELECT * FROM blocked_members WHERE guild_id = ? ORDER BY set_at DESC, user_id LIMIT ?", (guild_id, limit)
        )
        return [MemberBlock(r["user_id"], r["set_by"], r["set_at"]) for r in rows]

    async def _touch_controls(self, guild_id: int, by: int, now: float) -> None:
        """Inside a transaction: make sure the server's row exists and note who changed it, when."""
        await self._db.execute(
            """INSERT INTO server_controls (guild_id, updated_by, updated_at) VALUES (?, ?, ?)
               ON CONFLICT (guild_id) DO UPDATE SET updated_by = excluded.updated_by, updated_at = excluded.updated_at""",
            (guild_id, by, now),
        )

    async def _changed(self, sql: str, params: tuple[Any, ...]) -> int:
        """Inside a transaction: run one statement; returns how many rows it changed."""
        cur = await self._db.execute(sql, params)
        changed = cur.rowcount
        await cur.close()
        return changed

    async def set_role_limit(self, guild_id: int, role_id: int, daily: int | None, *, by: int, now: float) -> None:
        async with self._transaction():
            await self._db.execute(
                """INSERT INTO role_limits (guild_id, role_id, daily, set_by, set_at) VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (guild_id, role_id) DO UPDATE
                   SET daily = excluded.daily, set_by = excluded.set_by, set_at = excluded.set_at""",
                (guild_id, role_id, daily, by, now),
            )
            await self._touch_controls(guild_id, by, now)

    async def remove_role_limit(self, guild_id: int, role_id: int) -> bool:
        async with self._transaction():
            return bool(
                await self._changed("DELETE FROM role_limits WHERE guild_id = ? AND role_id = ?", (guild_id, role_id))
            )

    async def set_member_limit(self, guild_id: int, user_id: int, daily: int | None, *, by: int, now: float) -> None:
        async with self._transaction():
            await self._db.execute(
                """INSERT INTO member_limits (guild_id, user_id, daily, set_by, set_at) VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (guild_id, user_id) DO UPDATE
                   SET daily = excluded.daily, set_by = excluded.set_by, set_at = excluded.set_at""",
                (guild_id, user_id, daily, by, now),
            )
            await self._touch_controls(guild_id, by, now)

    async def remove_member_limit(self, guild_id: int, user_id: int) -> bool:
        async with self._transaction():
            return bool(
                await self._changed("DELETE FROM member_limits WHERE guild_id = ? AND user_id = ?", (guild_id, user_id))
            )

    async def block_member(self, guild_id: int, user_id: int, *, by: int, now: float) -> bool:
        async with self._transaction():
            added = await self._changed(
                """INSERT INTO blocked_members (guild_id, user_id, set_by, set_at) VALUES (?, ?, ?, ?)
                   ON CONFLICT (guild_id, user_id) DO NOTHING""",
                (guild_id, user_id, by, now),
            )
            await self._touch_controls(guild_id, by, now)
        return bool(added)

    async def unblock_member(self, guild_id: int, user_id: int) -> bool:
        async with self._transaction():
            return bool(
                await self._changed(
                    "DELETE FROM blocked_members WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
                )
            )

    async def set_four_k(self, guild_id: int, access: FourKAccess, *, by: int, now: float) -> None:
        async with self._transaction():
            await self._touch_controls(guild_id, by, now)
            await self._db.execute(
                "UPDATE server_controls SET four_k = ? WHERE guild_id = ?", (FourKAccess(access).value, guild_id)
            )

    async def add_four_k_role(self, guild_id: int, role_id: int, *, by: int, now: float) -> FourKAccess:
        async with self._transaction():
            await self._db.execute(
                """INSERT INTO four_k_roles (guild_id, role_id, set_by, set_at) VALUES (?, ?, ?, ?)
                   ON CONFLICT (guild_id, role_id) DO NOTHING""",
                (guild_id, role_id, by, now),
            )
            await self._touch_controls(guild_id, by, now)
            await self._db.execute(
                "UPDATE server_controls SET four_k = ? WHERE guild_id = ? AND four_k = ?",
                (FourKAccess.ROLES.value, guild_id, FourKAccess.EVERYONE.value),
            )
            row = await self._row("SELECT four_k FROM server_controls WHERE guild_id = ?", (guild_id,))
        assert row is not None
        return FourKAccess(row[0])

    async def remove_four_k_role(self, guild_id: int, role_id: int) -> bool:
        async with self._transaction():
            return bool(
                await self._changed("DELETE FROM four_k_roles WHERE guild_id = ? AND role_id = ?", (guild_id, role_id))
            )

    async def add_blocked_words(
        self, guild_id: int, phrases: Sequence[str], *, by: int, now: float, max_words: int
    ) -> WordsAdded | None:
        wanted: dict[str, str] = {}
        for phrase in phrases:
            key = quota.phrase_key(phrase)
            if key and key not in wanted:
                wanted[key] = phrase.strip()
        async with self._transaction():
            stored = {
                str(r[0]) for r in await self._rows("SELECT folded FROM blocked_words WHERE guild_id = ?", (guild_id,))
            }
            new = {k: v for k, v in wanted.items() if k not in stored}
            if len(stored) + len(new) > max_words:
                return None
            await self._db.executemany(
                "INSERT INTO blocked_words (guild_id, folded, phrase, set_by, set_at) VALUES (?, ?, ?, ?, ?)",
                [(guild_id, key, phrase, by, now) for key, phrase in new.items()],
            )
            await self._touch_controls(guild_id, by, now)
        present = tuple(v for k, v in wanted.items() if k in stored)
        return WordsAdded(added=tuple(new.values()), present=present, total=len(stored) + len(new))

    async def remove_blocked_words(self, guild_id: int, phrases: Sequence[str]) -> tuple[str, ...]:
        keys = list(dict.fromkeys(k for k in (quota.phrase_key(p) for p in phrases) if k))
        if not keys:
            return ()
        marks = ",".join("?" * len(keys))
        async with self._transaction():
            removed = tuple(
                str(r[0])
                for r in await self._rows(
                    f"SELECT phrase FROM blocked_words WHERE guild_id = ? AND folded IN ({marks}) ORDER BY folded",
                    (guild_id, *keys),
                )
            )
            await self._db.execute(
                f"DELETE FROM blocked_words WHERE guild_id = ? AND folded IN ({marks})", (guild_id, *keys)
            )
        return removed

    async def set_log_channel(self, guild_id: int, channel_id: int | None, *, by: int, now: float) -> None:
        async with self._transaction():
            await self._touch_controls(guild_id, by, now)
            await self._db.execute(
                "UPDATE server_controls SET log_channel_id = ? WHERE guild_id = ?", (channel_id, guild_id)
            )

    async def forget_roles(self, guild_id: int, role_ids: Iterable[int]) -> int:
        ids = list(dict.fromkeys(role_ids))
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        async with self._transaction():
            removed = 0
            for table in ("role_limits", "four_k_roles"):
                removed += await self._changed(
                    f"DELETE FROM {table} WHERE guild_id = ? AND role_id IN ({marks})", (guild_id, *ids)
                )
        return removed

    async def failed_jobs_to_log(self, *, after: tuple[float, int], limit: int) -> list[tuple[JobRecord, int]]:
        at, job_id = after
        ours = ",".join(str(s) for s in sorted(self._ownership.shard_ids))
        # CROSS JOIN keeps jobs as the outer loop: a range of jobs_by_finish, never a server's history.
        rows = await self._rows(
            f"""SELECT jobs.*, server_controls.log_channel_id AS log_channel
               FROM jobs CROSS JOIN server_controls ON server_controls.guild_id = jobs.guild_id
               WHERE jobs.status = ? AND jobs.finished_at >= ?
                 AND (jobs.finished_at > ? OR jobs.id > ?)
                 AND server_controls.log_channel_id IS NOT NULL AND jobs.shard_id IN ({ours})
               ORDER BY jobs.finished_at, jobs.id LIMIT ?""",
            (JobState.FAILED.value, at, at, job_id, limit),
        )
        return [(_job(r), int(r["log_channel"])) for r in rows]

    # -- helpers ---------------------------------------------------------------------------

    # Each read is one trip to aiosqlite's thread (the statement and its rows together): under load
    # every trip also waits its turn in the event loop, so trips, not statements, are what cost.
    async def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        return list(await self._db.execute_fetchall(sql, tuple(params)))

    async def _row(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Row | None:
        rows = await self._rows(sql, params)
        return rows[0] if rows else None

    async def _one(self, sql: str, params: tuple[Any, ...]) -> JobRecord | None:
        row = await self._row(sql, params)
        return _job(row) if row is not None else None

    async def _many(self, sql: str, params: tuple[Any, ...]) -> list[JobRecord]:
        rows = await self._rows(sql, params)
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
