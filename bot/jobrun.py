"""One job's run: from its stored row to a terminal state, one step at a time.

Each step takes the job as stored and returns what comes next: the updated record (another step
follows), :class:`Ended` (the job reached a terminal state), or ``None`` (stop without ending it:
the bot is shutting down, and the next start resumes the job from its row). Every transition is
written before it is acted on; docs/crash-windows.md lists what a crash at each point leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from bot import imaging
from bot.events import Cancelled, Delivery, Failure, FinalEvent, JobPresenter, Progress
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
    SubmitUncertainError,
)
from bot.storage import Store
from bot.timing import Estimate, PollPolicy, TimingModel

log = logging.getLogger("bot.tracker")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


# A process woken once for many reads spends far less on each than one woken for every read (its
# memory is cold after each sleep): polls on a quarter-second grid cost about a third less CPU each at
# a thousand jobs, and the upstream's server gains as much. The grid moves a poll by 0.125 s at most.
POLL_TICK = 0.25


@dataclass(frozen=True, slots=True)
class TrackerSettings:
    poll_min_interval: float = 1.0
    poll_max_interval: float = 10.0
    # The interval around a job's expected end (learned from finished jobs of its tier).
    poll_dense_interval: float = 1.5
    job_timeout: float = 600.0
    max_result_bytes: int = 80 * 1024 * 1024
    max_reference_bytes: int = 7 * 1024 * 1024
    delivery_attempts: int = 5
    # How often the tracker looks for active jobs that have no task and for members not yet told.
    sweep_interval: float = 30.0
    # How long after its end a member is still told of a job that ended while Discord was unreachable.
    tell_window: float = 24 * 3600.0
    # On shutdown, how long a submit already on the wire may take to be answered and recorded.
    shutdown_grace: float = 5.0
    # The least time between two edits of a reply that only move its queue position (the expected
    # end counts down by itself meanwhile); a change of state is shown at once.
    position_interval: float = 30.0
    # The grid a job's next poll is put on (the nearest point, see on_grid), so that the polls due
    # within one tick wake the process once and leave together; 0: exact times.
    poll_tick: float = POLL_TICK


class JobMetrics(Protocol):
    """The counters a run feeds (``bot.metrics.Metrics`` implements it)."""

    def job_finished(self, state: str, reason: str | None = None) -> None: ...
    def delivery_lag(self, seconds: float) -> None: ...


def poll_policy(settings: TrackerSettings) -> PollPolicy:
    low, high = settings.poll_min_interval, settings.poll_max_interval
    return PollPolicy(min_interval=low, dense=min(high, max(low, settings.poll_dense_interval)), max_interval=high)


def log_fields(job: JobRecord) -> dict[str, object]:
    """The ``extra`` of every log line about a job: which job, which upstream request, which server."""
    return {"job_id": job.id, "request_id": job.request_id, "guild_id": job.guild_id}


def progress_of(
    job: JobRecord,
    now: float,
    *,
    notice: str | None = None,
    cancelling: bool = False,
    estimate: Estimate | None = None,
) -> Progress:
    since = (job.started_at or now) if job.status is JobState.RUNNING else (job.submitted_at or job.created_at)
    position = job.queue_position if job.queue_position and job.queue_position > 0 else None
    return Progress(
        state=job.status,
        queue_position=position,
        phase_since=since,
        now=now,
        cancelling=cancelling or job.cancel_requested_at is not None,
        notice=notice,
        remaining=estimate.remaining if estimate else None,
        fraction=estimate.progress if estimate else None,
    )


ShownKey = tuple[JobState, int | None, bool, str | None]


def worth_an_edit(shown: ShownKey | None, key: ShownKey, since_shown: float, position_interval: float) -> bool:
    """Whether the reply should be edited to show ``key`` (state, queue position, cancelling, note)
    when it shows ``shown``, edited ``since_shown`` seconds ago: any change of state, cancel or note
    at once; a queue position that only moved, at most every ``position_interval`` seconds."""
    if key == shown:
        return False
    if shown is None or (key[0], key[2], key[3]) != (shown[0], shown[2], shown[3]):
        return True
    return since_shown >= position_interval


def on_grid(now: float, seconds: float, tick: float) -> float:
    """A wait of about ``seconds`` from ``now`` that ends on the nearest multiple of ``tick``, so that
    the runs due within one tick wake together (waits shorter than a tick, or ``tick`` 0: as asked)."""
    if tick <= 0 or seconds < tick:
        return seconds
    return max(0.0, round((now + seconds) / tick) * tick - now)


def timing_of(job: JobRecord, now: float, running_since: float | None = None) -> dict[str, Any]:
    """What the timing model needs to know of a job in progress. ``running_since``: when it probably
    started generating (:meth:`TimingModel.likely_start`), if known; the stored ``started_at`` (the
    first read that saw it generating) is later by up to one poll interval, and a clock that starts
    late polls late."""
    since = running_since if running_since is not None else job.started_at
    running = job.status is JobState.RUNNING and since is not None
    return {
        "running_for": now - since if running and since is not None else None,
        "position": job.queue_position,
        "waited": now - (job.submitted_at or job.created_at),
    }


@dataclass(frozen=True, slots=True)
class Ended:
    """A job's terminal state and what its member should see (``None``: the reply already shows it)."""

    state: JobState
    event: FinalEvent | None = None

    @property
    def reason(self) -> str | None:
        return self.event.reason.value if isinstance(self.event, Failure) else None


