"""PostgreSQL storage through asyncpg: one connection pool, numbered migrations in ``schema_version``.

The store for deployments that outgrow one process: several processes (shards) share the
database, so everything that SQLite serialises with its single write lock is made safe across
processes here with PostgreSQL's advisory locks:

- a quota reservation (:meth:`PostgresStore.create_job`) takes a transaction-level lock keyed on
  the server (on the member, for a direct message) before it reads the usage and inserts the job;
- migrations are applied under a lock, so processes starting together migrate once;
- :meth:`PostgresStore.claim_shards` holds a session-level lock per shard on a connection of its
  own for the life of the store: a second process started for the same shard waits, then gives up.

Behaviour is that of :class:`bot.storage.sqlite.SqliteStore` (the reference): the same return values,
the same refusals and the same order of every list.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import socket
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

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

CONNECT_TIMEOUT = 10.0  # seconds to reach the server and log in before giving up at start-up
POOL_SIZE = 10  # connections at most; the bot's writes are short, and most of its time is waiting
CLAIM_POLL = 0.25  # seconds between two tries for a shard another process holds
CLOSE_TIMEOUT = 10.0  # seconds close() waits for statements under way

# Advisory locks take two 32-bit keys: the first says what is locked (these, all the bot's own), the
# second which one (a shard, a hash of a server or member).
_LOCK_MIGRATE = 0x496D_6701
_LOCK_SHARD = 0x496D_6702
_LOCK_QUOTA = 0x496D_6703
_LOCK_WORDS = 0x496D_6704


class _Db(Protocol):
    """The pool, or one connection of it (inside a transaction)."""

    async def execute(self, query: str, *args: object) -> str: ...
    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]: ...
    async def fetchrow(self, query: str, *args: object) -> asyncpg.Record | None: ...
    async def fetchval(self, query: str, *args: object) -> Any: ...


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files("bot.storage").joinpath("migrations").joinpath("postgres")
    found = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(found)


def redacted(url: str) -> str:
    """``url`` fit for a log line or an error message: its password (in the address or the query) hidden."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            userinfo, _, hostinfo = netloc.rpartition("@")
            netloc = f"{userinfo.partition(':')[0]}:***@{hostinfo}"
        query = urlencode(
            [(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
        )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "(DATABASE_URL, which cannot be parsed)"


def _open_error(where: str, exc: BaseException, timeout: float) -> StoreOpenError | None:
    """What an error met while connecting to ``where`` means to the operator (None: not an open problem)."""
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return StoreOpenError(f"the database {where} does not exist (create it, or check the name in DATABASE_URL)")
    if isinstance(exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError):
        return StoreOpenError(f"cannot log in to the database {where}: {exc} (check the user and password)")
    if isinstance(exc, socket.gaierror):
        host = urlsplit(where).hostname or "?"
        return StoreOpenError(f"cannot connect to the database {where}: unknown host {host}")
    if isinstance(exc, ConnectionRefusedError) or (isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED):
        return StoreOpenError(
            f"cannot connect to the database {where}: connection refused (is PostgreSQL running and listening there?)"
        )
    if isinstance(exc, TimeoutError):
        return StoreOpenError(f"cannot connect to the database {where}: no answer within {timeout:g} s")
    if isinstance(exc, OSError):
        return StoreOpenError(f"cannot connect to the database {where}: {exc.strerror or exc}")
    if isinstance(exc, asyncpg.ClientConfigurationError | ValueError):
        return StoreOpenError(f"DATABASE_URL {where} is not a usable PostgreSQL address: {exc}")
    if isinstance(exc, asyncpg.PostgresError):
        return StoreOpenError(f"cannot use the database {where}: {exc}")
    return None


def _count(status: str) -> int:
    """The rows an INSERT, UPDATE or DELETE changed, from its status (``UPDATE 3``, ``INSERT 0 1``)."""
    return int(status.rsplit(" ", 1)[-1])


class PostgresStore:
    """The :class:`bot.storage.base.Store` on PostgreSQL. Open it with :func:`bot.storage.open_store`."""

    LIST_MAX = 100  # the most rows one history or active-jobs query returns

    def __init__(self, pool: asyncpg.Pool, url: str, ownership: Ownership | None = None) -> None:
        self._pool = pool
        self._url = url
        self._where = redacted(url)
        self._ownership = ownership or Ownership()
        self._me = self._ownership.owner
        self._shard_locks: asyncpg.Connection | None = None  # holds this process's shards

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        ownership: Ownership | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        pool_size: int = POOL_SIZE,
    ) -> PostgresStore:
        """Connect to the database at ``url`` (a ``postgresql://`` URL) and migrate it.
        ``ownership``: the jobs this process may change (default: one process with every job).

        Raises :class:`StoreOpenError` when the database cannot be used: the server cannot be
        reached, the login is refused, the database does not exist, or it was written by a newer
        version of the bot.
        """
        where = redacted(url)
        try:
            pool = await asyncpg.create_pool(url, min_size=1, max_size=pool_size, timeout=connect_timeout)
        except Exception as exc:
            error = _open_error(where, exc, connect_timeout)
            if error is None:
                raise
            raise error from exc
        store = cls(pool, url, ownership)
        try:
            await store._migrate()
        except asyncpg.PostgresError as exc:
            pool.terminate()
            raise StoreOpenError(f"cannot prepare the database {where}: {exc}") from exc
        except BaseException:
            pool.terminate()
            raise
        return store

    @property
    def ownership(self) -> Ownership:
        return self._ownership

    async def close(self) -> None:
        if self._shard_locks is not None:
            locks, self._shard_locks = self._shard_locks, None
            locks.remove_termination_listener(self._shard_locks_lost)
            await locks.close()  # lets go of the shards
        try:
            # Waits for statements under way; one that hangs (a server gone quiet) is not waited for.
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self._pool.close()
        except TimeoutError:
            log.warning("closing the database connections took over %g s: dropped them", CLOSE_TIMEOUT)
            self._pool.terminate()

    # -- start-up --------------------------------------------------------------------------

    async def _migrate(self) -> None:
        migrations = _migrations()
        newest = migrations[-1][0] if migrations else 0
        async with self._pool.acquire() as db:
            while True:
                async with db.transaction():
                    # Processes starting together: one migrates, the others wait here and then
                    # find nothing left to do. One transaction per migration, as on SQLite.
                    await db.execute("SELECT pg_advisory_xact_lock($1, 0)", _LOCK_MIGRATE)
                    current = await self._version(db, create=True)
                    if current > newest:
                        raise StoreOpenError(
                            f"the database {self._where} was written by a newer version of the bot"
                            f" (schema {current}, this version knows up to {newest})"
                        )
                    pending = [(v, script) for v, script in migrations if v > current]
                    if not pending:
                        return
                    version, script = pending[0]
                    log.info("applying database migration %04d", version)
                    await db.execute(script)
                    await db.execute("UPDATE schema_version SET version = $1", version)

    async def _version(self, db: _Db, *, create: bool = False) -> int:
        if not await db.fetchval("SELECT to_regclass('schema_version') IS NOT NULL"):
            if not create:
                return 0
            await db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            await db.execute("INSERT INTO schema_version (version) VALUES (0)")
        return int(await db.fetchval("SELECT version FROM schema_version"))

    async def schema_version(self) -> int:
        return await self._version(self._pool)

    async def claim_shards(self, *, wait: float = CLAIM_WAIT) -> int:
        await self._hold_shards(wait)
        # A job's shard is worked out again from its server, so a change of SHARD_COUNT moves
        # unfinished jobs to the shards now receiving them.
        shard = f"COALESCE((guild_id >> 22) % {self._ownership.shard_count}, 0)"
        return _count(
            await self._pool.execute(
                f"""UPDATE jobs SET shard_id = {shard}, owner = $1
                    WHERE {_CLAIMED} AND {shard} = ANY($2::int[])
                      AND (owner IS DISTINCT FROM $1 OR shard_id != {shard})""",
                self._me,
                sorted(self._ownership.shard_ids),
            )
        )

    async def _hold_shards(self, wait: float) -> None:
        """Take a session lock per shard on a connection kept open until :meth:`close`, waiting up to
        ``wait`` seconds in all for shards another live process holds."""
        if self._shard_locks is not None:
            return
        try:
            locks = await asyncpg.connect(self._url, timeout=CONNECT_TIMEOUT)
        except Exception as exc:
            error = _open_error(self._where, exc, CONNECT_TIMEOUT)
            if error is None:
                raise
            raise error from exc
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        said = False
        try:
            for shard in sorted(self._ownership.shard_ids):
                while not await locks.fetchval("SELECT pg_try_advisory_lock($1, $2)", _LOCK_SHARD, shard):
                    left = deadline - loop.time()
                    if left <= 0:
                        raise StoreOpenError(
                            f"shard {shard} is held by another process using the database {self._where}"
                            f" (is another copy of the bot running for shard {shard}?); gave up after {wait:g} s"
                        )
                    if not said:
                        log.warning(
                            "shard %d is held by another process using the database; waiting up to %g s for it",
                            shard,
                            wait,
                        )
                        said = True
                    await asyncio.sleep(min(CLAIM_POLL, left))  # a lock held elsewhere sends no event: poll
        except BaseException:
            await locks.close()
            raise
        locks.add_termination_listener(self._shard_locks_lost)
        self._shard_locks = locks

    def _shard_locks_lost(self, _connection: object) -> None:
        log.error(
            "lost the connection holding shards %s: another process could now take them (restart this one)",
            ",".join(map(str, sorted(self._ownership.shard_ids))),
        )

    # -- helpers ---------------------------------------------------------------------------

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[_Db]:
        async with self._pool.acquire() as db, db.transaction():
            yield db

    async def _refused(self, job_id: int) -> None:
        """After a conditional write changed nothing: raise if that is because the job is not ours."""
        row = await self._pool.fetchrow("SELECT owner FROM jobs WHERE id = $1", job_id)
        if row is not None and row[0] != self._me:
            raise NotOwnerError(job_id, row[0])

    async def _changed_job(self, sql: str, *args: object) -> JobRecord | None:
        """Run one conditional UPDATE of a job and return the job as it is after it (``None``: the
        condition held for no row)."""
        row = await self._pool.fetchrow(f"{sql} RETURNING *", *args)
        return _job(row) if row is not None else None

    async def _owned_job(self, job_id: int, sql: str, *args: object) -> JobRecord:
        """:meth:`_changed_job` for an UPDATE of job ``job_id`` conditioned on its owner, which must change it."""
        job = await self._changed_job(sql, *args)
        if job is None:
            await self._refused(job_id)
            return await self._require(job_id)  # raises LookupError: no such job
        return job

    async def _ours_or_left(self, job: JobRecord | None, job_id: int) -> JobRecord:
        """A conditional change that may do nothing to our job (it was past it): the job either way."""
        if job is None:
            await self._refused(job_id)
            return await self._require(job_id)  # ours, and left as it was
        return job

    async def _one(self, sql: str, *args: object) -> JobRecord | None:
        row = await self._pool.fetchrow(sql, *args)
        return _job(row) if row is not None else None

    async def _many(self, sql: str, *args: object) -> list[JobRecord]:
        return [_job(r) for r in await self._pool.fetch(sql, *args)]

    async def _require(self, job_id: int) -> JobRecord:
        job = await self.get_job(job_id)
        if job is None:
            raise LookupError(f"job {job_id} does not exist")
        return job

    # -- jobs ------------------------------------------------------------------------------

    async def create_job(
        self, new: NewJob, *, now: float, default_4k_weight: int, enforce_quota: bool = True
    ) -> JobRecord | QuotaRefusal:
        day = quota.utc_day(now)
        async with self._transaction() as db:
            # Every reservation in a server (a direct message: by a member) waits here for the one
            # before it to commit, so each reads the usage including all the jobs reserved before.
            key = f"guild:{new.guild_id}" if new.guild_id is not None else f"user:{new.user_id}"
            await db.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _LOCK_QUOTA, key)
            inputs = None
            if new.guild_id is not None:
                inputs = QuotaInputs(
                    await self._quota(db, new.guild_id),
                    await self._member_controls(db, new.guild_id, new.user_id),
                    tuple(await self._role_limits(db, new.guild_id, new.role_ids)),
                    await self._usage(db, new.guild_id, new.user_id, day=day),
                )
            cost, refusal = quota.reservation(
                new.resolution, new.role_ids, inputs, default_4k_weight=default_4k_weight, enforce=enforce_quota
            )
            if refusal is not None:
                return refusal
            shard = self._ownership.shard_of(new.guild_id)
            row = await db.fetchrow(
                """INSERT INTO jobs (status, user_id, guild_id, channel_id, message_id, application_id,
                       interaction_token, token_expires_at, upload_limit, prompt, aspect_ratio, resolution,
                       with_text, image_urls, cost, quota_day, created_at, updated_at, parent_job_id, action,
                       locale, guild_locale, shard_id, owner)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17, $18, $19,
                       $20, $21, $22, $23)
                   RETURNING *""",
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
                new.parent_job_id,
                new.action,
                new.locale,
                new.guild_locale,
                shard,
                self._me if shard in self._ownership.shard_ids else None,
            )
        assert row is not None
        return _job(row)

    async def get_job(self, job_id: int) -> JobRecord | None:
        return await self._one("SELECT * FROM jobs WHERE id = $1", job_id)

    async def job_by_message(self, message_id: int) -> JobRecord | None:
        return await self._one("SELECT * FROM jobs WHERE message_id = $1 ORDER BY id DESC LIMIT 1", message_id)

    async def active_jobs(self) -> list[JobRecord]:
        return await self._many(f"SELECT * FROM jobs WHERE status IN ({_ACTIVE}) AND owner = $1 ORDER BY id", self._me)

    async def active_jobs_for_user(self, user_id: int, guild_id: int | None) -> list[JobRecord]:
        if guild_id is None:
            return await self._many(
                f"SELECT * FROM jobs WHERE status IN ({_ACTIVE}) AND user_id = $1 AND guild_id IS NULL ORDER BY id",
                user_id,
            )
        return await self._many(
            f"SELECT * FROM jobs WHERE status IN ({_ACTIVE}) AND user_id = $1 AND guild_id = $2 ORDER BY id",
            user_id,
            guild_id,
        )

    async def active_counts(self) -> dict[str, int]:
        rows = await self._pool.fetch(
            f"SELECT status, COUNT(*) FROM jobs WHERE status IN ({_ACTIVE}) AND owner = $1 GROUP BY status", self._me
        )
        return {str(row[0]): int(row[1]) for row in rows}

    async def ping(self) -> bool:
        return bool(await self._pool.fetchval("SELECT 1") == 1)

    async def untold_jobs(self, *, since: float) -> list[JobRecord]:
        return await self._many(
            f"""SELECT * FROM jobs WHERE status IN ({_UNTOLD}) AND told_at IS NULL AND finished_at >= $1 AND owner = $2
                ORDER BY id""",
            since,
            self._me,
        )

    async def begin_submit(self, job_id: int, *, now: float) -> JobRecord | None:
        """Record that the submit is about to leave, unless the job was cancelled or already sent."""
        job = await self._changed_job(
            """UPDATE jobs SET submit_started_at = $1, updated_at = $1
               WHERE id = $2 AND status = $3 AND submit_started_at IS NULL AND cancel_requested_at IS NULL
                 AND owner = $4""",
            now,
            job_id,
            JobState.PENDING.value,
            self._me,
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
            """UPDATE jobs SET status = $1, request_id = $2, status_url = $3, response_url = $4, cancel_url = $5,
                   queue_position = $6, submitted_at = $7, updated_at = $7 WHERE id = $8 AND status = $9 AND owner = $10""",
            JobState.QUEUED.value,
            request_id,
            status_url,
            response_url,
            cancel_url,
            queue_position,
            now,
            job_id,
            JobState.PENDING.value,
            self._me,
        )
        return await self._ours_or_left(job, job_id)

    async def update_progress(
        self, job_id: int, state: JobState, *, queue_position: int | None, started_at: float | None, now: float
    ) -> JobRecord:
        job = await self._changed_job(
            f"""UPDATE jobs SET status = $1, queue_position = $2, started_at = COALESCE(started_at, $3), updated_at = $4
                WHERE id = $5 AND status IN ({_FOLLOWED}) AND owner = $6""",
            state.value,
            queue_position,
            started_at,
            now,
            job_id,
            self._me,
        )
        return await self._ours_or_left(job, job_id)

    async def mark_delivering(self, job_id: int, *, now: float) -> JobRecord:
        return await self.update_progress(job_id, JobState.DELIVERING, queue_position=None, started_at=now, now=now)

    async def request_cancel(self, job_id: int, *, user_id: int, now: float) -> JobRecord | None:
        job = await self._changed_job(
            f"""UPDATE jobs SET cancel_requested_by = $1, cancel_requested_at = $2, updated_at = $2
                WHERE id = $3 AND cancel_requested_at IS NULL AND status IN ({_ACTIVE}) AND owner = $4""",
            user_id,
            now,
            job_id,
            self._me,
        )
        if job is None:
            await self._refused(job_id)
        return job

    async def mark_delivery_attempt(self, job_id: int, *, now: float) -> JobRecord:
        return await self._owned_job(
            job_id,
            "UPDATE jobs SET delivery_attempted_at = $1, updated_at = $1 WHERE id = $2 AND owner = $3",
            now,
            job_id,
            self._me,
        )

    async def forget_token(self, job_id: int) -> None:
        changed = await self._pool.execute(
            "UPDATE jobs SET interaction_token = NULL WHERE id = $1 AND owner = $2", job_id, self._me
        )
        if not _count(changed):
            await self._refused(job_id)

    async def clear_cancel(self, job_id: int, *, now: float) -> JobRecord:
        job = await self._changed_job(
            f"""UPDATE jobs SET cancel_requested_by = NULL, cancel_requested_at = NULL, updated_at = $1
                WHERE id = $2 AND status IN ({_ACTIVE}) AND owner = $3""",
            now,
            job_id,
            self._me,
        )
        return await self._ours_or_left(job, job_id)

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
            f"""UPDATE jobs SET status = $1, finished_at = $2, updated_at = $2, error_type = $3, error_message = $4,
                    queue_position = NULL, cost = CASE WHEN $5 THEN 0 ELSE cost END,
                    told_at = CASE WHEN $6 THEN $2::double precision ELSE NULL END,
                    interaction_token = CASE WHEN $6 THEN NULL ELSE interaction_token END
                WHERE id = $7 AND status IN ({_ACTIVE}) AND owner = $8""",
            state.value,
            now,
            error_type,
            error_message,
            refund,
            told,
            job_id,
            self._me,
        )
        if job is None:
            await self._refused(job_id)
        return job

    async def mark_told(self, job_id: int, *, now: float) -> None:
        # The interaction token is a credential: once the member has been told, it is not needed.
        changed = await self._pool.execute(
            "UPDATE jobs SET told_at = COALESCE(told_at, $1), interaction_token = NULL WHERE id = $2 AND owner = $3",
            now,
            job_id,
            self._me,
        )
        if not _count(changed):
            await self._refused(job_id)

    async def set_reply(self, job_id: int, *, message_id: int | None, token_dead: bool, now: float) -> JobRecord:
        return await self._owned_job(
            job_id,
            """UPDATE jobs SET message_id = COALESCE($1, message_id),
                   token_expires_at = CASE WHEN $2 THEN LEAST(COALESCE(token_expires_at, $3), $3)
                                      ELSE token_expires_at END,
                   updated_at = $3 WHERE id = $4 AND owner = $5""",
            message_id,
            token_dead,
            now,
            job_id,
            self._me,
        )

    async def history(
        self, guild_id: int, user_id: int, *, before_id: int | None = None, after_id: int | None = None, limit: int
    ) -> list[JobRecord]:
        # A range of the index jobs_by_member (guild_id, user_id, id), read from either end.
        limit = max(1, min(limit, self.LIST_MAX))
        where = "guild_id = $1 AND user_id = $2"
        if after_id is not None:
            newer = await self._many(
                f"SELECT * FROM jobs WHERE {where} AND id > $3 ORDER BY id ASC LIMIT $4",
                guild_id,
                user_id,
                after_id,
                limit,
            )
            return newer[::-1]
        if before_id is not None:
            return await self._many(
                f"SELECT * FROM jobs WHERE {where} AND id < $3 ORDER BY id DESC LIMIT $4",
                guild_id,
                user_id,
                before_id,
                limit,
            )
        return await self._many(f"SELECT * FROM jobs WHERE {where} ORDER BY id DESC LIMIT $3", guild_id, user_id, limit)

    async def active_jobs_in_guild(self, guild_id: int, *, user_id: int | None = None, limit: int) -> list[JobRecord]:
        limit = max(1, min(limit, self.LIST_MAX))
        if user_id is None:
            return await self._many(
                f"SELECT * FROM jobs WHERE status IN ({_ACTIVE}) AND guild_id = $1 ORDER BY id LIMIT $2",
                guild_id,
                limit,
            )
        return await self._many(
            f"SELECT * FROM jobs WHERE status IN ({_ACTIVE}) AND guild_id = $1 AND user_id = $2 ORDER BY id LIMIT $3",
            guild_id,
            user_id,
            limit,
        )

    async def active_counts_in_guild(self, guild_id: int) -> dict[str, int]:
        rows = await self._pool.fetch(
            f"SELECT status, COUNT(*) FROM jobs WHERE status IN ({_ACTIVE}) AND guild_id = $1 GROUP BY status",
            guild_id,
        )
        return {str(row[0]): int(row[1]) for row in rows}

    async def waiting_summary(self) -> tuple[int, int | None]:
        row = await self._pool.fetchrow(
            "SELECT COUNT(*), MAX(queue_position) FROM jobs WHERE status IN ($1, $2)",
            JobState.PENDING.value,
            JobState.QUEUED.value,
        )
        if row is None:
            return 0, None
        return int(row[0]), None if row[1] is None else int(row[1])

    # -- bookkeeping -------------------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        value = await self._pool.fetchval("SELECT value FROM meta WHERE key = $1", key)
        return None if value is None else str(value)

    async def set_meta(self, key: str, value: str) -> None:
        await self._pool.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            key,
            value,
        )

    # -- quotas ----------------------------------------------------------------------------

    async def get_quota(self, guild_id: int) -> QuotaSettings:
        return await self._quota(self._pool, guild_id)

    async def _quota(self, db: _Db, guild_id: int, *, lock: bool = False) -> QuotaSettings:
        row = await db.fetchrow(
            "SELECT * FROM quota_settings WHERE guild_id = $1" + (" FOR UPDATE" if lock else ""), guild_id
        )
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
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO quota_settings (guild_id) VALUES ($1) ON CONFLICT (guild_id) DO NOTHING", guild_id
            )
            before = await self._quota(db, guild_id, lock=True)  # the audit's old values are the ones replaced
            for name, value in changes.items():
                old = getattr(before, name)
                await db.execute(f"UPDATE quota_settings SET {name} = $1 WHERE guild_id = $2", value, guild_id)
                await db.execute(
                    "INSERT INTO quota_changes (guild_id, user_id, field, old_value, new_value, at)"
                    " VALUES ($1, $2, $3, $4, $5, $6)",
                    guild_id,
                    user_id,
                    name,
                    old,
                    value,
                    now,
                )
            await db.execute(
                "UPDATE quota_settings SET updated_by = $1, updated_at = $2 WHERE guild_id = $3", user_id, now, guild_id
            )
        return await self.get_quota(guild_id)

    async def quota_changes(self, guild_id: int, *, limit: int = 10) -> list[QuotaChange]:
        rows = await self._pool.fetch(
            "SELECT * FROM quota_changes WHERE guild_id = $1 ORDER BY at DESC, id DESC LIMIT $2", guild_id, limit
        )
        return [
            QuotaChange(r["guild_id"], r["user_id"], r["field"], r["old_value"], r["new_value"], r["at"]) for r in rows
        ]

    async def usage(self, guild_id: int | None, user_id: int, *, day: str) -> Usage:
        return await self._usage(self._pool, guild_id, user_id, day=day)

    async def _usage(self, db: _Db, guild_id: int | None, user_id: int, *, day: str) -> Usage:
        # Each through its own index (migration 0009): a new job's quota check reads the day's entries
        # of the server's index and the member's active jobs, never the server's whole history.
        where = "guild_id IS NULL" if guild_id is None else "guild_id = $3"
        row = await db.fetchrow(
            f"""SELECT
                    (SELECT COALESCE(SUM(cost), 0) FROM jobs
                        WHERE {where} AND quota_day = $2 AND user_id = $1)::bigint AS user_used,
                    (SELECT COALESCE(SUM(cost), 0) FROM jobs WHERE {where} AND quota_day = $2)::bigint AS guild_used,
                    (SELECT COUNT(*) FROM jobs
                        WHERE {where} AND user_id = $1 AND status IN ({_ACTIVE})) AS user_active""",
            *((user_id, day) if guild_id is None else (user_id, day, guild_id)),
        )
        assert row is not None
        return Usage(user_used=row["user_used"], guild_used=row["guild_used"], user_active=row["user_active"])

    async def reset_usage(self, guild_id: int, *, user_id: int | None, day: str, by: int, now: float) -> int:
        where = "guild_id = $1 AND quota_day = $2 AND cost > 0" + (" AND user_id = $4" if user_id is not None else "")
        params: tuple[object, ...] = (guild_id, day, now) + ((user_id,) if user_id is not None else ())
        async with self._transaction() as db:
            # One statement: the units given back are exactly those it set to zero.
            cleared = int(
                await db.fetchval(
                    f"""WITH old AS (SELECT id, cost FROM jobs WHERE {where} FOR UPDATE),
                             cleared AS (UPDATE jobs SET cost = 0, updated_at = $3 FROM old
                                         WHERE jobs.id = old.id RETURNING old.cost)
                        SELECT COALESCE(SUM(cost), 0)::bigint FROM cleared""",
                    *params,
                )
            )
            await db.execute(
                "INSERT INTO quota_changes (guild_id, user_id, field, old_value, new_value, at)"
                " VALUES ($1, $2, $3, $4, $5, $6)",
                guild_id,
                by,
                f"reset:{user_id}" if user_id is not None else "reset:server",
                cleared,
                0,
                now,
            )
        return cleared

    # -- server controls -------------------------------------------------------------------

    async def server_controls(self, guild_id: int) -> ServerControls:
        row = await self._pool.fetchrow("SELECT * FROM server_controls WHERE guild_id = $1", guild_id)
        four_k_roles = tuple(
            int(r[0])
            for r in await self._pool.fetch(
                "SELECT role_id FROM four_k_roles WHERE guild_id = $1 ORDER BY set_at, role_id", guild_id
            )
        )
        words = tuple(
            str(r[0])
            for r in await self._pool.fetch(
                'SELECT phrase FROM blocked_words WHERE guild_id = $1 ORDER BY folded COLLATE "C"', guild_id
            )
        )
        return ServerControls(
            guild_id=guild_id,
            four_k=FourKAccess(row["four_k"]) if row is not None else FourKAccess.EVERYONE,
            four_k_roles=four_k_roles,
            blocked_words=words,
            log_channel_id=row["log_channel_id"] if row is not None else None,
            role_limits=tuple(await self._role_limits(self._pool, guild_id)),
            updated_by=row["updated_by"] if row is not None else None,
            updated_at=row["updated_at"] if row is not None else None,
        )

    async def _role_limits(self, db: _Db, guild_id: int, role_ids: Sequence[int] | None = None) -> list[RoleLimit]:
        """The server's role allowances (only those of ``role_ids`` when given)."""
        if role_ids is None:
            rows = await db.fetch("SELECT * FROM role_limits WHERE guild_id = $1 ORDER BY set_at, role_id", guild_id)
        elif not role_ids:
            return []
        else:
            rows = await db.fetch(
                "SELECT * FROM role_limits WHERE guild_id = $1 AND role_id = ANY($2::bigint[]) ORDER BY set_at, role_id",
                guild_id,
                list(role_ids),
            )
        return [RoleLimit(r["role_id"], r["daily"], r["set_by"], r["set_at"]) for r in rows]

    async def member_controls(self, guild_id: int, user_id: int) -> MemberControls:
        return await self._member_controls(self._pool, guild_id, user_id)

    async def _member_controls(self, db: _Db, guild_id: int, user_id: int) -> MemberControls:
        row = await db.fetchrow(
            """SELECT l.daily AS limit_daily, l.set_by AS limit_by, l.set_at AS limit_at,
                      b.set_by AS block_by, b.set_at AS block_at
               FROM (SELECT 1) AS one
               LEFT JOIN member_limits AS l ON l.guild_id = $1 AND l.user_id = $2
               LEFT JOIN blocked_members AS b ON b.guild_id = $1 AND b.user_id = $2""",
            guild_id,
            user_id,
        )
        assert row is not None
        return MemberControls(
            limit=MemberLimit(user_id, row["limit_daily"], row["limit_by"], row["limit_at"])
            if row["limit_by"] is not None
            else None,
            block=MemberBlock(user_id, row["block_by"], row["block_at"]) if row["block_by"] is not None else None,
        )

    async def member_limits(self, guild_id: int, *, limit: int) -> list[MemberLimit]:
        rows = await self._pool.fetch(
            "SELECT * FROM member_limits WHERE guild_id = $1 ORDER BY set_at DESC, user_id LIMIT $2", guild_id, limit
        )
        return [MemberLimit(r["user_id"], r["daily"], r["set_by"], r["set_at"]) for r in rows]

    async def blocked_members(self, guild_id: int, *, limit: int) -> list[MemberBlock]:
        rows = await self._pool.fetch(
            "SELECT * FROM blocked_members WHERE guild_id = $1 ORDER BY set_at DESC, user_id LIMIT $2", guild_id, limit
        )
        return [MemberBlock(r["user_id"], r["set_by"], r["set_at"]) for r in rows]

    @staticmethod
    async def _touch_controls(db: _Db, guild_id: int, by: int, now: float) -> None:
        """Inside a transaction: make sure the server's row exists and note who changed it, when."""
        await db.execute(
            """INSERT INTO server_controls (guild_id, updated_by, updated_at) VALUES ($1, $2, $3)
               ON CONFLICT (guild_id) DO UPDATE SET updated_by = excluded.updated_by, updated_at = excluded.updated_at""",
            guild_id,
            by,
            now,
        )

    async def set_role_limit(self, guild_id: int, role_id: int, daily: int | None, *, by: int, now: float) -> None:
        async with self._transaction() as db:
            await db.execute(
                """INSERT INTO role_limits (guild_id, role_id, daily, set_by, set_at) VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (guild_id, role_id) DO UPDATE
                   SET daily = excluded.daily, set_by = excluded.set_by, set_at = excluded.set_at""",
                guild_id,
                role_id,
                daily,
                by,
                now,
            )
            await self._touch_controls(db, guild_id, by, now)

    async def remove_role_limit(self, guild_id: int, role_id: int) -> bool:
        return bool(
            _count(
                await self._pool.execute(
                    "DELETE FROM role_limits WHERE guild_id = $1 AND role_id = $2", guild_id, role_id
                )
            )
        )

    async def set_member_limit(self, guild_id: int, user_id: int, daily: int | None, *, by: int, now: float) -> None:
        async with self._transaction() as db:
            await db.execute(
                """INSERT INTO member_limits (guild_id, user_id, daily, set_by, set_at) VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (guild_id, user_id) DO UPDATE
                   SET daily = excluded.daily, set_by = excluded.set_by, set_at = excluded.set_at""",
                guild_id,
                user_id,
                daily,
                by,
                now,
            )
            await self._touch_controls(db, guild_id, by, now)

    async def remove_member_limit(self, guild_id: int, user_id: int) -> bool:
        return bool(
            _count(
                await self._pool.execute(
                    "DELETE FROM member_limits WHERE guild_id = $1 AND user_id = $2", guild_id, user_id
                )
            )
        )

    async def block_member(self, guild_id: int, user_id: int, *, by: int, now: float) -> bool:
        async with self._transaction() as db:
            added = _count(
                await db.execute(
                    """INSERT INTO blocked_members (guild_id, user_id, set_by, set_at) VALUES ($1, $2, $3, $4)
                       ON CONFLICT (guild_id, user_id) DO NOTHING""",
                    guild_id,
                    user_id,
                    by,
                    now,
                )
            )
            await self._touch_controls(db, guild_id, by, now)
        return bool(added)

    async def unblock_member(self, guild_id: int, user_id: int) -> bool:
        return bool(
            _count(
                await self._pool.execute(
                    "DELETE FROM blocked_members WHERE guild_id = $1 AND user_id = $2", guild_id, user_id
                )
            )
        )

    async def set_four_k(self, guild_id: int, access: FourKAccess, *, by: int, now: float) -> None:
        async with self._transaction() as db:
            await self._touch_controls(db, guild_id, by, now)
            await db.execute(
                "UPDATE server_controls SET four_k = $1 WHERE guild_id = $2", FourKAccess(access).value, guild_id
            )

    async def add_four_k_role(self, guild_id: int, role_id: int, *, by: int, now: float) -> FourKAccess:
        async with self._transaction() as db:
            await db.execute(
                """INSERT INTO four_k_roles (guild_id, role_id, set_by, set_at) VALUES ($1, $2, $3, $4)
                   ON CONFLICT (guild_id, role_id) DO NOTHING""",
                guild_id,
                role_id,
                by,
                now,
            )
            await self._touch_controls(db, guild_id, by, now)
            access = await db.fetchval(
                """UPDATE server_controls SET four_k = CASE WHEN four_k = $2 THEN $3 ELSE four_k END
                   WHERE guild_id = $1 RETURNING four_k""",
                guild_id,
                FourKAccess.EVERYONE.value,
                FourKAccess.ROLES.value,
            )
        return FourKAccess(access)

    async def remove_four_k_role(self, guild_id: int, role_id: int) -> bool:
        return bool(
            _count(
                await self._pool.execute(
                    "DELETE FROM four_k_roles WHERE guild_id = $1 AND role_id = $2", guild_id, role_id
                )
            )
        )

    async def add_blocked_words(
        self, guild_id: int, phrases: Sequence[str], *, by: int, now: float, max_words: int
    ) -> WordsAdded | None:
        wanted: dict[str, str] = {}
        for phrase in phrases:
            key = quota.phrase_key(phrase)
            if key and key not in wanted:
                wanted[key] = phrase.strip()
        async with self._transaction() as db:
            # Two admins adding at once: the second counts the first's words against the cap.
            await db.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _LOCK_WORDS, str(guild_id))
            stored = {
                str(r[0]) for r in await db.fetch("SELECT folded FROM blocked_words WHERE guild_id = $1", guild_id)
            }
            new = {k: v for k, v in wanted.items() if k not in stored}
            if len(stored) + len(new) > max_words:
                return None
            if new:
                await db.execute(
                    """INSERT INTO blocked_words (guild_id, folded, phrase, set_by, set_at)
                       SELECT $1, folded, phrase, $4, $5 FROM unnest($2::text[], $3::text[]) AS w (folded, phrase)""",
                    guild_id,
                    list(new),
                    list(new.values()),
                    by,
                    now,
                )
            await self._touch_controls(db, guild_id, by, now)
        present = tuple(v for k, v in wanted.items() if k in stored)
        return WordsAdded(added=tuple(new.values()), present=present, total=len(stored) + len(new))

    async def remove_blocked_words(self, guild_id: int, phrases: Sequence[str]) -> tuple[str, ...]:
        keys = list(dict.fromkeys(k for k in (quota.phrase_key(p) for p in phrases) if k))
        if not keys:
            return ()
        rows = await self._pool.fetch(
            """WITH removed AS (DELETE FROM blocked_words WHERE guild_id = $1 AND folded = ANY($2::text[])
                                RETURNING folded, phrase)
               SELECT phrase FROM removed ORDER BY folded COLLATE "C" """,
            guild_id,
            keys,
        )
        return tuple(str(r[0]) for r in rows)

    async def set_log_channel(self, guild_id: int, channel_id: int | None, *, by: int, now: float) -> None:
        async with self._transaction() as db:
            await self._touch_controls(db, guild_id, by, now)
            await db.execute("UPDATE server_controls SET log_channel_id = $1 WHERE guild_id = $2", channel_id, guild_id)

    async def forget_roles(self, guild_id: int, role_ids: Iterable[int]) -> int:
        ids = list(dict.fromkeys(role_ids))
        if not ids:
            return 0
        async with self._transaction() as db:
            removed = 0
            for table in ("role_limits", "four_k_roles"):
                removed += _count(
                    await db.execute(
                        f"DELETE FROM {table} WHERE guild_id = $1 AND role_id = ANY($2::bigint[])", guild_id, ids
                    )
                )
        return removed

    async def failed_jobs_to_log(self, *, after: tuple[float, int], limit: int) -> list[tuple[JobRecord, int]]:
        at, job_id = after
        rows = await self._pool.fetch(
            """SELECT jobs.*, server_controls.log_channel_id AS log_channel
               FROM jobs JOIN server_controls ON server_controls.guild_id = jobs.guild_id
               WHERE jobs.status = $1 AND jobs.finished_at >= $2
                 AND (jobs.finished_at > $2 OR jobs.id > $3)
                 AND server_controls.log_channel_id IS NOT NULL AND jobs.shard_id = ANY($4::int[])
               ORDER BY jobs.finished_at, jobs.id LIMIT $5""",
            JobState.FAILED.value,
            at,
            job_id,
            sorted(self._ownership.shard_ids),
            limit,
        )
        return [(_job(r), int(r["log_channel"])) for r in rows]
