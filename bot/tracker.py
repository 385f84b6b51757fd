"""The job tracker: the one component that owns every active job.

For each job it submits (once), stores the request id at once, polls with an adaptive interval,
records every transition before acting on it, downloads and fits the result, and hands what the
member should see to a :class:`JobPresenter` (the Discord side implements it). After a restart
:meth:`JobTracker.resume` picks every unfinished job up again from storage; nothing is submitted
twice: a job whose submit may already have reached the upstream is never submitted again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NoReturn, Protocol

from bot.imaging import FittedImage, fit_image
from bot.models import FailureReason, JobRecord, JobState
from bot.queue import (
    AuthenticationError,
    CancelOutcome,
    ErrorType,
    GenerationRequest,
    InsufficientBalanceError,
    InvalidRequestError,
    JobHandle,
    NotFoundError,
    QueueClient,
    QueueError,
    QueueResult,
    QueueState,
    QueueStatus,
    RateLimitedError,
    SubmitUncertainError,
)
from bot.storage import Store

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


# -- what the member should see --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Progress:
    """The job is under way. ``phase_since`` is when the current phase (waiting/generating) began."""

    state: JobState
    queue_position: int | None
    phase_since: float
    now: float
    cancelling: bool = False
    notice: str | None = None

    @property
    def elapsed(self) -> float:
        return max(0.0, self.now - self.phase_since)


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


class JobPresenter(Protocol):
    """Shows a job's events to its member. ``Delivery`` must raise if the image could not be shown."""

    async def publish(self, job: JobRecord, event: JobEvent) -> None: ...


class CancelResult(StrEnum):
    """What became of a cancel request (the caller tells the member)."""

    REQUESTED = "requested"
    ALREADY_REQUESTED = "already_requested"
    NOT_ACTIVE = "not_active"
    TOO_LATE = "too_late"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class TrackerSettings:
    poll_min_interval: float = 1.0
    poll_max_interval: float = 10.0
    job_timeout: float = 600.0
    status_edit_interval: float = 5.0
    max_result_bytes: int = 80 * 1024 * 1024
    delivery_attempts: int = 5


def poll_interval(age: float, settings: TrackerSettings, rng: random.Random) -> float:
    """Quick at first, slower for long jobs, jittered ±20% so jobs do not poll in lock-step."""
    base = min(settings.poll_max_interval, settings.poll_min_interval + max(0.0, age) * 0.1)
    return float(base * rng.uniform(0.8, 1.2))


_FAILURES = {
    ErrorType.CONTENT_BLOCKED: FailureReason.CONTENT_BLOCKED,
    ErrorType.REQUEST_INVALID: FailureReason.INVALID_REQUEST,
    ErrorType.INFERENCE_TIMEOUT: FailureReason.UPSTREAM_TIMEOUT,
}


def _reason_for(exc: QueueError) -> FailureReason:
    if isinstance(exc, AuthenticationError | InsufficientBalanceError):
        return FailureReason.ACCOUNT_PROBLEM
    if isinstance(exc, InvalidRequestError):
        return FailureReason.INVALID_REQUEST
    if isinstance(exc, SubmitUncertainError):
        return FailureReason.SUBMIT_UNCERTAIN
    return FailureReason.UPSTREAM_UNAVAILABLE


class _Finished(Exception):
    """Internal: the job reached a terminal state; stop following it."""