DELIVERED = Ended(JobState.DELIVERED)


def failed(reason: FailureReason, detail: str | None = None) -> Ended:
    return Ended(JobState.FAILED, Failure(reason, detail))


def cancelled(job: JobRecord) -> Ended:
    stage = JobState.RUNNING if job.status is JobState.DELIVERING else job.status
    return Ended(JobState.CANCELLED, Cancelled(stage, job.cancel_requested_by))


Step = JobRecord | Ended | None

_FAILURES = {
    ErrorType.CONTENT_BLOCKED: FailureReason.CONTENT_BLOCKED,
    ErrorType.REQUEST_INVALID: FailureReason.INVALID_REQUEST,
    ErrorType.INFERENCE_TIMEOUT: FailureReason.UPSTREAM_TIMEOUT,
    ErrorType.NO_IMAGE: FailureReason.NO_IMAGE,
}


def _ending_for(job: JobRecord, reading: QueueStatus) -> Ended:
    """The end a terminal FAILED or CANCELLED reading means."""
    if reading.state is QueueState.CANCELLED:
        return cancelled(job)
    reason = _FAILURES.get(reading.error_type or ErrorType.UNKNOWN, FailureReason.UPSTREAM_FAILED)
    return failed(reason, f"{reading.error_type}: {reading.error}")


def _failure_from(exc: QueueError) -> Ended:
    if isinstance(exc, AuthenticationError | InsufficientBalanceError):
        return failed(FailureReason.ACCOUNT_PROBLEM, exc.message)
    if isinstance(exc, InvalidRequestError):
        return failed(FailureReason.INVALID_REQUEST, exc.message)
    if isinstance(exc, SubmitUncertainError):
        return failed(FailureReason.SUBMIT_UNCERTAIN, exc.message)
    return failed(FailureReason.UPSTREAM_UNAVAILABLE, exc.message)


