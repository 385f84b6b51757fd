"""The storage interface the rest of the bot is written against."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from bot.models import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    FourKAccess,
    JobRecord,
    JobState,
    MemberBlock,
    MemberControls,
    MemberLimit,
    NewJob,
    Ownership,
    QuotaChange,
    QuotaRefusal,
    QuotaSettings,
    ServerControls,
    Usage,
    WordsAdded,
)

# How long :meth:`Store.claim_shards` waits for a shard another live process holds before giving up.
CLAIM_WAIT = 30.0


# The quota settings /quota set may change (columns of quota_settings).
QUOTA_FIELDS = ("user_daily", "guild_daily", "max_concurrent", "weight_4k")

# SQL both backends share (the states are fixed strings, never input).
SQL_ACTIVE = ",".join(f"'{s.value}'" for s in ACTIVE_STATES)
# States a status reading may still move a job out of (DELIVERING is past the upstream's part).
SQL_FOLLOWED = ",".join(f"'{s.value}'" for s in (JobState.PENDING, JobState.QUEUED, JobState.RUNNING))
SQL_UNTOLD = f"'{JobState.FAILED.value}','{JobState.CANCELLED.value}'"
# Jobs a process takes with its shards: unfinished, or ended without the member told yet.
SQL_CLAIMED = f"(status IN ({SQL_ACTIVE}) OR (status IN ({SQL_UNTOLD}) AND told_at IS NULL))"
assert {JobState.FAILED, JobState.CANCELLED} < TERMINAL_STATES


class Row(Protocol):
    """A database row read by column name (``sqlite3.Row``, ``asyncpg.Record``)."""

    def __getitem__(self, key: str, /) -> Any: ...


class StoreOpenError(Exception):
    """The database cannot be used at start-up; the message, naming the database, is for the operator."""


class NotOwnerError(Exception):
    """A job's state change was refused: the job belongs to another process (another shard's owner,
    or this shard's owner since a newer claim). The caller stops following the job."""

    def __init__(self, job_id: int, owner: str | None) -> None:
        super().__init__(f"job {job_id} is owned by {owner or 'nobody yet'}, not by this process")
        self.job_id = job_id
        self.owner = owner


