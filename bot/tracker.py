"""The job tracker: the one component that owns every active job.

It schedules; :class:`bot.jobrun.JobRun` runs one job. The tracker spawns a run for each new job
and, at a start, for every unfinished job in storage; a periodic sweep adopts any active job left
without a run (a task that died) and tells members whose job ended while Discord was unreachable.
Cancels go through it (one upstream cancel per job, whoever asks), and on shutdown it lets submits
already on the wire be answered and recorded, then stops every run: each resumes at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Coroutine, Iterator
from typing import Any

from bot.events import CancelResult, JobPresenter, final_event_of
from bot.jobrun import (
    Canceller,
    Clock,
    JobMetrics,
    JobRun,
    RunContext,
    Sleep,
    Step,
    TrackerSettings,
    log_fields,
    poll_policy,
    progress_of,
    show,
    tell,
)
from bot.models import JobRecord, JobState
from bot.queue import CancelOutcome, QueueClient
from bot.storage import NotOwnerError, Store
from bot.timing import TimingModel

__all__ = ["JobTracker", "TrackerSettings"]

TIMING_KEY = "timing_model"

log = logging.getLogger(__name__)


class JobTracker:
    """Owns every active job: one run each, durable transitions, a sweep for strays."""

    def __init__(
        self,
        store: Store,
        client: QueueClient,
        *,
        settings: TrackerSettings | None = None,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        metrics: JobMetrics | None = None,
    ) -> None:
        self._store = store
        self._settings = settings or TrackerSettings()
        self._presenter: JobPresenter | None = None
        self._cancels = Canceller(store, client, lambda: self._presenter, clock)
        self.timing = TimingModel(poll_policy(self._settings), rng=rng)
        self._saved_timing: str | None = None
        self._ctx = RunContext(
            store=store,
            client=client,
            presenter=lambda: self._presenter,
            settings=self._settings,
            cancels=self._cancels,
            clock=clock,
            sleep=sleep,
            rng=rng,
            metrics=metrics,
            timing=self.timing,
            closing=lambda: self._closing,
            guard_submit=self._guard_submit,
        )
        self._runs: dict[int, JobRun] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._preparing: set[int] = set()
        self._telling: set[int] = set()
        self._submits: set[asyncio.Task[Step]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._closing = False

    def attach(self, presenter: JobPresenter) -> None:
        """Connect the side that shows jobs to members (done once, before :meth:`resume`)."""
        self._presenter = presenter

    def is_tracking(self, job_id: int) -> bool:
        return job_id in self._tasks

    def changed(self, job_id: int) -> None:
        """Something outside the job's run changed its row (its reply, say): the run reads it again
        now instead of going on with what it last wrote."""
        if (run := self._runs.get(job_id)) is not None:
            run.wake()

    @property
    def accepting(self) -> bool:
        """False once shutdown began: no new job may be created."""
        return not self._closing

    # -- lifecycle -------------------------------------------------------------------------

    @contextlib.contextmanager
    def preparing(self, job_id: int) -> Iterator[None]:
        """While a command still prepares a new job (its row exists), the sweep leaves it alone."""
        self._preparing.add(job_id)
        try:
            yield
        finally:
            self._preparing.discard(job_id)

    def start(self, job: JobRecord) -> None:
        """Follow a job this process has just created and checked (state PENDING)."""
        self._spawn(job, fresh=True)

    async def resume(self) -> int:
        """Pick every unfinished job up again after a start, and keep sweeping; returns how many."""
        self._saved_timing = await self._store.get_meta(TIMING_KEY)
        self.timing.restore(self._saved_timing)
        count = await self.sweep()
        if count:
            log.info("resumed %d unfinished job(s)", count)
        if self._sweeper is None and not self._closing:
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="tracker-sweep")
        return count

    async def sweep(self) -> int:
        """Adopt active jobs that have no run; tell members not yet told how their job ended."""
        await self._save_timing()
        adopted = 0
        for job in await self._store.active_jobs():
            if job.id not in self._tasks and job.id not in self._preparing:
                adopted += self._spawn(job, fresh=False)
        since = self._ctx.clock() - self._settings.tell_window
        for job in await self._store.untold_jobs(since=since):
            event = final_event_of(job)
            if event is not None and job.id not in self._telling and job.id not in self._tasks:
                self._telling.add(job.id)
                try:
                    await tell(self._ctx, job, event)
                except NotOwnerError as exc:  # another process took the job meanwhile: it tells
                    log.info("left the job to its owner: %s", exc, extra=log_fields(job))
                finally:
                    self._telling.discard(job.id)
        return adopted

    async def _save_timing(self) -> None:
        """Keep what was learned of job durations, so a restart starts informed."""
        snapshot = self.timing.snapshot()
        if snapshot != self._saved_timing:
            await self._store.set_meta(TIMING_KEY, snapshot)
            self._saved_timing = snapshot

    async def _sweep_forever(self) -> None:
        while True:
            await self._ctx.sleep(self._settings.sweep_interval)
            try:
                # Take the jobs another process made for a server on this process's shards.
                if taken := await self._store.claim_shards():
                    log.info("took %d job(s) made by another process for this process's servers", taken)
                if (adopted := await self.sweep() - taken) > 0:
                    log.warning("adopted %d job(s) that had no task", adopted)
            except Exception:
                log.exception("the sweep failed; trying again later")

    async def close(self) -> None:
        """Stop following jobs (their state is stored; :meth:`resume` continues them). A submit
        already on the wire gets ``shutdown_grace`` seconds to be answered and recorded."""
        self._closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._submits:
            await asyncio.wait(self._submits, timeout=self._settings.shutdown_grace)
        tasks = [*self._tasks.values(), *self._submits, *([self._sweeper] if self._sweeper else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await self._save_timing()
        except Exception:
            log.warning("could not save the learned job timings", exc_info=True)

    def _spawn(self, job: JobRecord, *, fresh: bool) -> bool:
        if self._closing or job.id in self._tasks:
            return False
        run = JobRun(job, self._ctx, fresh=fresh)
        task = asyncio.create_task(run.run(), name=f"job-{job.id}")
        self._runs[job.id] = run
        self._tasks[job.id] = task

        def done(finished: asyncio.Task[None]) -> None:
            if self._tasks.get(job.id) is finished:
                del self._tasks[job.id]
                del self._runs[job.id]
                self._cancels.forget(job.id)
            if not finished.cancelled() and (exc := finished.exception()) is not None:
                if isinstance(exc, NotOwnerError):
                    log.info("stopped following the job: %s", exc, extra=log_fields(job))
                else:
                    log.error("the job's task crashed; the sweep will pick it up", exc_info=exc, extra=log_fields(job))

        task.add_done_callback(done)
        return True

    async def _guard_submit(self, submit: Coroutine[Any, Any, Step]) -> Step:
        task = asyncio.ensure_future(submit)
        self._submits.add(task)
        task.add_done_callback(self._submits.discard)
        return await asyncio.shield(task)

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
        recorded = await self._store.request_cancel(job_id, user_id=user_id, now=self._ctx.clock())
        if recorded is None:  # someone else's cancel (or the job's end) got there first
            latest = await self._store.get_job(job_id)
            ended = latest is None or latest.status.is_terminal
            return CancelResult.NOT_ACTIVE if ended else CancelResult.ALREADY_REQUESTED
        run = self._runs.get(job_id)
        if recorded.request_id is None:
            # Not submitted yet: the run ends it before submitting, or cancels it as soon as it
            # has a request id (a submit on the wire cannot be called back).
            if run is not None:
                run.wake()
            return CancelResult.REQUESTED
        self._cancels.notices.pop(job_id, None)
        await show(self._presenter, recorded, progress_of(recorded, self._ctx.clock(), cancelling=True))
        outcome = await self._cancels.send(recorded)
        if run is not None:
            run.wake()
        if outcome is None:
            return CancelResult.FAILED
        return CancelResult.TOO_LATE if outcome is CancelOutcome.ALREADY_COMPLETED else CancelResult.REQUESTED