class Canceller:
    """Sends upstream cancels: at most one in flight per job, whoever asks (a member or the run)."""

    def __init__(self, store: Store, client: QueueClient, presenter: Callable[[], JobPresenter | None], clock: Clock):
        self._store = store
        self._client = client
        self._presenter = presenter
        self._clock = clock
        self._sent: set[int] = set()
        # A note that stays on a job's reply until the next cancel (e.g. "Cancel failed: ...").
        self.notices: dict[int, str] = {}

    def forget(self, job_id: int) -> None:
        self._sent.discard(job_id)
        self.notices.pop(job_id, None)

    async def send(self, job: JobRecord) -> CancelOutcome | None:
        """Send the cancel of a submitted job; ``None`` if it failed (the reply then says so and the
        job keeps running). A second call while one is out does nothing and says ``REQUESTED``."""
        if job.id in self._sent:
            return CancelOutcome.REQUESTED
        self._sent.add(job.id)
        self.notices.pop(job.id, None)
        try:
            outcome = await self._client.cancel(handle_of(self._client, job))
        except QueueError as exc:
            log.warning("cancel failed upstream: %s", exc.message, extra=log_fields(job))
            await self._refused(job, "notice-cancel-unreachable")
            return None
        if outcome is CancelOutcome.NOT_FOUND:
            await self._refused(job, "notice-cancel-unknown")
            return None
        return outcome

    async def _refused(self, job: JobRecord, notice: str) -> None:
        """The cancel did not go through: forget it (a second click may try again) and say why
        (``notice`` is the catalog key of the note the reply shows)."""
        self._sent.discard(job.id)
        job = await self._store.clear_cancel(job.id, now=self._clock())
        self.notices[job.id] = notice
        await show(self._presenter(), job, progress_of(job, self._clock(), notice=notice))


async def show(presenter: JobPresenter | None, job: JobRecord, progress: Progress) -> None:
    """Show progress; a progress update is never worth more than a log line."""
    if presenter is None:
        return
    try:
        await presenter.publish(job, progress)
    except Exception:
        log.exception("showing progress failed", extra=log_fields(job))


def handle_of(client: QueueClient, job: JobRecord) -> JobHandle:
    assert job.request_id is not None
    return client.handle(
        job.request_id, status_url=job.status_url, response_url=job.response_url, cancel_url=job.cancel_url
    )


@dataclass
class RunContext:
    """What every run shares: the services, and the scheduler's say on shutdown and submits."""

    store: Store
    client: QueueClient
    presenter: Callable[[], JobPresenter | None]
    settings: TrackerSettings
    cancels: Canceller
    clock: Clock = time.time
    sleep: Sleep = asyncio.sleep
    rng: random.Random | None = None
    metrics: JobMetrics | None = None
    timing: TimingModel = field(default_factory=TimingModel)
    closing: Callable[[], bool] = lambda: False
    # Runs a submit so that a shutdown lets it finish (and be recorded) instead of cutting it off.
    guard_submit: Callable[[Coroutine[Any, Any, Step]], Awaitable[Step]] | None = None


async def tell(ctx: RunContext, job: JobRecord, event: FinalEvent) -> bool:
    """Show a job's end to its member and record that they know; ``False`` to try again later."""
    presenter = ctx.presenter()
    if presenter is None:
        return False
    try:
        await presenter.publish(job, event)
    except Exception as exc:
        log.warning("could not show the job's end yet (%s); will try again", exc, extra=log_fields(job))
        return False
    await ctx.store.mark_told(job.id, now=ctx.clock())
    return True


