"""Typed records the core stores and passes around: jobs, quota settings and usage, server controls."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class JobState(StrEnum):
    """A job's life in the bot, persisted in ``jobs.status``.

    PENDING → QUEUED → RUNNING → DELIVERING → DELIVERED, or → FAILED / CANCELLED from any
    non-terminal state. PENDING means the row exists and the submit may be in flight.
    """

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({JobState.DELIVERED, JobState.FAILED, JobState.CANCELLED})
ACTIVE_STATES = tuple(s for s in JobState if s not in TERMINAL_STATES)


class FailureReason(StrEnum):
    """Why a job ended without an image; each has its own message for the member."""

    CONTENT_BLOCKED = "content_blocked"
    INVALID_REQUEST = "invalid_request"
    UPSTREAM_TIMEOUT = "upstream_timeout"
    UPSTREAM_FAILED = "upstream_failed"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    ACCOUNT_PROBLEM = "account_problem"
    INTERRUPTED = "interrupted"
    SUBMIT_UNCERTAIN = "submit_uncertain"
    DELIVERY_FAILED = "delivery_failed"
    RESULT_UNAVAILABLE = "result_unavailable"
    LOST_UPSTREAM = "lost_upstream"
    NO_IMAGE = "no_image"
    INVALID_REFERENCE = "invalid_reference"


@dataclass(frozen=True, slots=True)
class NewJob:
    """What a command hands the core to create a job."""

    user_id: int
    guild_id: int | None
    channel_id: int
    message_id: int | None
    application_id: int | None
    interaction_token: str | None
    token_expires_at: float | None
    upload_limit: int
    prompt: str
    aspect_ratio: str | None
    resolution: str
    with_text: bool
    image_urls: tuple[str, ...]
    parent_job_id: int | None = None
    action: str | None = None
    # The requester's roles in the server (for per-role daily limits).
    role_ids: tuple[int, ...] = ()
    locale: str | None = None
    guild_locale: str | None = None


def shard_of(guild_id: int | None, shard_count: int) -> int:
    """Discord's rule for the shard that receives a server's events; direct messages go to shard 0."""
    if guild_id is None:
        return 0
    return (guild_id >> 22) % shard_count


SINGLE_OWNER = "main"


@dataclass(frozen=True, slots=True)
class Ownership:
    """Which jobs this process may change: those of the servers on its shards.

    ``owner`` names the process in the ``jobs.owner`` column; every state change of a job is
    conditioned on it. The default is one process with every server (one shard, shard 0).
    """

    owner: str = SINGLE_OWNER
    shard_count: int = 1
    shard_ids: frozenset[int] = frozenset({0})

    def __post_init__(self) -> None:
        if not self.owner:
            raise ValueError("an owner must have a name")
        if self.shard_count < 1:
            raise ValueError("the shard count must be at least 1")
        if not self.shard_ids or any(not 0 <= s < self.shard_count for s in self.shard_ids):
            raise ValueError(f"shard ids must be between 0 and {self.shard_count - 1}")

    def shard_of(self, guild_id: int | None) -> int:
        return shard_of(guild_id, self.shard_count)

    def owns(self, guild_id: int | None) -> bool:
        """Whether the server's jobs (a direct message's: ``None``) are this process's."""
        return self.shard_of(guild_id) in self.shard_ids


class Action(StrEnum):
    """How a job was made: by a command, or by a button under a finished image."""

    IMAGINE = "imagine"
    REROLL = "reroll"
    EDIT = "edit"
    VARY = "vary"
    UPSCALE = "upscale"


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One row of the ``jobs`` table."""

    id: int
    status: JobState
    user_id: int
    guild_id: int | None
    channel_id: int
    message_id: int | None
    application_id: int | None
    interaction_token: str | None
    token_expires_at: float | None
    upload_limit: int
    prompt: str
    aspect_ratio: str | None
    resolution: str
    with_text: bool
    image_urls: tuple[str, ...]
    cost: int
    quota_day: str
    request_id: str | None = None
    status_url: str | None = None
    response_url: str | None = None
    cancel_url: str | None = None
    queue_position: int | None = None
    created_at: float = 0.0
    submitted_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    cancel_requested_by: int | None = None
    cancel_requested_at: float | None = None
    error_type: str | None = None
    error_message: str | None = None
    delivery_attempted_at: float | None = None
    submit_started_at: float | None = None
    told_at: float | None = None
    parent_job_id: int | None = None
    action: str | None = None
    locale: str | None = None
    guild_locale: str | None = None
    # Sharding: the shard of the job's server, and the process that may change the job (``None``:
    # left for whoever owns that shard; see :class:`Ownership`).
    shard_id: int = 0
    owner: str | None = None

    @property
    def reference_count(self) -> int:
        return len(self.image_urls)


@dataclass(frozen=True, slots=True)
class QuotaSettings:
    """A server's limits; ``None`` means no limit."""

    guild_id: int
    user_daily: int | None = None
    guild_daily: int | None = None
    max_concurrent: int | None = None
    weight_4k: int | None = None  # None: the operator's default
    updated_by: int | None = None
    updated_at: float | None = None


