"""What the core tells the side that shows jobs to members: one event type per kind of news.

The tracker produces these; :class:`JobPresenter` (implemented by the Discord side) shows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from bot.imaging import FittedImage
from bot.models import FailureReason, JobRecord, JobState

# Below this many seconds left, a reply says "any moment now" rather than when the job should end.
SOON = 5.0


@dataclass(frozen=True, slots=True)
class Progress:
    """The job is under way. ``phase_since`` is when the current phase (waiting/generating) began."""

    state: JobState
    queue_position: int | None
    phase_since: float
    now: float
    cancelling: bool = False
    notice: str | None = None
    # The learned estimate: seconds left, and how far along the job is (0..1).
    remaining: float | None = None
    fraction: float | None = None

    @property
    def elapsed(self) -> float:
        return max(0.0, self.now - self.phase_since)

    @property
    def ends_at(self) -> float | None:
        """When the job should be done (on the clock of ``now``), or ``None`` when that is unknown
        or any moment now."""
        if self.remaining is None or self.remaining < SOON:
            return None
        return self.now + self.remaining


@dataclass(frozen=True, slots=True)
class Delivery:
    """The image is ready. ``late_cancel``: a cancel was accepted but the job still finished (paid for)."""

    image: FittedImage
    text: str | None
    took: float
    late_cancel: bool


@dataclass(frozen=True, slots=True)
class Failure:
    """The job ended without an image. ``detail`` is for the operator's log, not for members."""

    reason: FailureReason
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Cancelled:
    """The job was cancelled; ``stage`` is where it was (pending, queued or running)."""

    stage: JobState
    by: int | None


JobEvent = Progress | Delivery | Failure | Cancelled
FinalEvent = Delivery | Failure | Cancelled


class JobPresenter(Protocol):
    """Shows a job's events to its member.

    ``publish`` of a final event raises when the member could not be told *yet* (Discord down, a
    timeout): the tracker tries again later. Where the member can no longer be reached at all (the
    channel is gone), it returns normally: there is nobody left to tell.
    """

    async def publish(self, job: JobRecord, event: JobEvent) -> None: ...

    async def shows_image(self, job: JobRecord) -> bool:
        """Whether the job's reply already carries its image (so a delivery is not posted twice)."""
        ...


class CancelResult(StrEnum):
    """What became of a cancel request (the caller tells the member)."""

    REQUESTED = "requested"
    ALREADY_REQUESTED = "already_requested"
    NOT_ACTIVE = "not_active"
    TOO_LATE = "too_late"
    FAILED = "failed"


def final_event_of(job: JobRecord) -> Failure | Cancelled | None:
    """Rebuild the final event of a job that failed or was cancelled, from its row alone."""
    if job.status is JobState.FAILED:
        try:
            reason = FailureReason(job.error_type or "")
        except ValueError:
            reason = FailureReason.UPSTREAM_FAILED
        return Failure(reason, job.error_message)
    if job.status is JobState.CANCELLED:
        if job.started_at is not None:
            stage = JobState.RUNNING
        elif job.request_id is not None:
            stage = JobState.QUEUED
        else:
            stage = JobState.PENDING
        return Cancelled(stage, job.cancel_requested_by)
    return None
