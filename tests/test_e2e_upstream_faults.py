"""Upstream faults end to end: the real bot, the fake Discord, and a misbehaving simulator.

The queue client's own handling of each fault (retries, backoff, one log line per outage) is tested
in tests/test_queue_client.py; here the question is what members see: jobs inside their deadline
ride out an outage and are delivered, and a job the upstream lost is ended and told.
"""

from __future__ import annotations

import logging

import pytest

from bot.models import JobState
from bot.simulator import TRUNCATED_JSON, Fault
from tests.conftest import StartWorld
from tests.harness import Rig, embed_text


async def generating(rig: Rig, prompt: str) -> tuple[object, str]:
    interaction = await rig.imagine(rig.fake.alice, prompt=prompt)
    await rig.sim.wait_for(
        lambda: any(j.body["prompt"] == prompt and j.state == "IN_PROGRESS" for j in rig.sim.jobs.values())
    )
    job = next(j for j in rig.sim.jobs.values() if j.body["prompt"] == prompt)
    return interaction, job.request_id


@pytest.mark.parametrize(
    "fault",
    [
        Fault(endpoint="status", status=503, times=40),  # an outage: every status read fails for a while
        Fault(endpoint="status", status=429, retry_after=0.05, times=20),  # rate limited, Retry-After honoured
        Fault(endpoint="status", body=TRUNCATED_JSON, times=10),  # malformed JSON
        Fault(endpoint="result", status=502, times=6),  # the result read fails a few times
    ],
    ids=["5xx-outage", "429-retry-after", "malformed-json", "result-5xx"],
)
async def test_jobs_inside_their_deadline_ride_out_upstream_faults(
    world: StartWorld, fault: Fault, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    rig = await world(sim={"manual": True})
    interaction, request_id = await generating(rig, "through the storm")
    rig.sim.add_fault(fault)

    def faulted() -> int:
        return len([c for c in rig.sim.calls_to(fault.endpoint) if c.fault is not None])

    if fault.endpoint == "status":
        await rig.sim.wait_for(lambda: faulted() >= 3)
    rig.sim.finish(request_id)
    reply = await interaction.wait_original(lambda m: bool(m.attachments), timeout=15.0)  # type: ignore[attr-defined]
    assert "Done" in embed_text(reply) and faulted() >= 3
    job = await rig.store.job_by_message(int(reply.id))
    assert job is not None
    job = await rig.wait_job(job.id, lambda j: j.status is JobState.DELIVERED)
    assert job.cost == 1
    assert len(rig.sim.submits()) == 1
    outage_lines = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(outage_lines) <= 1  # one operator line per outage, never one per poll


async def test_an_api_key_revoked_mid_run_is_logged_once_and_jobs_resume_when_it_is_back(
    world: StartWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    rig = await world(sim={"manual": True})
    first, first_id = await generating(rig, "before the key was revoked")
    rig.sim.revoke_key()
    await rig.sim.wait_for(lambda: sum(1 for c in rig.sim.calls_to("status") if c.status == 401) >= 5)
    refused = [r for r in caplog.records if "refused the API key" in r.getMessage()]
    assert len(refused) == 1 and refused[0].levelno == logging.ERROR
    assert all(rig.settings.odirouter_api_key not in r.getMessage() for r in caplog.records)
    rig.sim.restore_key()
    rig.sim.finish(first_id)
    reply = await first.wait_original(lambda m: bool(m.attachments), timeout=15.0)  # type: ignore[attr-defined]
    job = await rig.store.job_by_message(int(reply.id))
    assert job is not None
    await rig.wait_job(job.id, lambda j: j.status is JobState.DELIVERED)


async def test_a_job_the_upstream_no_longer_knows_is_ended_and_told(world: StartWorld) -> None:
    rig = await world(sim={"manual": True})
    interaction, _ = await generating(rig, "forgotten upstream")
    rig.sim.add_fault(Fault(endpoint="status", status=404, times=5))
    reply = await interaction.wait_original(lambda m: "lost track" in embed_text(m), timeout=10.0)  # type: ignore[attr-defined]
    job = await rig.wait_job(
        (await rig.store.job_by_message(int(reply.id))).id,  # type: ignore[union-attr]
        lambda j: j.status is JobState.FAILED and j.told_at is not None,
    )
    assert job.error_type == "lost_upstream" and job.cost == 0