class JobRun:
    """Runs one job until it ends (or the bot stops). ``fresh``: created by this process, with its
    references already checked; otherwise it was found in storage at a start or sweep."""

    def __init__(self, job: JobRecord, ctx: RunContext, *, fresh: bool) -> None:
        self.job = job
        self._ctx = ctx
        self._fresh = fresh
        self._rng = ctx.rng or random.Random()
        self._image_shown = False
        self._completed_at: float | None = None
        self._shown: ShownKey | None = None
        self._shown_at = float("-inf")
        # The last status read that saw the job unfinished; the last that saw it queued (when, and the
        # position it read); when it probably started generating (see TimingModel.likely_start).
        self._unfinished_read_at: float | None = None
        self._queued_read: tuple[float, int | None] | None = None
        self._running_since: float | None = None
        # The last queue position read, and when: how fast the queue moves is learned from it.
        self._position: tuple[int, float] | None = None
        # Where the job is upstream (its URLs never change once it is submitted): made once, not per read.
        self._handle: JobHandle | None = None
        # Whether the next poll reads the response URL (the job may well be done: see _follow), and
        # the result such a poll brought, until it is delivered.
        self._likely_done = False
        self._result: QueueResult | None = None
        # The wait in progress (see _pause), and whether wake() cut it short.
        self._sleeper: asyncio.Future[None] | None = None
        self._woken = False

    def wake(self) -> None:
        """Cut the current wait short (a cancel was recorded, or something changed)."""
        self._woken = True
        if self._sleeper is not None:
            self._sleeper.cancel()

    def _upstream(self, job: JobRecord) -> JobHandle:
        if self._handle is None or self._handle.request_id != job.request_id:
            self._handle = handle_of(self._ctx.client, job)
        return self._handle

    async def run(self) -> None:
        job = self.job
        step: Step = job
        try:
            followed = job.status in (JobState.QUEUED, JobState.RUNNING)
            if not self._fresh and followed and job.cancel_requested_at is not None:
                # We may have died between recording the cancel and sending it: send it (again).
                await self._ctx.cancels.send(job)
            while isinstance(step, JobRecord):
                job = step
                step = await self._step(job)
            if isinstance(step, Ended):
                await self._end(job, step)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("the job failed unexpectedly", extra=log_fields(job))
            # An image the member already sees is delivered, whatever broke afterwards.
            ending = DELIVERED if self._image_shown else failed(FailureReason.UPSTREAM_FAILED, repr(exc))
            await self._end(job, ending)

    async def _step(self, job: JobRecord) -> Step:
        match job.status:
            case JobState.PENDING:
                return await self._submit(job)
            case JobState.QUEUED | JobState.RUNNING:
                return await self._follow(job)
            case JobState.DELIVERING:
                return await self._deliver(job)
            case _:
                return None  # ended elsewhere

    # -- submit ----------------------------------------------------------------------------

    async def _submit(self, job: JobRecord) -> Step:
        ctx = self._ctx
        if job.cancel_requested_at is not None:
            return cancelled(job)
        if job.submit_started_at is not None:
            # The bot stopped while this submit was on the wire: the upstream may have the job
            # (and bill it). Submitting again could make a second one, so stop here instead.
            return failed(FailureReason.INTERRUPTED, "restarted while the submit was unanswered")
        if ctx.closing():
            return None
        if not self._fresh:
            problem = await self._check_references(job)
            if problem is not None:
                return failed(FailureReason.INVALID_REFERENCE, problem)
        started = await ctx.store.begin_submit(job.id, now=ctx.clock())
        if started is None:  # cancelled (or submitted) meanwhile: the next step reads what happened
            return await ctx.store.get_job(job.id)
        if ctx.guard_submit is None:
            return await self._send_submit(started)
        return await ctx.guard_submit(self._send_submit(started))

    async def _send_submit(self, job: JobRecord) -> Step:
        ctx = self._ctx
        request = GenerationRequest(
            prompt=job.prompt,
            image_urls=job.image_urls,
            aspect_ratio=job.aspect_ratio,
            resolution=job.resolution,
            with_text=job.with_text,
        )
        try:
            submission = await ctx.client.submit(request)
        except QueueError as exc:
            ending = _failure_from(exc)
            log.warning("the submit failed: %s", exc.message, extra=log_fields(job))
            return ending
        handle = submission.handle
        job = await ctx.store.mark_submitted(
            job.id,
            request_id=handle.request_id,
            status_url=handle.status_url,
            response_url=handle.response_url,
            cancel_url=handle.cancel_url,
            queue_position=submission.queue_position,
            now=ctx.clock(),
        )
        log.info("submitted", extra=log_fields(job))
        if job.cancel_requested_at is not None:  # a cancel arrived while the submit was on the wire
            await ctx.cancels.send(job)
        return job

    async def _check_references(self, job: JobRecord) -> str | None:
        """Re-check references of a job found unsent at a start (the check may have been cut off)."""
        cap = self._ctx.settings.max_reference_bytes
        for number, url in enumerate(job.image_urls, start=1):
            try:
                data = await self._ctx.client.download(url, max_bytes=cap)
            except QueueError as exc:
                return f"reference {number} could not be downloaded: {exc.message}"
            check = await asyncio.to_thread(imaging.check_reference, data, cap)
            if not check.ok:
                return f"reference {number}: {check.problem}"
        return None

    # -- waiting for the upstream ------------------------------------------------------------

    async def _follow(self, job: JobRecord) -> Step:
        ctx = self._ctx
        started = job.submitted_at or job.created_at
        deadline = started + ctx.settings.job_timeout
        # Read before judging the deadline: after a long downtime the job may simply be done.
        try:
            reading = await ctx.client.look(self._upstream(job), likely_done=self._likely_done)
        except NotFoundError as exc:
            return failed(FailureReason.LOST_UPSTREAM, exc.message)
        except QueueError as exc:  # the client reports outages once; a job just keeps waiting
            log.debug("status poll failed: %s", exc.message, extra=log_fields(job))
            reading = None
        if isinstance(reading, QueueResult):
            return await self._finished(job, reading)
        if reading is not None:
            step = await self._apply(job, reading)
            if not isinstance(step, JobRecord) or step.status is JobState.DELIVERING:
                return step  # fetch the result at once, not after another poll interval
            job = step
        now = ctx.clock()
        if now >= deadline:
            return await self._time_out(job)
        job = await self._show_progress(job, now)
        timing = timing_of(job, now, self._running_since)
        wait = ctx.timing.next_poll(job.resolution, **timing) * self._rng.uniform(0.9, 1.1)
        running_for = timing["running_for"]
        self._likely_done = running_for is not None and ctx.timing.may_be_done(
            job.resolution, running_for=running_for + wait
        )
        if await self._pause(min(wait, max(0.0, deadline - now))):
            return await ctx.store.get_job(job.id)  # woken: something changed the job (a cancel, its reply)
        return job  # the row as this run last wrote or read it: nothing else changed it

    async def _apply(self, job: JobRecord, reading: QueueStatus) -> Step:
        store, now = self._ctx.store, self._ctx.clock()
        self._learn(job, reading, now)
        if reading.state in (QueueState.QUEUED, QueueState.RUNNING):
            last_unfinished, self._unfinished_read_at = self._unfinished_read_at, now
        match reading.state:
            case QueueState.QUEUED:
                self._queued_read = (now, reading.queue_position)
                if job.status is not JobState.QUEUED:
                    return await store.update_progress(
                        job.id, JobState.QUEUED, queue_position=reading.queue_position, started_at=None, now=now
                    )
                if job.queue_position != reading.queue_position:
                    # Only the position moved: stored when the reply shows it (see _show_progress).
                    return replace(job, queue_position=reading.queue_position)
                return job
            case QueueState.RUNNING:
                if job.status is not JobState.RUNNING:
                    # It started somewhere since the last read that saw it queued.
                    self._running_since = None
                    if last_unfinished is not None and self._queued_read is not None:
                        queued_at, position = self._queued_read
                        self._running_since = self._ctx.timing.likely_start(
                            job.resolution, queued_at=queued_at, position=position, now=now
                        )
                    return await store.update_progress(
                        job.id, JobState.RUNNING, queue_position=None, started_at=now, now=now
                    )
                return job
            case QueueState.SUCCEEDED:
                return await self._done(job, now)
            case _:
                return _ending_for(job, reading)

    async def _finished(self, job: JobRecord, result: QueueResult) -> Step:
        """A poll of the response URL found the job finished, its result in hand."""
        if result.failure is not None:
            return _ending_for(job, result.failure)
        now = self._ctx.clock()
        self._result = result
        done = await self._done(job, now)
        since = self._running_since if self._running_since is not None else job.started_at
        if job.status is JobState.RUNNING and since is not None and self._completed_at is not None:
            self._ctx.timing.observe_generation(job.resolution, self._completed_at - since)
        return done

    async def _done(self, job: JobRecord, now: float) -> JobRecord:
        """A read at ``now`` found the job finished: it finished somewhere between the last read that
        saw it unfinished and this one. Recorded as delivering before anything is fetched."""
        previous = self._unfinished_read_at
        self._completed_at = now if previous is None else (previous + now) / 2
        return await self._ctx.store.mark_delivering(job.id, now=now)

    def _learn(self, job: JobRecord, reading: QueueStatus, now: float) -> None:
        timing = self._ctx.timing
        if reading.state is QueueState.QUEUED and reading.queue_position is not None:
            if self._position is not None and reading.queue_position < self._position[0]:
                timing.observe_queue(
                    job.resolution, self._position[0] - reading.queue_position, now - self._position[1]
                )
            if self._position is None or reading.queue_position != self._position[0]:
                self._position = (reading.queue_position, now)
        elif reading.state is QueueState.SUCCEEDED:
            took = reading.inference_time
            if took is None and job.status is JobState.RUNNING and job.started_at is not None:
                took = now - job.started_at
            if took is not None:
                timing.observe_generation(job.resolution, took)

    async def _show_progress(self, job: JobRecord, now: float) -> JobRecord:
        """Edit the reply when what it says changes (a new queue position at most every
        ``position_interval`` seconds: :func:`worth_an_edit`). Its elapsed time and expected end are
        Discord timestamps that count by themselves in the member's client ("expected in 8 seconds",
        then "expected 3 seconds ago" if it runs late), so time passing costs no edit. A queue
        position is stored when it is shown; the reads between only keep it in the run's copy."""
        ctx = self._ctx
        estimate = ctx.timing.estimate(job.resolution, **timing_of(job, now, self._running_since))
        progress = progress_of(job, now, notice=ctx.cancels.notices.get(job.id), estimate=estimate)
        key: ShownKey = (progress.state, progress.queue_position, progress.cancelling, progress.notice)
        if not worth_an_edit(self._shown, key, now - self._shown_at, ctx.settings.position_interval):
            return job
        if self._shown is not None and job.status is JobState.QUEUED and key[1] != self._shown[1]:
            job = await ctx.store.update_progress(
                job.id, JobState.QUEUED, queue_position=job.queue_position, started_at=None, now=now
            )
        self._shown, self._shown_at = key, now
        await show(ctx.presenter(), job, progress)
        return job

    async def _time_out(self, job: JobRecord) -> Step:
        ctx = self._ctx
        with contextlib.suppress(QueueError):
            if await ctx.client.cancel(self._upstream(job)) is CancelOutcome.ALREADY_COMPLETED:
                # It finished just now: deliver it rather than throw a paid-for image away.
                self._completed_at = ctx.clock()
                return await ctx.store.mark_delivering(job.id, now=ctx.clock())
        return failed(FailureReason.UPSTREAM_TIMEOUT, "deadline reached")

    # -- delivery --------------------------------------------------------------------------

    async def _deliver(self, job: JobRecord) -> Step:
        ctx = self._ctx
        shown: bool | None = False
        if job.delivery_attempted_at is not None:
            # We stopped while handing the image to Discord: look before posting it again.
            shown = await self._shows_image(job)
            if shown:
                log.info("the reply already shows the image", extra=log_fields(job))
                return DELIVERED
        result = await self._fetch_result(job)
        if isinstance(result, QueueResult) and result.failure is not None:
            return _ending_for(job, result.failure)
        image: imaging.FittedImage | None = None
        detail = "the result is not available"
        if isinstance(result, QueueResult):
            try:
                data = await ctx.client.download(result.images[0].url, max_bytes=ctx.settings.max_result_bytes)
                image = await asyncio.to_thread(imaging.fit_image, data, job.upload_limit)
            except (QueueError, ValueError) as exc:
                detail = str(exc)
        if image is None or not isinstance(result, QueueResult):
            if shown is None:
                # Handed to Discord before a crash and Discord can't say now: very probably shown.
                # A failure notice would replace it, so keep the job as delivered.
                log.warning("result gone after an interrupted delivery; kept as delivered", extra=log_fields(job))
                return DELIVERED
            return failed(FailureReason.RESULT_UNAVAILABLE, detail)
        delivery = Delivery(
            image=image,
            text=(result.text or None) if job.with_text else None,
            took=ctx.clock() - (job.submitted_at or job.created_at),
            late_cancel=job.cancel_requested_at is not None,
        )
        return await self._hand_over(await ctx.store.mark_delivery_attempt(job.id, now=ctx.clock()), delivery)

    async def _hand_over(self, job: JobRecord, delivery: Delivery) -> Step:
        ctx = self._ctx
        presenter = ctx.presenter()
        if presenter is None:
            raise RuntimeError("no presenter attached to the tracker")
        attempts = ctx.settings.delivery_attempts
        for attempt in range(1, attempts + 1):
            try:
                await presenter.publish(job, delivery)
                break
            except Exception as exc:
                log.warning("posting the image failed (attempt %d): %r", attempt, exc, extra=log_fields(job))
                if await self._shows_image(job):
                    break  # Discord took it although the call failed (a timeout on the answer)
                if attempt == attempts:
                    return failed(FailureReason.DELIVERY_FAILED, "the image could not be posted")
                # Ride out a short Discord or network outage: 2, 4, 8, 16 s between tries by default.
                await self._pause(min(60.0, ctx.settings.poll_min_interval * 2**attempt))
        self._image_shown = True
        if ctx.metrics is not None and self._completed_at is not None:
            ctx.metrics.delivery_lag(ctx.clock() - self._completed_at)
        return DELIVERED

    async def _fetch_result(self, job: JobRecord) -> QueueResult | None:
        ctx = self._ctx
        if self._result is not None:  # the poll that saw it finished brought it
            return self._result
        for _ in range(ctx.settings.delivery_attempts):
            try:
                result = await ctx.client.result(self._upstream(job))
            except QueueError as exc:
                log.warning("fetching the result failed: %s", exc.message, extra=log_fields(job))
            else:
                if isinstance(result, QueueResult):
                    return result
            await self._pause(ctx.settings.poll_min_interval)
        return None

    async def _shows_image(self, job: JobRecord) -> bool | None:
        """Whether the reply carries the image; ``None`` when Discord could not tell us."""
        presenter = self._ctx.presenter()
        latest = await self._ctx.store.get_job(job.id) or job  # the reply may have been re-posted
        try:
            return presenter is not None and await presenter.shows_image(latest)
        except Exception as exc:
            log.info("could not check the reply for the image: %r", exc, extra=log_fields(job))
            return None

    # -- the end ---------------------------------------------------------------------------

    async def _end(self, job: JobRecord, ending: Ended) -> None:
        ctx = self._ctx
        if ending.state is JobState.DELIVERED:
            row = await ctx.store.finish(job.id, JobState.DELIVERED, now=ctx.clock(), refund=False, told=True)
        else:
            failure = ending.event if isinstance(ending.event, Failure) else None
            row = await ctx.store.finish(
                job.id,
                ending.state,
                now=ctx.clock(),
                refund=True,
                error_type=failure.reason.value if failure else None,
                error_message=failure.detail if failure else None,
            )
        if row is None:
            return  # it had ended already: terminal states are final
        detail = ending.event.detail if isinstance(ending.event, Failure) else None
        log.info("%s %s", ending.state.value, ending.reason or "", extra=log_fields(row))
        if detail:
            log.debug("detail: %s", detail, extra=log_fields(row))
        if ctx.metrics is not None:
            ctx.metrics.job_finished(ending.state.value, ending.reason)
        if ending.event is not None:
            await tell(ctx, row, ending.event)

    async def _pause(self, seconds: float) -> bool:
        """Wait about ``seconds`` (on the injected clock's ``sleep``, ending on the poll grid: see
        :func:`on_grid`) or until :meth:`wake`; returns whether it was woken. One task per wait:
        :meth:`wake` cancels it."""
        if not self._woken:
            seconds = on_grid(self._ctx.clock(), seconds, self._ctx.settings.poll_tick)
            self._sleeper = asyncio.ensure_future(self._ctx.sleep(seconds))
            try:
                await self._sleeper
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not self._woken or (task is not None and task.cancelling()):
                    raise  # the run itself is being cancelled, not woken
            finally:
                self._sleeper = None
        woke, self._woken = self._woken, False
        return woke
