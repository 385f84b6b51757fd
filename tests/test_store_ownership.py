"""Job ownership for sharding, enforced by the store on every backend: which shard a job is on, who
owns it, that every state change is refused to a process that does not own the job, that the resume
and sweep reads see only a process's own jobs, and that quotas stay exact across store instances."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bot.models import JobRecord, JobState, LimitKind, Ownership, QuotaRefusal, shard_of
from bot.storage import NotOwnerError, Store
from tests.stores import NOW, OpenStore, created, new_job

SHARD0_GUILD = 10  # (10 >> 22) % 2 == 0
SHARD1_GUILD = (1 << 22) | 7  # (… >> 22) % 2 == 1
A = Ownership("a", shard_count=2, shard_ids=frozenset({0}))
B = Ownership("b", shard_count=2, shard_ids=frozenset({1}))


def test_shard_of_follows_discords_rule() -> None:
    guild = 81384788765712384  # a real server id
    assert shard_of(guild, 1) == 0
    assert shard_of(guild, 4) == 2  # (guild >> 22) is 19403645698
    assert shard_of(guild, 3) == 1
    assert shard_of(None, 16) == 0  # direct messages are on shard 0
    assert A.owns(SHARD0_GUILD) and A.owns(None) and not A.owns(SHARD1_GUILD)
    assert B.owns(SHARD1_GUILD) and not B.owns(None)
    with pytest.raises(ValueError):
        Ownership("x", shard_count=2, shard_ids=frozenset({2}))
    with pytest.raises(ValueError):
        Ownership("", shard_count=1)


async def test_a_single_process_owns_every_job(open_test_store: OpenStore) -> None:
    store = await open_test_store()
    assert store.ownership == Ownership()
    jobs = [await created(store, new_job(guild=g)) for g in (SHARD0_GUILD, SHARD1_GUILD, None)]
    assert [(j.shard_id, j.owner) for j in jobs] == [(0, "main")] * 3
    assert [j.id for j in await store.active_jobs()] == [j.id for j in jobs]
    assert await store.claim_shards() == 0  # nothing to take: every job is its own already


async def test_a_job_is_owned_by_its_shards_process_only(open_test_store: OpenStore) -> None:
    a, b = await open_test_store(A), await open_test_store(B)
    ours = await created(a, new_job(guild=SHARD0_GUILD))
    dm = await created(a, new_job(guild=None))
    theirs = await created(a, new_job(guild=SHARD1_GUILD))  # e.g. a button pressed in a message B posted
    assert (ours.shard_id, ours.owner) == (0, "a")
    assert (dm.shard_id, dm.owner) == (0, "a")
    assert (theirs.shard_id, theirs.owner) == (1, None)  # left for shard 1's owner
    assert [j.id for j in await a.active_jobs()] == [ours.id, dm.id]
    assert await b.active_jobs() == []
    assert await b.claim_shards() == 1
    assert [j.id for j in await b.active_jobs()] == [theirs.id]
    assert (await a.get_job(theirs.id)).owner == "b"  # type: ignore[union-attr]  # display reads see every job
    assert await a.active_counts() == {"pending": 2}
    assert await b.active_counts() == {"pending": 1}


async def test_a_restarted_process_takes_its_shards_jobs_back(open_test_store: OpenStore) -> None:
    old = await open_test_store(B)
    job = await created(old, new_job(guild=SHARD1_GUILD))
    told = await created(old, new_job(guild=SHARD1_GUILD))
    await old.finish(told.id, JobState.FAILED, now=NOW, refund=True)  # not told yet
    done = await created(old, new_job(guild=SHARD1_GUILD))
    await old.finish(done.id, JobState.DELIVERED, now=NOW, refund=False, told=True)
    new = await open_test_store(replace_owner(B, "b2"))
    assert await new.claim_shards() == 2  # the unfinished one and the untold one; the delivered stays
    assert [j.id for j in await new.active_jobs()] == [job.id]
    assert [j.id for j in await new.untold_jobs(since=0)] == [told.id]
    assert await old.active_jobs() == [] and await old.untold_jobs(since=0) == []
    with pytest.raises(NotOwnerError):
        await old.begin_submit(job.id, now=NOW)
    assert (await new.begin_submit(job.id, now=NOW)) is not None
    assert (await new.get_job(done.id)).owner == "b"  # type: ignore[union-attr]


async def test_a_change_of_shard_count_moves_unfinished_jobs(open_test_store: OpenStore) -> None:
    single = await open_test_store()
    job = await created(single, new_job(guild=SHARD1_GUILD))
    assert job.shard_id == 0
    b = await open_test_store(B)
    assert await b.claim_shards() == 1
    moved = await b.get_job(job.id)
    assert moved is not None and (moved.shard_id, moved.owner) == (1, "b")


def replace_owner(ownership: Ownership, owner: str) -> Ownership:
    return Ownership(owner, ownership.shard_count, ownership.shard_ids)


# Each state change, with what brings a fresh job to where the change applies.
Write = Callable[[Store, int], Awaitable[Any]]
WRITES: dict[str, tuple[list[Write], Write]] = {
    "begin_submit": ([], lambda s, j: s.begin_submit(j, now=NOW + 1)),
    "mark_submitted": (
        [lambda s, j: s.begin_submit(j, now=NOW)],
        lambda s, j: s.mark_submitted(
            j, request_id=f"r{j}", status_url="s", response_url="r", cancel_url="c", queue_position=3, now=NOW + 1
        ),
    ),
    "update_progress": (
        [lambda s, j: s.begin_submit(j, now=NOW), lambda s, j: submit(s, j)],
        lambda s, j: s.update_progress(j, JobState.RUNNING, queue_position=None, started_at=NOW + 1, now=NOW + 1),
    ),
    "mark_delivering": (
        [lambda s, j: s.begin_submit(j, now=NOW), lambda s, j: submit(s, j)],
        lambda s, j: s.mark_delivering(j, now=NOW + 1),
    ),
    "request_cancel": ([], lambda s, j: s.request_cancel(j, user_id=1, now=NOW + 1)),
    "clear_cancel": (
        [lambda s, j: s.request_cancel(j, user_id=1, now=NOW)],
        lambda s, j: s.clear_cancel(j, now=NOW + 1),
    ),
    "mark_delivery_attempt": ([], lambda s, j: s.mark_delivery_attempt(j, now=NOW + 1)),
    "forget_token": ([], lambda s, j: s.forget_token(j)),
    "finish": ([], lambda s, j: s.finish(j, JobState.FAILED, now=NOW + 1, refund=True)),
    "mark_told": (
        [lambda s, j: s.finish(j, JobState.FAILED, now=NOW, refund=True)],
        lambda s, j: s.mark_told(j, now=NOW + 1),
    ),
    "set_reply": ([], lambda s, j: s.set_reply(j, message_id=555, token_dead=True, now=NOW + 1)),
}


async def submit(store: Store, job_id: int) -> JobRecord:
    return await store.mark_submitted(
        job_id, request_id=f"r{job_id}", status_url="s", response_url="r", cancel_url="c", queue_position=3, now=NOW
    )


@pytest.mark.parametrize("write", sorted(WRITES))
async def test_every_state_change_is_refused_to_a_process_that_does_not_own_the_job(
    open_test_store: OpenStore, write: str
) -> None:
    a, b = await open_test_store(A), await open_test_store(B)
    prepare, change = WRITES[write]
    for owner, other in ((a, b), (b, a)):
        guild = SHARD0_GUILD if owner is a else SHARD1_GUILD
        job = await created(owner, new_job(guild=guild))
        for step in prepare:
            await step(owner, job.id)
        before = await owner.get_job(job.id)
        with pytest.raises(NotOwnerError) as refused:
            await change(other, job.id)
        assert refused.value.job_id == job.id and refused.value.owner == owner.ownership.owner
        assert await owner.get_job(job.id) == before  # nothing changed
        await change(owner, job.id)
        after = await owner.get_job(job.id)
        assert after is not None and after != before  # the owner's change went through


async def test_a_job_nobody_claimed_is_refused_to_everyone(open_test_store: OpenStore) -> None:
    a = await open_test_store(A)
    job = await created(a, new_job(guild=SHARD1_GUILD))
    with pytest.raises(NotOwnerError) as refused:
        await a.finish(job.id, JobState.FAILED, now=NOW, refund=True)
    assert refused.value.owner is None


async def test_failed_jobs_are_logged_by_their_shards_process(open_test_store: OpenStore) -> None:
    a, b = await open_test_store(A), await open_test_store(B)
    for store, guild in ((a, SHARD0_GUILD), (b, SHARD1_GUILD)):
        await store.set_log_channel(guild, 900 + guild % 10, by=1, now=NOW)
        job = await created(store, new_job(guild=guild))
        await store.finish(job.id, JobState.FAILED, now=NOW + 1, refund=True, error_type="x")
    logged_a = await a.failed_jobs_to_log(after=(0.0, 0), limit=10)
    logged_b = await b.failed_jobs_to_log(after=(0.0, 0), limit=10)
    assert [j.guild_id for j, _ in logged_a] == [SHARD0_GUILD]
    assert [j.guild_id for j, _ in logged_b] == [SHARD1_GUILD]


async def test_quota_reservations_are_exact_across_store_instances(open_test_store: OpenStore) -> None:
    """Two stores (two connections: on PostgreSQL, two pools) on one database, many reservations at
    once against one server-wide limit of 5: exactly 5 are made."""
    one = await open_test_store(A)
    two = await open_test_store(replace_owner(A, "a2"))
    await one.set_quota(SHARD0_GUILD, {"guild_daily": 5}, user_id=99, now=NOW)
    results = await asyncio.gather(
        *(
            store.create_job(new_job(user=100 + i, guild=SHARD0_GUILD), now=NOW, default_4k_weight=2)
            for i in range(30)
            for store in (one, two)
        )
    )
    assert sum(isinstance(r, JobRecord) for r in results) == 5
    assert {r.limit for r in results if isinstance(r, QuotaRefusal)} == {LimitKind.GUILD_DAILY}
    assert (await one.usage(SHARD0_GUILD, 100, day="2027-01-15")).guild_used == 5