class JobTracker:
    """Owns every active job: one task each, bounded upstream concurrency, durable transitions."""

    def __init__(
        self,
        store: Store,
        client: QueueClient,
        *,
        settings: TrackerSettings | None = None,
        clock: Clock = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._client = client
        self._settings = settings or TrackerSettings()
        self._clock = clock
        self._rng = rng or random.Random()
        self._presenter: JobPresenter | None = None
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._wake: dict[int, asyncio.Event] = {}
        # A note that stays on a job's reply until the next cancel (e.g. "Cancel failed: ...").
        self._notices: dict[int, str] = {}
        self._closed = False

    def attach(self, presenter: JobPresenter) -> None:
        """Connect the side that shows jobs to members (done once, before :meth:`resume`)."""
        self._presenter = presenter

    def is_tracking(self, job_id: int) -> bool:
        return job_id in self._tasks

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, job: JobRecord) -> None:
        """Follow a job the bot has just created (state PENDING): submit it, then track it."""
        self._spawn(job.id, self._run(job, fresh=True))

    async def resume(self) -> int:
        """Pick every unfinished job up again after a start; returns how many."""
        jobs = await self._store.active_jobs()
        for job in jobs:
            if job.id not in self._tasks:
                self._spawn(job.id, self._run(job, fresh=False))
        if jobs:
            log.info("resumed %d unfinished job(s)", len(jobs))
        return len(jobs)

    async def close(self) -> None:
        """Stop following jobs (their state is already stored; :meth:`resume` continues them)."""
        self._closed = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, job_id: int, coro: Coroutine[Any, Any, None]) -> None:
        if self._closed:
            coro.close()
            return
        task = asyncio.create_task(coro, name=f"job-{job_id}")
        self._tasks[job_id] = task
        self._wake[job_id] = asyncio.Event()

        def done(finished: asyncio.Task[None]) -> None:
            if self._tasks.get(job_id) is finished:
                del self._tasks[job_id]
                self._wake.pop(job_id, None)
                self._notices.pop(job_id, None)
            if not finished.cancelled() and (exc := finished.exception()) is not None:
                log.error("job %d task crashed", job_id, exc_info=exc)

        task.add_done_callback(done)

    def _poke(self, job_id: int) -> None:
        if event := self._wake.get(job_id):
            event.set()

    # -- cancel ----------------------------------------------------------------------------

    async def cancel(self, job_id: int, *, user_id: int) -> CancelResult:
        """Cancel a job for ``user_id`` (who must already have been found allowed to)."""
        job = await self._store.get_job(job_id)
        if job is None or job.status.is_terminal:
            return CancelResult.NOT_ACTIVE
        if job.status is JobState.DELIVERING:
            return CancelResult.TOO_LATE
        if job.cancel_requested_at is not None:
            return CancelResult.ALREADY_REQUESTED
        recorded = await self._store.request_cancel(job_id, user_id=user_id, now=self._clock())
        if recorded is None:  # someone else's cancel (or the job's end) got there first
            latest = await self._store.get_job(job_id)
            return (
                CancelResult.NOT_ACTIVE
                if latest is None or latest.status.is_terminal
                else CancelResult.ALREADY_REQUESTED
            )
        job = recorded
        self._notices.pop(job_id, None)
        if job.request_id is None:
            # The submit is still in flight; the job's own task cancels it as soon as it has an id.
            self._poke(job_id)
            return CancelResult.REQUESTED
        await self._show_progress(job, cancelling=True)
        return await self._send_cancel(job)

    async def _send_cancel(self, job: JobRecord) -> CancelResult:
        try:
            outcome = await self._client.cancel(self._handle(job))
        except QueueError as exc:
            log.warning("cancel of job %d failed upstream: %s", job.id, exc.message)
            job = await self._store.clear_cancel(job.id, now=self._clock())
            self._notices[job.id] = "Cancel failed: the image service could not be reached. The job is still running."
            await self._show_progress(job)
            return CancelResult.FAILED
        if outcome is CancelOutcome.NOT_FOUND:
            job = await self._store.clear_cancel(job.id, now=self._clock())
            self._notices[job.id] = "Cancel failed: the image service no longer knows this job."
            await self._show_progress(job)
            self._poke(job.id)
            return CancelResult.FAILED
        self._poke(job.id)
        return CancelResult.TOO_LATE if outcome is CancelOutcome.ALREADY_COMPLETED else CancelResult.REQUESTED

    # -- one job ---------------------------------------------------------------------------

    async def _run(self, job: JobRecord, *, fresh: bool) -> None:
        try:
            if job.status is JobState.PENDING:
                job = await self._submit(job, fresh=fresh)
            elif job.cancel_requested_at is not None and job.status is not JobState.DELIVERING:
                # We may have died between recording the cancel and sending it: send it (again).
                await self._send_cancel(job)
            await self._follow(job)
        except _Finished:
            await self._store.forget_token(job.id)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("job %d failed unexpectedly", job.id)
            with contextlib.suppress(_Finished):
                await self._fail(job, FailureReason.UPSTREAM_FAILED, f"internal error: {type(exc).__name__}")
            await self._store.forget_token(job.id)

    async def _submit(self, job: JobRecord, *, fresh: bool) -> JobRecord:
        if job.cancel_requested_at is not None:
            await self._finish_cancelled(job, JobState.PENDING)
        if not fresh:
            # The bot stopped while this submit was in flight; it may have reached the upstream.
            # Submitting again could create (and bill) a second job, so give up on it instead.
            await self._fail(job, FailureReason.INTERRUPTED, "restarted during submit")
        request = GenerationRequest(
            prompt=job.prompt,
            image_urls=job.image_urls,
            aspect_ratio=job.aspect_ratio,
            resolution=job.resolution,
            with_text=job.with_text,
        )
        try:
            submission = await self._client.submit(request)
        except QueueError as exc:
            await self._fail_from(job, exc)
        handle = submission.handle
        job = await self._store.mark_submitted(
            job.id,
            request_id=handle.request_id,
            status_url=handle.status_url,
            response_url=handle.response_url,
            cancel_url=handle.cancel_url,
            queue_position=submission.queue_position,
            now=self._clock(),
        )
        log.info("job %d submitted as %s", job.id, handle.request_id)
        if job.cancel_requested_at is not None:
            await self._send_cancel(job)
        return job

    async def _follow(self, job: JobRecord) -> None:
        started = job.submitted_at or job.created_at
        deadline = started + self._settings.job_timeout
        shown: tuple[object, ...] | None = None
        shown_at = 0.0
        while True:
            if job.status is JobState.DELIVERING:
                await self._deliver(job)
            # Read before judging the deadline: after a long downtime the job may simply be done.
            reading = await self._read_status(job)
            if reading is not None:
                job = await self._apply(job, reading)
                if job.status is JobState.DELIVERING:
                    continue  # fetch the result at once, not after another poll interval
            now = self._clock()
            if now >= deadline:
                await self._time_out(job)
            progress = self._progress(job, now)
            key = (progress.state, progress.queue_position, progress.cancelling, progress.notice)
            # Only a shown elapsed time ("waiting" or "generating") needs refreshing by itself.
            ticking = progress.queue_position is None and progress.state in (JobState.QUEUED, JobState.RUNNING)
            stale = ticking and now - shown_at >= self._settings.status_edit_interval
            if key != shown or stale:
                shown, shown_at = key, now
                await self._publish(job, progress)
            wait = min(poll_interval(now - started, self._settings, self._rng), max(0.0, deadline - now))
            await self._pause(job.id, wait)
            job = await self._store.get_job(job.id) or job

    async def _read_status(self, job: JobRecord) -> QueueStatus | None:
        try:
            return await self._client.status(self._handle(job))
        except NotFoundError as exc:
            await self._fail(job, FailureReason.LOST_UPSTREAM, exc.message)
        except RateLimitedError as exc:
            log.warning("job %d: upstream rate limited status polls (%s)", job.id, exc.message)
        except (AuthenticationError, InsufficientBalanceError) as exc:
            log.error("job %d: the upstream refused the API key while polling: %s", job.id, exc.message)
        except QueueError as exc:
            log.warning("job %d: status poll failed: %s", job.id, exc.message)
        return None

    async def _apply(self, job: JobRecord, reading: QueueStatus) -> JobRecord:
        now = self._clock()
        match reading.state:
            case QueueState.QUEUED:
                if job.status is not JobState.QUEUED or job.queue_position != reading.queue_position:
                    job = await self._store.update_progress(
                        job.id, JobState.QUEUED, queue_position=reading.queue_position, started_at=None, now=now
                    )
            case QueueState.RUNNING:
                if job.status is not JobState.RUNNING:
                    job = await self._store.update_progress(
                        job.id, JobState.RUNNING, queue_position=None, started_at=now, now=now
                    )
            case QueueState.SUCCEEDED:
                job = await self._store.mark_delivering(job.id, now=now)
            case QueueState.FAILED:
                reason = _FAILURES.get(reading.error_type or ErrorType.UNKNOWN, FailureReason.UPSTREAM_FAILED)
                await self._fail(job, reason, f"{reading.error_type}: {reading.error}")
            case QueueState.CANCELLED:
                await self._finish_cancelled(job, job.status)
        return job

    def _progress(self, job: JobRecord, now: float, *, cancelling: bool = False) -> Progress:
        if job.status is JobState.RUNNING:
            since = job.started_at or now
        else:
            since = job.submitted_at or job.created_at
        position = job.queue_position if job.queue_position and job.queue_position > 0 else None
        return Progress(
            state=job.status,
            queue_position=position,
            phase_since=since,
            now=now,
            cancelling=cancelling or job.cancel_requested_at is not None,
            notice=self._notices.get(job.id),
        )

    async def _show_progress(self, job: JobRecord, *, cancelling: bool = False) -> None:
        await self._publish(job, self._progress(job, self._clock(), cancelling=cancelling))

    async def _deliver(self, job: JobRecord) -> NoReturn:
        handle = self._handle(job)
        result: QueueResult | QueueStatus | None = None
        for _ in range(self._settings.delivery_attempts):
            try:
                result = await self._client.result(handle)
            except QueueError as exc:
                log.warning("job %d: fetching the result failed: %s", job.id, exc.message)
                result = None
            if isinstance(result, QueueResult):
                break
            await self._pause(job.id, self._settings.poll_min_interval)
        if not isinstance(result, QueueResult):
            await self._unfetchable(job, "result not available")
        if result.failure is not None:
            await self._apply(job, result.failure)
            raise _Finished
        try:
            data = await self._client.download(result.images[0].url, max_bytes=self._settings.max_result_bytes)
            fitted = await asyncio.to_thread(fit_image, data, job.upload_limit)
        except (QueueError, ValueError) as exc:
            await self._unfetchable(job, str(exc))
        now = self._clock()
        delivery = Delivery(
            image=fitted,
            text=result.text or None if job.with_text else None,
            took=now - (job.submitted_at or job.created_at),
            late_cancel=job.cancel_requested_at is not None,
        )
        if self._presenter is None:
            raise RuntimeError("no presenter attached to the tracker")
        job = await self._store.mark_delivery_attempt(job.id, now=now)
        for attempt in range(1, self._settings.delivery_attempts + 1):
            try:
                await self._presenter.publish(job, delivery)
                break
            except Exception:
                log.exception("job %d: delivering the image failed (attempt %d)", job.id, attempt)
                if attempt == self._settings.delivery_attempts:
                    # Nobody saw the image: say so, and do not count it.
                    await self._fail(job, FailureReason.DELIVERY_FAILED, "the image could not be posted")
                # Ride out a short Discord or network outage: 2, 4, 8, 16 s between tries by default.
                await self._pause(job.id, min(60.0, self._settings.poll_min_interval * 2**attempt))
        await self._store.finish(job.id, JobState.DELIVERED, now=self._clock(), refund=False)
        log.info("job %d delivered", job.id)
        raise _Finished

    async def _unfetchable(self, job: JobRecord, detail: str) -> NoReturn:
        if job.delivery_attempted_at is not None:
            # We stopped while handing the image to Discord; it very probably arrived, and a
            # failure notice would replace it. Leave the reply as it is.
            log.warning("job %d: result gone after an interrupted delivery; keeping it as delivered", job.id)
            await self._store.finish(job.id, JobState.DELIVERED, now=self._clock(), refund=False)
            raise _Finished
        await self._fail(job, FailureReason.RESULT_UNAVAILABLE, detail)

    async def _time_out(self, job: JobRecord) -> NoReturn:
        if job.request_id is not None:
            with contextlib.suppress(QueueError):
                if await self._client.cancel(self._handle(job)) is CancelOutcome.ALREADY_COMPLETED:
                    # It finished just now: deliver it rather than throw a paid-for image away.
                    await self._deliver(await self._store.mark_delivering(job.id, now=self._clock()))
        await self._fail(job, FailureReason.UPSTREAM_TIMEOUT, "deadline reached")

    # -- endings ---------------------------------------------------------------------------

    async def _fail_from(self, job: JobRecord, exc: QueueError) -> NoReturn:
        reason = _reason_for(exc)
        if reason is FailureReason.ACCOUNT_PROBLEM:
            log.error("the upstream refused the API key or account: %s", exc.message)
        elif reason is FailureReason.SUBMIT_UNCERTAIN:
            log.warning("job %d: the submit may have reached the upstream unconfirmed: %s", job.id, exc.message)
        await self._fail(job, reason, exc.message)

    async def _fail(self, job: JobRecord, reason: FailureReason, detail: str | None) -> NoReturn:
        """Record the failure, give the quota back, tell the member; then stop following the job."""
        job = await self._store.finish(
            job.id, JobState.FAILED, now=self._clock(), refund=True, error_type=reason.value, error_message=detail
        )
        log.info("job %d failed: %s (%s)", job.id, reason.value, detail)
        await self._publish(job, Failure(reason, detail))
        raise _Finished

    async def _finish_cancelled(self, job: JobRecord, stage: JobState) -> NoReturn:
        job = await self._store.finish(job.id, JobState.CANCELLED, now=self._clock(), refund=True)
        log.info("job %d cancelled while %s", job.id, stage.value)
        await self._publish(job, Cancelled(stage, job.cancel_requested_by))
        raise _Finished

    # -- helpers ---------------------------------------------------------------------------

    async def _publish(self, job: JobRecord, event: JobEvent) -> None:
        if self._presenter is None:
            log.warning("job %d: no presenter attached; event %s dropped", job.id, type(event).__name__)
            return
        try:
            await self._presenter.publish(job, event)
        except Exception:
            log.exception("job %d: showing %s failed", job.id, type(event).__name__)

    async def _pause(self, job_id: int, seconds: float) -> None:
        event = self._wake.get(job_id)
        if event is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout=seconds)
        event.clear()

    def _handle(self, job: JobRecord) -> JobHandle:
        assert job.request_id is not None
        return self._client.handle(
            job.request_id, status_url=job.status_url, response_url=job.response_url, cancel_url=job.cancel_url
        )