class Store(Protocol):
    """Every read and write of durable state. Implementations must make ``create_job`` atomic.

    Ownership (sharding): a store is opened for one :class:`Ownership`. Every state change of a job
    (from :meth:`begin_submit` to :meth:`set_reply`) is conditioned, in the same statement, on the job
    being owned by it, and raises :class:`NotOwnerError` when it is not. :meth:`active_jobs`,
    :meth:`untold_jobs`, :meth:`active_counts` and :meth:`failed_jobs_to_log` see only this
    process's jobs; reads for display (:meth:`get_job`, :meth:`history`, ...) see every job.
    """

    @property
    def ownership(self) -> Ownership: ...

    async def close(self) -> None: ...

    async def claim_shards(self, *, wait: float = CLAIM_WAIT) -> int:
        """Take this process's shards and their unfinished (or not yet told) jobs; returns how many
        jobs changed owner. Called once at start, before resuming. Where several processes share the
        database, a shard held by another live process is waited for (with a log line) and
        :class:`StoreOpenError` is raised after ``wait`` seconds."""
        ...

    # -- jobs ------------------------------------------------------------------------------
    async def create_job(
        self, new: NewJob, *, now: float, default_4k_weight: int, enforce_quota: bool = True
    ) -> JobRecord | QuotaRefusal:
        """Check the quota and insert the job (state PENDING) in one transaction. The check refuses a
        blocked member, and takes the member's daily limit from their override, else their roles'
        allowances (``new.role_ids``), else the server's default (see :mod:`bot.quota`)."""
        ...

    async def get_job(self, job_id: int) -> JobRecord | None: ...
    async def job_by_message(self, message_id: int) -> JobRecord | None: ...
    async def active_jobs(self) -> list[JobRecord]:
        """Unfinished jobs owned by this process, oldest first."""
        ...

    async def active_jobs_for_user(self, user_id: int, guild_id: int | None) -> list[JobRecord]: ...

    async def active_counts(self) -> dict[str, int]:
        """This process's unfinished jobs by state (for the metrics)."""
        ...

    async def ping(self) -> bool:
        """A cheap query: the database answers (for the health check)."""
        ...

    async def untold_jobs(self, *, since: float) -> list[JobRecord]:
        """This process's jobs that failed or were cancelled since ``since`` whose member has not been
        told yet."""
        ...

    async def begin_submit(self, job_id: int, *, now: float) -> JobRecord | None:
        """Mark the submit as started (two-phase submit). ``None`` when the job may not be submitted:
        it was cancelled, already submitted, or is no longer PENDING."""
        ...

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
    ) -> JobRecord: ...

    async def update_progress(
        self, job_id: int, state: JobState, *, queue_position: int | None, started_at: float | None, now: float
    ) -> JobRecord: ...

    async def mark_delivering(self, job_id: int, *, now: float) -> JobRecord:
        """The upstream finished the job; the result is to be fetched and shown."""
        ...

    async def request_cancel(self, job_id: int, *, user_id: int, now: float) -> JobRecord | None:
        """Record a cancel request unless one is recorded already or the job ended (then ``None``)."""
        ...

    async def mark_delivery_attempt(self, job_id: int, *, now: float) -> JobRecord: ...
    async def forget_token(self, job_id: int) -> None:
        """Drop a finished job's interaction token: it is a credential and no longer needed."""
        ...

    async def clear_cancel(self, job_id: int, *, now: float) -> JobRecord:
        """Forget a cancel request that the upstream refused (only while the job is active)."""
        ...

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
        """Move an active job to a terminal state; ``refund`` gives its reserved quota back, ``told``
        says the member already knows. Terminal states are final: ``None`` if the job had ended."""
        ...

    async def mark_told(self, job_id: int, *, now: float) -> None:
        """The member has been shown the job's terminal state (its interaction token is dropped)."""
        ...

    async def set_reply(self, job_id: int, *, message_id: int | None, token_dead: bool, now: float) -> JobRecord:
        """Record a new reply message (posted when the original was gone) and/or a dead token."""
        ...

    async def history(
        self, guild_id: int, user_id: int, *, before_id: int | None = None, after_id: int | None = None, limit: int
    ) -> list[JobRecord]:
        """A member's jobs in a server, newest first, at most ``limit``: the newest ones, those just
        older than ``before_id``, or (paging back) those just newer than ``after_id``."""
        ...

    async def active_jobs_in_guild(self, guild_id: int, *, user_id: int | None = None, limit: int) -> list[JobRecord]:
        """Unfinished jobs in a server (only one member's with ``user_id``), oldest first, at most ``limit``."""
        ...

    async def active_counts_in_guild(self, guild_id: int) -> dict[str, int]:
        """Unfinished jobs in a server by state (states without jobs are left out)."""
        ...

    async def waiting_summary(self) -> tuple[int, int | None]:
        """Jobs not generating yet (PENDING or QUEUED) in all servers, and the highest queue position
        the upstream reported among them (``None`` when none is known)."""
        ...

    # -- bookkeeping -------------------------------------------------------------------------
    async def get_meta(self, key: str) -> str | None: ...
    async def set_meta(self, key: str, value: str) -> None: ...

    # -- quotas ----------------------------------------------------------------------------
    async def get_quota(self, guild_id: int) -> QuotaSettings: ...
    async def set_quota(
        self, guild_id: int, changes: Mapping[str, int | None], *, user_id: int, now: float
    ) -> QuotaSettings: ...
    async def quota_changes(self, guild_id: int, *, limit: int = 10) -> list[QuotaChange]: ...
    async def usage(self, guild_id: int | None, user_id: int, *, day: str) -> Usage: ...
    async def reset_usage(self, guild_id: int, *, user_id: int | None, day: str, by: int, now: float) -> int:
        """Give back today's use of one member (or the whole server); returns the units cleared."""
        ...

    # -- server controls -------------------------------------------------------------------
    async def server_controls(self, guild_id: int) -> ServerControls:
        """A server's 4K access, blocked words, log channel and role allowances."""
        ...

    async def member_controls(self, guild_id: int, user_id: int) -> MemberControls: ...
    async def member_limits(self, guild_id: int, *, limit: int) -> list[MemberLimit]:
        """Members with an allowance of their own, most recently set first."""
        ...

    async def blocked_members(self, guild_id: int, *, limit: int) -> list[MemberBlock]:
        """Blocked members, most recently blocked first."""
        ...

    async def set_role_limit(self, guild_id: int, role_id: int, daily: int | None, *, by: int, now: float) -> None: ...
    async def remove_role_limit(self, guild_id: int, role_id: int) -> bool:
        """Whether the role had an allowance."""
        ...

    async def set_member_limit(
        self, guild_id: int, user_id: int, daily: int | None, *, by: int, now: float
    ) -> None: ...
    async def remove_member_limit(self, guild_id: int, user_id: int) -> bool:
        """Whether the member had an allowance of their own."""
        ...

    async def block_member(self, guild_id: int, user_id: int, *, by: int, now: float) -> bool:
        """Whether the member was not blocked before."""
        ...

    async def unblock_member(self, guild_id: int, user_id: int) -> bool:
        """Whether the member was blocked."""
        ...

    async def set_four_k(self, guild_id: int, access: FourKAccess, *, by: int, now: float) -> None: ...
    async def add_four_k_role(self, guild_id: int, role_id: int, *, by: int, now: float) -> FourKAccess:
        """Let a role use 4K; 4K open to everyone becomes open to the listed roles only. Returns the
        server's access afterwards."""
        ...

    async def remove_four_k_role(self, guild_id: int, role_id: int) -> bool:
        """Whether the role was listed."""
        ...

    async def add_blocked_words(
        self, guild_id: int, phrases: Sequence[str], *, by: int, now: float, max_words: int
    ) -> WordsAdded | None:
        """Add words or phrases (compared folded); ``None``, and nothing stored, if the list would then
        hold more than ``max_words``."""
        ...

    async def remove_blocked_words(self, guild_id: int, phrases: Sequence[str]) -> tuple[str, ...]:
        """Remove words or phrases (compared folded); returns those removed, as they were stored."""
        ...

    async def set_log_channel(self, guild_id: int, channel_id: int | None, *, by: int, now: float) -> None: ...
    async def forget_roles(self, guild_id: int, role_ids: Iterable[int]) -> int:
        """Drop deleted roles from the role allowances and the 4K list; returns the rows removed."""
        ...

    async def failed_jobs_to_log(self, *, after: tuple[float, int], limit: int) -> list[tuple[JobRecord, int]]:
        """Jobs that failed after ``after`` (their end time, then id) in servers with a log channel on
        this process's shards, oldest first, each with that channel."""
        ...


def job_from_row(row: Row) -> JobRecord:
    """A ``jobs`` row (every column, by name) as a :class:`JobRecord`; the same on every backend."""
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
        submit_started_at=row["submit_started_at"],
        told_at=row["told_at"],
        parent_job_id=row["parent_job_id"],
        action=row["action"],
        locale=row["locale"],
        guild_locale=row["guild_locale"],
        shard_id=row["shard_id"],
        owner=row["owner"],
    )