@dataclass(frozen=True, slots=True)
class QuotaChange:
    """One audit entry: who set what, when."""

    guild_id: int
    user_id: int
    field: str
    old_value: int | None
    new_value: int | None
    at: float


@dataclass(frozen=True, slots=True)
class Usage:
    """What counts against the limits right now."""

    user_used: int
    guild_used: int
    user_active: int


class LimitKind(StrEnum):
    USER_DAILY = "user_daily"
    GUILD_DAILY = "guild_daily"
    MAX_CONCURRENT = "max_concurrent"
    # Not a number: an admin blocked the member in this server (``/settings block``).
    BLOCKED = "blocked"


@dataclass(frozen=True, slots=True)
class QuotaRefusal:
    """A job was not created because a limit would be exceeded."""

    limit: LimitKind
    allowed: int
    used: int
    cost: int


# -- server controls (``/settings``) -----------------------------------------------------------------


class FourKAccess(StrEnum):
    """Who may ask for 4K in a server."""

    EVERYONE = "everyone"
    ROLES = "roles"  # only members with one of the listed roles
    OFF = "off"


class AllowanceSource(StrEnum):
    """Where a member's daily limit comes from."""

    SERVER = "server"  # the server's per-member default (``/quota set user_daily``)
    ROLE = "role"  # the highest allowance among the member's roles
    MEMBER = "member"  # the member's own override


@dataclass(frozen=True, slots=True)
class Allowance:
    """A member's own daily limit (``None``: no limit) and where it comes from."""

    daily: int | None
    source: AllowanceSource
    role_id: int | None = None


@dataclass(frozen=True, slots=True)
class RoleLimit:
    """A role's daily allowance (``None``: no limit), set by an admin."""

    role_id: int
    daily: int | None
    set_by: int
    set_at: float


@dataclass(frozen=True, slots=True)
class MemberLimit:
    """One member's own daily allowance (``None``: no limit), set by an admin."""

    user_id: int
    daily: int | None
    set_by: int
    set_at: float


@dataclass(frozen=True, slots=True)
class MemberBlock:
    """A member an admin blocked from making images in a server."""

    user_id: int
    set_by: int
    set_at: float


@dataclass(frozen=True, slots=True)
class MemberControls:
    """What admins set for one member of a server."""

    limit: MemberLimit | None = None
    block: MemberBlock | None = None

    @property
    def blocked(self) -> bool:
        return self.block is not None


@dataclass(frozen=True, slots=True)
class QuotaInputs:
    """What the quota check of a new job in a server reads, inside its reservation."""

    settings: QuotaSettings
    member: MemberControls
    role_limits: tuple[RoleLimit, ...]  # allowances of the member's roles
    usage: Usage


@dataclass(frozen=True, slots=True)
class ServerControls:
    """A server's controls other than the numeric quotas (those are :class:`QuotaSettings`)."""

    guild_id: int
    four_k: FourKAccess = FourKAccess.EVERYONE
    four_k_roles: tuple[int, ...] = ()
    blocked_words: tuple[str, ...] = ()  # as the admins typed them
    log_channel_id: int | None = None
    role_limits: tuple[RoleLimit, ...] = ()
    updated_by: int | None = None
    updated_at: float | None = None


@dataclass(frozen=True, slots=True)
class WordsAdded:
    """The outcome of adding blocked words: those new to the list, and those already on it."""

    added: tuple[str, ...]
    present: tuple[str, ...]
    total: int
