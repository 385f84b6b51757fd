"""The job tracker against the simulator and a real SQLite store, with a recording presenter."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
import pytest

from bot.devtools.fakediscord import wait_until
from bot.events import Cancelled, CancelResult, Delivery, Failure, JobEvent, Progress
from bot.jobrun import ShownKey, worth_an_edit
from bot.models import FailureReason, JobRecord, JobState, NewJob
from bot.queue import QueueClient, RetryPolicy
from bot.simulator import Fault, Simulator, SimulatorOptions, run_simulator
from bot.storage.sqlite import SqliteStore
from bot.tracker import JobTracker, TrackerSettings

KEY = "sim-key-for-tracker-tests"
FAST = TrackerSettings(poll_min_interval=0.02, poll_max_interval=0.05, job_timeout=30, position_interval=0.0)


class Recorder:
    """A presenter that keeps every event and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[tuple[int, JobEvent]] = []
        self._changed = asyncio.Condition()
        #: What ``shows_image`` answers: whether a Delivery was shown, unless a test says otherwise.
        self.image_check: bool | None = None

    async def shows_image(self, job: JobRecord) -> bool:
        if self.image_check is None:
            return any(isinstance(e, Delivery) for e in self.of(job.id))
        return self.image_check

    async def publish(self, job: JobRecord, event: JobEvent) -> None:
        async with self._changed:
            self.events.append((job.id, event))
            self._changed.notify_all()

    async def wait(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    def of(self, job_id: int) -> list[JobEvent]:
        return [e for j, e in self.events if j == job_id]

    def final(self, job_id: int) -> JobEvent | None:
        ends = [e for e in self.of(job_id) if not isinstance(e, Progress)]
        return ends[-1] if ends else None


@dataclass
class Rig:
    sim: Simulator
    store: SqliteStore
    client: QueueClient
    tracker: JobTracker
    recorder: Recorder

    async def new_job(self, *, resolution: str = "1K", prompt: str = "a lighthouse at dusk") -> JobRecord:
        created = await self.store.create_job(
            NewJob(
                user_id=1,
                guild_id=10,
                channel_id=20,
                message_id=30,
                application_id=5,
                interaction_token="t",
                token_expires_at=None,
                upload_limit=10 * 1024 * 1024,
                prompt=prompt,
                aspect_ratio="16:9",
                resolution=resolution,
                with_text=True,
                image_urls=(),
            ),
            now=1_800_000_000.0,
            default_4k_weight=2,
        )
        assert isinstance(created, JobRecord)
        return created

    async def behind(self, ahead: int, prompt: str = "a lighthouse at dusk") -> JobRecord:
        """Start ``ahead`` jobs (one runs, the rest queue: manual mode, one worker), then a job behind
        them; returns it once the upstream has every one."""
        blockers = [await self.new_job(prompt=f"ahead {i}") for i in range(ahead)]
        for blocker in blockers:
            self.tracker.start(blocker)
        await self.sim.wait_for(lambda: len(self.sim.jobs) == ahead)
        job = await self.new_job(prompt=prompt)
        self.tracker.start(job)
        await self.sim.wait_for(lambda: len(self.sim.jobs) == ahead + 1)
        return job

    async def finished(self, job_id: int, timeout: float = 5.0) -> JobEvent:
        await self.recorder.wait(lambda: self.recorder.final(job_id) is not None, timeout)
        event = self.recorder.final(job_id)
        assert event is not None
        # The member is shown the end before it is recorded (an image first of all): wait for the
        # run to end, so the stored row is final too.
        await wait_until(lambda: not self.tracker.is_tracking(job_id), timeout, what=f"job {job_id}'s run to end")
        return event


async def no_sleep(_: float) -> None:
    return None


@pytest.fixture
async def make_rig(tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    stack: list[object] = []
    opened: list[tuple[object, JobTracker, aiohttp.ClientSession, SqliteStore]] = []

    async def make(settings: TrackerSettings = FAST, **options: object) -> Rig:
        manager = run_simulator(SimulatorOptions(api_key=KEY, **options))  # type: ignore[arg-type]
        sim = await manager.__aenter__()
        session = aiohttp.ClientSession()
        store = await SqliteStore.open(str(tmp_path / "bot.sqlite3"))
        client = QueueClient(session, base_url=sim.base_url, api_key=KEY, retry=RetryPolicy(attempts=2), sleep=no_sleep)
        tracker = JobTracker(store, client, settings=settings, rng=random.Random(1))
        recorder = Recorder()
        tracker.attach(recorder)
        opened.append((manager, tracker, session, store))
        return Rig(sim, store, client, tracker, recorder)

    yield make
    del stack
    for manager, tracker, session, store in reversed(opened):
        await tracker.close()
        await session.close()
        await store.close()
        await manager.__aexit__(None, None, None)  # type: ignore[attr-defined]


Q, R = JobState.QUEUED, JobState.RUNNING


@pytest.mark.parametrize(
    ("shown", "key", "since", "expected"),
    [
        (None, (Q, 5, False, None), 0.0, True),  # the first progress of a run
        ((Q, 5, False, None), (Q, 5, False, None), 99.0, False),  # nothing changed
        ((Q, 5, False, None), (Q, 4, False, None), 29.9, False),  # only the position, too soon
        ((Q, 5, False, None), (Q, 4, False, None), 30.0, True),  # only the position, in time
        ((Q, 5, False, None), (R, None, False, None), 0.1, True),  # it started: at once
        ((Q, 5, False, None), (Q, 4, True, None), 0.1, True),  # a cancel was asked: at once
        ((Q, 5, False, None), (Q, 4, False, "notice-cancel-unknown"), 0.1, True),  # a note: at once
        ((Q, None, False, None), (Q, 3, False, None), 0.1, False),  # a position appears: a position change
    ],
)
def test_when_progress_is_worth_an_edit(shown: ShownKey | None, key: ShownKey, since: float, expected: bool) -> None:
    assert worth_an_edit(shown, key, since, position_interval=30.0) is expected


async def test_a_position_that_only_moves_waits_for_the_interval_but_a_start_is_shown_at_once(
    make_rig: Callable[..., object],
) -> None:
    """Within ``position_interval`` the reply (and the stored row) keep the position last shown while
    the run reads newer ones; the job starting is shown at the next read all the same."""
    rig: Rig = await make_rig(settings=replace(FAST, position_interval=3600.0), manual=True)  # type: ignore[misc]
    job = await rig.behind(2)  # one running, one queued
    await rig.recorder.wait(lambda: any(isinstance(e, Progress) and e.queue_position for e in rig.recorder.of(job.id)))
    ours = next(j for j in rig.sim.jobs.values() if j.body["prompt"] == job.prompt)
    first = next(e for e in rig.recorder.of(job.id) if isinstance(e, Progress) and e.queue_position)
    assert first.queue_position == 2

    running = next(j for j in rig.sim.jobs.values() if j.state == "IN_PROGRESS")
    rig.sim.finish(running.request_id)
    await rig.sim.wait_for(lambda: rig.sim.queue_position(ours.request_id) == 1)
    reads = len([c for c in rig.sim.calls_to("status") if c.request_id == ours.request_id])
    await rig.sim.wait_for(
        lambda: len([c for c in rig.sim.calls_to("status") if c.request_id == ours.request_id]) >= reads + 3
    )
    positions = [e.queue_position for e in rig.recorder.of(job.id) if isinstance(e, Progress)]
    assert positions == [2]  # position 1 was read, not shown
    stored = await rig.store.get_job(job.id)
    assert stored is not None and (stored.status, stored.queue_position) == (JobState.QUEUED, 2)

    running = next(j for j in rig.sim.jobs.values() if j.state == "IN_PROGRESS")
    rig.sim.finish(running.request_id)
    await rig.recorder.wait(
        lambda: any(isinstance(e, Progress) and e.state is JobState.RUNNING for e in rig.recorder.of(job.id))
    )
    rig.sim.finish(ours.request_id)
    assert isinstance(await rig.finished(job.id), Delivery)


async def test_job_follows_queue_positions_and_is_delivered(make_rig: Callable[..., object]) -> None:
    """Positions count down, the image arrives fitted, the job ends DELIVERED and keeps its cost."""
    rig: Rig = await make_rig(manual=True)  # type: ignore[misc]
    job = await rig.behind(3)  # one running, two queued
    ours = next(j for j in rig.sim.jobs.values() if j.body["prompt"] == job.prompt)
    for expected in (3, 2, 1):
        running = next(j for j in rig.sim.jobs.values() if j.state == "IN_PROGRESS")
        await rig.recorder.wait(
            lambda p=expected: any(  # type: ignore[misc]
                isinstance(e, Progress) and e.queue_position == p for e in rig.recorder.of(job.id)
            )
        )
        rig.sim.finish(running.request_id)
        await rig.sim.wait_for(lambda r=running: r.state == "COMPLETED")  # type: ignore[misc]
    await rig.sim.wait_for(lambda: ours.state == "IN_PROGRESS")
    await rig.recorder.wait(
        lambda: any(isinstance(e, Progress) and e.state is JobState.RUNNING for e in rig.recorder.of(job.id))
    )
    rig.sim.finish(ours.request_id)
    event = await rig.finished(job.id)
    assert isinstance(event, Delivery)
    positions = [e.queue_position for e in rig.recorder.of(job.id) if isinstance(e, Progress) and e.queue_position]
    assert positions[0] == 3 and positions == sorted(positions, reverse=True)
    assert set(positions) == {1, 2, 3}
    assert (event.image.width, event.image.height) == (1376, 768)
    assert event.text and not event.late_cancel
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.status is JobState.DELIVERED and stored.cost == 1


async def test_a_job_that_may_be_done_is_read_at_its_response_url_and_delivered_from_that_read(
    make_rig: Callable[..., object],
) -> None:
    """Once a job may well have finished, its polls read the response URL: 202 while it runs, and
    the read that finds it done brings the result with it (no status read, no second trip)."""
    rig: Rig = await make_rig(manual=True)  # type: ignore[misc]
    for _ in range(20):  # generations are learned to take 10 ms: anything running may be done
        rig.tracker.timing.observe_generation("1K", 0.01)
    job = await rig.new_job()
    rig.tracker.start(job)
    await rig.sim.wait_for(lambda: any(call.status == 202 for call in rig.sim.calls_to("result")))
    ours = next(iter(rig.sim.jobs.values()))
    rig.sim.finish(ours.request_id)
    assert isinstance(await rig.finished(job.id), Delivery)
    reads = rig.sim.calls_to("result")
    assert [call.status for call in reads] == [202] * (len(reads) - 1) + [200]
    assert all(call.received_at < reads[0].received_at for call in rig.sim.calls_to("status"))


@pytest.mark.parametrize(
    ("error_type", "reason"),
    [
        ("CONTENT_BLOCKED", FailureReason.CONTENT_BLOCKED),
        ("REQUEST_INVALID", FailureReason.INVALID_REQUEST),
        ("INFERENCE_TIMEOUT", FailureReason.UPSTREAM_TIMEOUT),
        ("INFERENCE_FAILURE", FailureReason.UPSTREAM_FAILED),
    ],
)
async def test_upstream_failure_is_reported_and_refunded(
    make_rig: Callable[..., object], error_type: str, reason: FailureReason
) -> None:
    rig: Rig = await make_rig(job_duration=0.01)  # type: ignore[misc]
    rig.sim.fail_next(error_type)
    job = await rig.new_job(resolution="4K")
    assert job.cost == 2
    rig.tracker.start(job)
    event = await rig.finished(job.id)
    assert isinstance(event, Failure) and event.reason is reason
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.status is JobState.FAILED and stored.cost == 0


async def test_cancel_while_queued(make_rig: Callable[..., object]) -> None:
    """One cancel reaches the upstream, the job ends CANCELLED at the queued stage, quota given back."""
    rig: Rig = await make_rig(manual=True)  # type: ignore[misc]
    ahead = await rig.new_job(prompt="ahead")
    rig.tracker.start(ahead)
    job = await rig.new_job()
    rig.tracker.start(job)
    await rig.store.get_job(job.id)
    await rig.recorder.wait(
        lambda: any(isinstance(e, Progress) and e.state is JobState.QUEUED for e in rig.recorder.of(job.id))
    )
    assert await rig.tracker.cancel(job.id, user_id=1) is CancelResult.REQUESTED
    event = await rig.finished(job.id)
    assert isinstance(event, Cancelled) and event.stage is JobState.QUEUED and event.by == 1
    assert len(rig.sim.calls_to("cancel")) == 1
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.status is JobState.CANCELLED and stored.cost == 0


async def test_cancel_while_running(make_rig: Callable[..., object]) -> None:
    rig: Rig = await make_rig(manual=True)  # type: ignore[misc]
    job = await rig.new_job()
    rig.tracker.start(job)
    await rig.recorder.wait(
        lambda: any(isinstance(e, Progress) and e.state is JobState.RUNNING for e in rig.recorder.of(job.id))
    )
    assert await rig.tracker.cancel(job.id, user_id=1) is CancelResult.REQUESTED
    event = await rig.finished(job.id)
    assert isinstance(event, Cancelled) and event.stage is JobState.RUNNING


async def test_cancel_accepted_but_job_finishes_is_delivered_as_late(make_rig: Callable[..., object]) -> None:
    rig: Rig = await make_rig(manual=True, cancel_running_finishes=True)  # type: ignore[misc]
    job = await rig.new_job()
    rig.tracker.start(job)
    await rig.sim.wait_for(lambda: any(j.state == "IN_PROGRESS" for j in rig.sim.jobs.values()))
    assert await rig.tracker.cancel(job.id, user_id=1) is CancelResult.REQUESTED
    rig.sim.finish(next(iter(rig.sim.jobs)))
    event = await rig.finished(job.id)
    assert isinstance(event, Delivery) and event.late_cancel


@pytest.mark.parametrize("status", [404, 500])
async def test_failed_cancel_leaves_the_job_running_with_a_notice(make_rig: Callable[..., object], status: int) -> None:
    rig: Rig = await make_rig(manual=True)  # type: ignore[misc]
    job = await rig.new_job()
    rig.tracker.start(job)
    await rig.sim.wait_for(lambda: any(j.state == "IN_PROGRESS" for j in rig.sim.jobs.values()))
    rig.sim.add_fault(Fault(endpoint="cancel", status=status, times=5))
    assert await rig.tracker.cancel(job.id, user_id=1) is CancelResult.FAILED
    notices = [e.notice for e in rig.recorder.of(job.id) if isinstance(e, Progress) and e.notice]
    assert notices and notices[-1].startswith("notice-cancel-")
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.cancel_requested_at is None and not stored.status.is_terminal
    rig.sim.finish(next(iter(rig.sim.jobs)))
    assert isinstance(await rig.finished(job.id), Delivery)


async def test_restart_resumes_without_submitting_again(make_rig: Callable[..., object], tmp_path: Path) -> None:
    """A tracker stopped mid-job is replaced by a new one that finishes the job from storage."""
    rig: Rig = await make_rig(manual=True)  # type: ignore[misc]
    job = await rig.new_job()
    rig.tracker.start(job)
    await rig.sim.wait_for(lambda: any(j.state == "IN_PROGRESS" for j in rig.sim.jobs.values()))
    await rig.recorder.wait(lambda: any(isinstance(e, Progress) for e in rig.recorder.of(job.id)))
    await rig.tracker.close()
    fresh = JobTracker(rig.store, rig.client, settings=FAST)
    recorder = Recorder()
    fresh.attach(recorder)
    assert await fresh.resume() == 1
    rig.sim.finish(next(iter(rig.sim.jobs)))
    await recorder.wait(lambda: recorder.final(job.id) is not None)
    assert isinstance(recorder.final(job.id), Delivery)
    assert len(rig.sim.submits()) == 1
    await fresh.close()


async def test_pending_job_whose_submit_never_started_is_submitted_at_restart(
    make_rig: Callable[..., object],
) -> None:
    """The bot stopped after the row was written but before the submit began: nothing reached the
    upstream, so the job is submitted now (once) and delivered."""
    rig: Rig = await make_rig(job_duration=0.01)  # type: ignore[misc]
    job = await rig.new_job()
    assert await rig.tracker.resume() == 1
    assert isinstance(await rig.finished(job.id), Delivery)
    assert len(rig.sim.submits()) == 1
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.status is JobState.DELIVERED and stored.cost == 1


async def test_pending_job_whose_submit_started_is_closed_as_interrupted(make_rig: Callable[..., object]) -> None:
    """The submit was on the wire when the bot died: it may exist upstream, so it is never sent again."""
    rig: Rig = await make_rig()  # type: ignore[misc]
    job = await rig.new_job()
    assert await rig.store.begin_submit(job.id, now=2.0) is not None
    assert await rig.tracker.resume() == 1
    event = await rig.finished(job.id)
    assert isinstance(event, Failure) and event.reason is FailureReason.INTERRUPTED
    assert rig.sim.submits() == []
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.cost == 0 and stored.told_at is not None


async def test_uncertain_submit_is_not_retried(make_rig: Callable[..., object]) -> None:
    rig: Rig = await make_rig()  # type: ignore[misc]
    rig.sim.add_fault(Fault(endpoint="submit", status=502, after_processing=True))
    job = await rig.new_job()
    rig.tracker.start(job)
    event = await rig.finished(job.id)
    assert isinstance(event, Failure) and event.reason is FailureReason.SUBMIT_UNCERTAIN
    assert len(rig.sim.calls_to("submit")) == 1


async def test_deadline_cancels_upstream_and_reports_timeout(make_rig: Callable[..., object]) -> None:
    rig: Rig = await make_rig(manual=True)  # type: ignore[misc]
    rig.tracker = JobTracker(
        rig.store, rig.client, settings=TrackerSettings(poll_min_interval=0.02, poll_max_interval=0.05, job_timeout=0.3)
    )
    rig.tracker.attach(rig.recorder)
    job = await rig.new_job()
    rig.tracker.start(job)
    event = await rig.finished(job.id)
    assert isinstance(event, Failure) and event.reason is FailureReason.UPSTREAM_TIMEOUT
    assert len(rig.sim.calls_to("cancel")) == 1
    await rig.tracker.close()


async def test_account_problem_on_submit(make_rig: Callable[..., object]) -> None:
    rig: Rig = await make_rig(balance=0)  # type: ignore[misc]
    job = await rig.new_job()
    rig.tracker.start(job)
    event = await rig.finished(job.id)
    assert isinstance(event, Failure) and event.reason is FailureReason.ACCOUNT_PROBLEM


class FailingPresenter(Recorder):
    """Shows everything except the image (e.g. Discord refuses every upload)."""

    def __init__(self) -> None:
        super().__init__()
        self.image_check = False

    async def publish(self, job: JobRecord, event: JobEvent) -> None:
        await super().publish(job, event)
        if isinstance(event, Delivery):
            raise RuntimeError("upload refused")


async def test_failed_delivery_is_reported_and_not_counted(make_rig: Callable[..., object]) -> None:
    rig: Rig = await make_rig(job_duration=0.01)  # type: ignore[misc]
    presenter = FailingPresenter()
    rig.tracker.attach(presenter)
    job = await rig.new_job()
    rig.tracker.start(job)
    await presenter.wait(lambda: isinstance(presenter.final(job.id), Failure))
    final = presenter.final(job.id)
    assert isinstance(final, Failure) and final.reason is FailureReason.DELIVERY_FAILED
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.status is JobState.FAILED and stored.cost == 0


async def test_job_finished_during_a_long_downtime_is_still_delivered(make_rig: Callable[..., object]) -> None:
    """Past its deadline when the bot comes back, but COMPLETED upstream: delivered, not timed out."""
    rig: Rig = await make_rig(manual=True)  # type: ignore[misc]
    job = await rig.new_job()
    rig.tracker.start(job)
    await rig.sim.wait_for(lambda: any(j.state == "IN_PROGRESS" for j in rig.sim.jobs.values()))
    await rig.tracker.close()
    rig.sim.finish(next(iter(rig.sim.jobs)))
    await rig.sim.wait_for(lambda: next(iter(rig.sim.jobs.values())).state == "COMPLETED")
    late = JobTracker(
        rig.store, rig.client, settings=TrackerSettings(poll_min_interval=0.02, poll_max_interval=0.05, job_timeout=0.0)
    )
    recorder = Recorder()
    late.attach(recorder)
    await late.resume()
    await recorder.wait(lambda: recorder.final(job.id) is not None)
    assert isinstance(recorder.final(job.id), Delivery)
    assert rig.sim.calls_to("cancel") == []
    await late.close()


async def test_interrupted_delivery_with_the_result_gone_stays_delivered(make_rig: Callable[..., object]) -> None:
    """A crash after the image was handed to Discord (which can't be asked right now) must not turn
    it into a failure or a refund."""
    rig: Rig = await make_rig()  # type: ignore[misc]
    rig.recorder.image_check = None

    async def cannot_tell(job: JobRecord) -> bool:
        raise RuntimeError("Discord is unreachable")

    rig.recorder.shows_image = cannot_tell  # type: ignore[method-assign]
    job = await rig.new_job()
    job = await rig.store.mark_submitted(
        job.id, request_id="mmsu_gone", status_url="", response_url="", cancel_url="", queue_position=0, now=1.0
    )
    await rig.store.mark_delivering(job.id, now=2.0)
    await rig.store.mark_delivery_attempt(job.id, now=3.0)
    await rig.tracker.resume()  # the simulator does not know mmsu_gone: the result is unavailable
    await wait_state(rig, job.id, JobState.DELIVERED)
    assert rig.recorder.final(job.id) is None  # the reply was left alone
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.cost == 1


async def test_two_simultaneous_cancels_send_one(make_rig: Callable[..., object]) -> None:
    rig: Rig = await make_rig(manual=True)  # type: ignore[misc]
    job = await rig.new_job()
    rig.tracker.start(job)
    await rig.sim.wait_for(lambda: any(j.state == "IN_PROGRESS" for j in rig.sim.jobs.values()))
    results = await asyncio.gather(rig.tracker.cancel(job.id, user_id=1), rig.tracker.cancel(job.id, user_id=2))
    # One records and sends it; the other finds it requested, or (when the job was quick to end
    # upstream) already over.
    assert results.count(CancelResult.REQUESTED) == 1
    assert {r for r in results if r is not CancelResult.REQUESTED} <= {
        CancelResult.ALREADY_REQUESTED,
        CancelResult.NOT_ACTIVE,
    }
    await rig.finished(job.id)
    assert len(rig.sim.calls_to("cancel")) == 1


async def test_a_cancel_is_not_stuck_behind_slow_upstream_calls(make_rig: Callable[..., object]) -> None:
    """With every call slot taken by a slow status poll, a cancel still goes out at once."""
    rig: Rig = await make_rig(manual=True)  # type: ignore[misc]
    session = aiohttp.ClientSession()
    narrow = QueueClient(session, base_url=rig.sim.base_url, api_key=KEY, concurrency=1, sleep=no_sleep)
    tracker = JobTracker(rig.store, narrow, settings=FAST)
    tracker.attach(rig.recorder)
    try:
        job = await rig.new_job()
        tracker.start(job)
        await rig.sim.wait_for(lambda: any(j.state == "IN_PROGRESS" for j in rig.sim.jobs.values()))
        rig.sim.add_fault(Fault(endpoint="status", delay=1.5, times=5))
        await rig.sim.wait_for(lambda: any(c.fault is not None for c in rig.sim.calls_to("status")))
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await tracker.cancel(job.id, user_id=1) is CancelResult.REQUESTED
        assert loop.time() - started < 1.0
    finally:
        await tracker.close()
        await session.close()


async def wait_state(rig: Rig, job_id: int, state: JobState) -> None:
    async def reached() -> bool:
        job = await rig.store.get_job(job_id)
        return job is not None and job.status is state

    await wait_until(reached, 5.0, what=f"job {job_id} {state.value}")


async def test_an_unexpected_error_ends_the_job_cleanly(make_rig: Callable[..., object]) -> None:
    """A bug while following a job fails it (refunded, member told) instead of leaving it hanging."""
    rig: Rig = await make_rig(job_duration=0.01)  # type: ignore[misc]

    async def broken(handle: object) -> object:
        raise ZeroDivisionError("a bug")

    rig.client.status = broken  # type: ignore[method-assign,assignment]
    job = await rig.new_job()
    rig.tracker.start(job)
    event = await rig.finished(job.id)
    assert isinstance(event, Failure) and event.reason is FailureReason.UPSTREAM_FAILED
    await wait_state(rig, job.id, JobState.FAILED)
    await wait_until(lambda: not rig.tracker.is_tracking(job.id), 5.0, what="the job's task to end")
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.cost == 0 and stored.interaction_token is None


# --------------------------------------------------------------------------- recovery and defects


async def test_result_with_no_image_and_no_error_fails_cleanly(make_rig: Callable[..., object]) -> None:
    """COMPLETED, no image, "error": null: a no-image failure, refunded and told; never stuck DELIVERING."""
    rig: Rig = await make_rig(job_duration=0.01)  # type: ignore[misc]
    rig.sim.add_fault(Fault(endpoint="result", status=200, body='{"status": "COMPLETED", "error": null}'))
    job = await rig.new_job()
    rig.tracker.start(job)
    event = await rig.finished(job.id)
    assert isinstance(event, Failure) and event.reason is FailureReason.NO_IMAGE
    await wait_state(rig, job.id, JobState.FAILED)
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.cost == 0
    usage = await rig.store.usage(10, 1, day=stored.quota_day)
    assert usage.user_active == 0  # no longer counts against max_concurrent
    assert await rig.tracker.cancel(job.id, user_id=1) is CancelResult.NOT_ACTIVE


async def test_cancel_recorded_before_the_submit_stops_it(make_rig: Callable[..., object]) -> None:
    """A cancel that lands while the job is still being prepared (its references checked): the job is
    cancelled and never submitted, although the tracker was handed the record read before it."""
    rig: Rig = await make_rig()  # type: ignore[misc]
    job = await rig.new_job()
    with rig.tracker.preparing(job.id):
        assert await rig.tracker.cancel(job.id, user_id=1) is CancelResult.REQUESTED
        rig.tracker.start(job)  # the stale record: no cancel in it
    event = await rig.finished(job.id)
    assert isinstance(event, Cancelled) and event.stage is JobState.PENDING
    assert rig.sim.submits() == []
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.status is JobState.CANCELLED and stored.cost == 0


class GatedStore(SqliteStore):
    """``mark_submitted`` writes, then waits for a ``request_cancel`` before reading its row back."""

    gate: asyncio.Event

    async def mark_submitted(self, job_id: int, **kwargs: object) -> JobRecord:  # type: ignore[override]
        await super().mark_submitted(job_id, **kwargs)  # type: ignore[arg-type]
        await self.gate.wait()
        job = await self.get_job(job_id)
        assert job is not None
        return job

    async def request_cancel(self, job_id: int, *, user_id: int, now: float) -> JobRecord | None:
        recorded = await super().request_cancel(job_id, user_id=user_id, now=now)
        self.gate.set()
        return recorded


async def test_cancel_and_submit_interleaved_send_one_cancel(make_rig: Callable[..., object], tmp_path: Path) -> None:
    """The submit's answer is recorded and a member's cancel is recorded in between its write and its
    read: both sides see a submitted job with a cancel, and still only one cancel goes upstream."""
    rig: Rig = await make_rig(manual=True)  # type: ignore[misc]
    store = await GatedStore.open(str(tmp_path / "gated.sqlite3"))
    store.gate = asyncio.Event()
    tracker = JobTracker(store, rig.client, settings=FAST)
    tracker.attach(rig.recorder)
    rig.store = store
    try:
        job = await rig.new_job()
        tracker.start(job)

        async def submitted() -> bool:
            row = await store.get_job(job.id)
            return row is not None and row.request_id is not None

        await wait_until(submitted, 5.0, what="the submit's answer recorded")
        assert await tracker.cancel(job.id, user_id=1) is CancelResult.REQUESTED
        event = await rig.finished(job.id)
        assert isinstance(event, Cancelled)
        assert len(rig.sim.calls_to("cancel")) == 1
    finally:
        await tracker.close()
        await store.close()


async def test_terminal_states_are_final(make_rig: Callable[..., object]) -> None:
    rig: Rig = await make_rig()  # type: ignore[misc]
    job = await rig.new_job()
    ended = await rig.store.finish(job.id, JobState.DELIVERED, now=5.0, refund=False, told=True)
    assert ended is not None and ended.status is JobState.DELIVERED
    assert await rig.store.finish(job.id, JobState.FAILED, now=6.0, refund=True, error_type="x") is None
    assert (await rig.store.clear_cancel(job.id, now=7.0)).status is JobState.DELIVERED
    assert (await rig.store.mark_delivering(job.id, now=8.0)).status is JobState.DELIVERED
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.status is JobState.DELIVERED and stored.cost == 1
    assert stored.error_type is None and stored.finished_at == 5.0


class FlakyFinishStore(SqliteStore):
    """The first two writes of a DELIVERED row fail (a full disk, say)."""

    failures = 2

    async def finish(self, job_id: int, state: JobState, **kwargs: object) -> JobRecord | None:  # type: ignore[override]
        if state is JobState.DELIVERED and self.failures:
            self.failures -= 1
            raise OSError("disk I/O error")
        return await super().finish(job_id, state, **kwargs)  # type: ignore[arg-type]


async def test_a_failed_delivered_write_never_turns_a_shown_image_into_a_failure(
    make_rig: Callable[..., object], tmp_path: Path
) -> None:
    """The image was shown, then recording DELIVERED failed (twice): no failure notice replaces the
    image, no refund; the task dies, and the sweep adopts the job and finds the image in the reply."""
    rig: Rig = await make_rig(job_duration=0.01)  # type: ignore[misc]
    store = await FlakyFinishStore.open(str(tmp_path / "flaky.sqlite3"))
    tracker = JobTracker(store, rig.client, settings=FAST)
    tracker.attach(rig.recorder)
    rig.store = store
    try:
        job = await rig.new_job()
        tracker.start(job)
        await rig.recorder.wait(lambda: isinstance(rig.recorder.final(job.id), Delivery))
        await wait_until(lambda: not tracker.is_tracking(job.id), 5.0, what="the job's task to end")
        stored = await store.get_job(job.id)
        assert stored is not None and stored.status is JobState.DELIVERING  # no run follows it now
        assert await tracker.sweep() == 1  # adopted
        await wait_state(rig, job.id, JobState.DELIVERED)
        assert [type(e) for e in rig.recorder.of(job.id) if not isinstance(e, Progress)] == [Delivery]
        assert len(rig.sim.calls_to("result")) == 1  # found in the reply: not fetched or posted again
        stored = await store.get_job(job.id)
        assert stored is not None and stored.cost == 1
    finally:
        await tracker.close()
        await store.close()


class TimeoutAfterShowing(Recorder):
    """Discord takes the image, but the call still raises (the answer timed out)."""

    async def publish(self, job: JobRecord, event: JobEvent) -> None:
        await super().publish(job, event)
        if isinstance(event, Delivery):
            raise TimeoutError


async def test_a_delivery_accepted_despite_an_error_is_not_posted_again(make_rig: Callable[..., object]) -> None:
    rig: Rig = await make_rig(job_duration=0.01)  # type: ignore[misc]
    presenter = TimeoutAfterShowing()
    rig.tracker.attach(presenter)
    job = await rig.new_job()
    rig.tracker.start(job)
    await wait_state(rig, job.id, JobState.DELIVERED)
    assert [type(e) for e in presenter.of(job.id) if not isinstance(e, Progress)] == [Delivery]
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.cost == 1


class Unreachable(Recorder):
    """Discord can't be reached: final states can't be shown (until ``reachable``)."""

    reachable = False

    async def publish(self, job: JobRecord, event: JobEvent) -> None:
        if not isinstance(event, Progress) and not self.reachable:
            raise ConnectionError("Discord is unreachable")
        await super().publish(job, event)


async def test_a_member_not_told_of_the_end_is_told_by_the_sweep(make_rig: Callable[..., object]) -> None:
    rig: Rig = await make_rig(job_duration=0.01)  # type: ignore[misc]
    presenter = Unreachable()
    rig.tracker.attach(presenter)
    rig.sim.fail_next("CONTENT_BLOCKED")
    job = await rig.new_job()
    rig.tracker.start(job)
    await wait_state(rig, job.id, JobState.FAILED)
    await wait_until(lambda: not rig.tracker.is_tracking(job.id), 5.0, what="the job's task to end")
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.told_at is None and stored.interaction_token is not None
    await rig.tracker.sweep()
    assert presenter.final(job.id) is None  # still unreachable: try again later
    presenter.reachable = True
    await rig.tracker.sweep()
    final = presenter.final(job.id)
    assert isinstance(final, Failure) and final.reason is FailureReason.CONTENT_BLOCKED
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.told_at is not None and stored.interaction_token is None


async def test_the_sweep_runs_on_the_injected_clock(make_rig: Callable[..., object], tmp_path: Path) -> None:
    """An active job left without a task is adopted by the periodic sweep; no real waiting."""
    rig: Rig = await make_rig(job_duration=0.01)  # type: ignore[misc]
    sweep_due = asyncio.Queue[None]()
    sweep_waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        if seconds == FAST.sweep_interval:
            sweep_waits.append(seconds)
            await sweep_due.get()  # the fake clock reaches the next sweep when the test says so
        else:
            await asyncio.sleep(0)

    tracker = JobTracker(rig.store, rig.client, settings=FAST, sleep=fake_sleep)
    tracker.attach(rig.recorder)
    try:
        assert await tracker.resume() == 0
        job = await rig.new_job()  # left behind as a dead task would leave it: its submit had started
        await rig.store.begin_submit(job.id, now=1.0)
        await wait_until(lambda: len(sweep_waits) == 1, 5.0, what="the sweeper to wait for its turn")
        assert rig.recorder.final(job.id) is None
        sweep_due.put_nowait(None)
        event = await rig.finished(job.id)
        assert isinstance(event, Failure) and event.reason is FailureReason.INTERRUPTED
    finally:
        await tracker.close()


async def test_shutdown_lets_a_submit_on_the_wire_be_recorded(make_rig: Callable[..., object]) -> None:
    """Closing while a submit waits for its answer: the answer is recorded, so the next start follows
    the job instead of closing it as interrupted."""
    rig: Rig = await make_rig(manual=True)  # type: ignore[misc]
    rig.sim.add_fault(Fault(endpoint="submit", delay=0.3, times=1))
    job = await rig.new_job()
    rig.tracker.start(job)
    await rig.sim.wait_for(lambda: bool(rig.sim.calls_to("submit")))
    await rig.tracker.close()
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.status is JobState.QUEUED and stored.request_id is not None
    assert not rig.tracker.accepting
