"""Discord faults mid-job, end to end: the real discord.py against the fake Discord, the simulator.

Whatever Discord does (a deleted reply or channel, permissions taken away, a gateway outage,
5xx answers, slow answers, a Discord that is down when the job ends), every job reaches a terminal
state, an image counts only when it was shown, and the member is told wherever the bot can still
reach them.
"""

from __future__ import annotations

import logging
import time

import discord
import pytest

from bot.devtools.fakediscord import FakeInteraction, FakeMessage, LoggedRequest, Permission, wait_until
from bot.models import FailureReason, JobRecord, JobState
from bot.simulator import SimJob
from bot.tracker import TrackerSettings
from tests.conftest import StartWorld
from tests.harness import Rig, embed_text
from tests.test_e2e_cancel import block_queue

# Past the interaction token's 15 minutes (with the presenter's margin): every edit uses the bot token.
TOKEN_GONE = 15 * 60.0
EDIT = r"/messages/\d+$"
DELIVERY_ATTEMPTS = TrackerSettings().delivery_attempts


def late_clock() -> float:
    return time.time() + TOKEN_GONE


def running(rig: Rig) -> SimJob:
    return next(j for j in rig.sim.jobs.values() if j.state == "IN_PROGRESS")


async def generating(rig: Rig, interaction: FakeInteraction) -> tuple[FakeMessage, JobRecord]:
    """Wait until the job's reply says it is generating; return the reply and the job."""
    reply = await interaction.wait_original(lambda m: "Generating" in embed_text(m))
    job = await rig.job_for(interaction)
    await rig.sim.wait_for(lambda: any(j.state == "IN_PROGRESS" for j in rig.sim.jobs.values()))
    await own_cancel_reaction(rig, reply)
    return reply, job


async def own_cancel_reaction(rig: Rig, reply: FakeMessage) -> None:
    """The bot's own ❌ goes on with the reply's first edit, right after it: wait for it, so that the
    fault a test brings about next does not meet it."""
    await rig.fake.wait_until(lambda: rig.fake.bot_user.id in reply.reactions.get("❌", []), 5.0, "the bot's ❌")


async def ended(rig: Rig, job_id: int, timeout: float = 10.0) -> JobRecord:
    """Wait until the job is terminal, its member told, and its run gone from the tracker."""
    job = await rig.wait_job(
        job_id, lambda j: j.status.is_terminal and j.told_at is not None, timeout, what="the job's end, told"
    )
    await wait_until(lambda: not rig.bot.tracker.is_tracking(job_id), timeout, what="the job's run to end")
    return job


async def finished_untold(rig: Rig, job_id: int, timeout: float = 10.0) -> JobRecord:
    """Wait until the job is terminal and its run has ended although the member was not told."""
    await rig.wait_job(job_id, lambda j: j.status.is_terminal, timeout, what="the job's end")
    await wait_until(lambda: not rig.bot.tracker.is_tracking(job_id), timeout, what="the job's run to end")
    latest = await rig.store.get_job(job_id)
    assert latest is not None
    return latest


def with_image(rig: Rig) -> list[FakeMessage]:
    return [m for m in rig.fake.messages.values() if m.attachments and not m.deleted]


def about(rig: Rig, job: JobRecord, *, since: int = 0) -> list[LoggedRequest]:
    """The REST calls (from the ``since``-th on) on the job's channel or through its interaction token."""
    token = next(i.token for i in rig.fake.interactions.values() if i.original_id == str(job.message_id))
    return [r for r in rig.fake.requests[since:] if f"/channels/{job.channel_id}/" in r.path or token in r.path]


# -- 1. the reply deleted mid-job -------------------------------------------------------------


async def test_failure_after_the_reply_was_deleted_is_told_in_a_new_message(world: StartWorld) -> None:
    rig = await world(sim={"manual": True})
    interaction = await rig.imagine(rig.fake.alice, prompt="a phoenix that will be blocked")
    reply, job = await generating(rig, interaction)
    await rig.fake.delete_message(reply, by=rig.fake.moderator)
    rig.sim.finish(running(rig).request_id, error_type="CONTENT_BLOCKED")
    final = await ended(rig, job.id)
    assert final.status is JobState.FAILED and final.error_type == FailureReason.CONTENT_BLOCKED.value
    assert final.cost == 0
    fresh = [m for m in rig.fake.messages.values() if not m.deleted and m.id != reply.id]
    assert len(fresh) == 1
    assert fresh[0].pinged == {rig.fake.alice.id}
    assert "blocked" in embed_text(fresh[0]) and not fresh[0].attachments
    assert final.message_id == int(fresh[0].id)


# -- 2. the channel deleted mid-job -----------------------------------------------------------


@pytest.mark.parametrize("token", ["interaction", "bot"])
async def test_deleted_channel_ends_the_job_uncounted_and_is_left_alone(world: StartWorld, token: str) -> None:
    """Nobody can see the image, so it is not counted; the job ends as delivery_failed, and once it
    has ended nothing calls the dead channel again (not the run, not the sweep)."""
    clock = late_clock if token == "bot" else time.time
    rig = await world(sim={"manual": True}, clock=clock)
    interaction = await rig.imagine(rig.fake.alice, prompt="a room that will vanish")
    _, job = await generating(rig, interaction)
    deleted_at = len(rig.fake.requests)
    await rig.fake.delete_channel(rig.fake.general)
    rig.sim.finish(running(rig).request_id)
    final = await ended(rig, job.id)
    assert final.status is JobState.FAILED and final.error_type == FailureReason.DELIVERY_FAILED.value
    assert final.cost == 0
    assert not with_image(rig)
    after = about(rig, job, since=deleted_at)
    # A few tries of the image (edit, post anew, look), one of the failure notice; then nothing more.
    assert len(after) <= 3 * DELIVERY_ATTEMPTS + 2
    assert {r.status for r in after} == {404}
    assert await rig.bot.tracker.sweep() == 0
    assert about(rig, job, since=deleted_at) == after
    assert not rig.fake.internal_errors


# -- 3. permissions taken away mid-job --------------------------------------------------------

PERMISSIONS = {
    "send_messages": Permission.SEND_MESSAGES,
    "attach_files": Permission.ATTACH_FILES,
    "add_reactions": Permission.ADD_REACTIONS,
    "view_channel": Permission.VIEW_CHANNEL,
}


@pytest.mark.parametrize("name", PERMISSIONS)
async def test_permission_removed_within_the_token_window_still_delivers(world: StartWorld, name: str) -> None:
    """The interaction token needs no channel permission: the image reaches the same reply."""
    rig = await world(sim={"manual": True})
    interaction = await rig.imagine(rig.fake.alice, prompt=f"without {name}")
    reply, job = await generating(rig, interaction)
    await rig.fake.revoke_bot_permissions(PERMISSIONS[name])
    rig.sim.finish(running(rig).request_id)
    final = await ended(rig, job.id)
    assert final.status is JobState.DELIVERED and final.cost == 1
    assert reply.attachments and with_image(rig) == [reply]


@pytest.mark.parametrize("name", PERMISSIONS)
async def test_permission_removed_after_the_token_window(world: StartWorld, name: str) -> None:
    """With the bot token only, a missing permission either changes nothing (Add Reactions) or ends
    the job uncounted; the member is told where the reply can still be edited."""
    rig = await world(sim={"manual": True}, clock=late_clock)
    interaction = await rig.imagine(rig.fake.alice, prompt=f"late, without {name}")
    reply, job = await generating(rig, interaction)
    await rig.fake.revoke_bot_permissions(PERMISSIONS[name])
    rig.sim.finish(running(rig).request_id)
    final = await ended(rig, job.id)
    if name == "add_reactions":
        assert final.status is JobState.DELIVERED and final.cost == 1
        assert reply.attachments and with_image(rig) == [reply]
        return
    assert final.status is JobState.FAILED and final.error_type == FailureReason.DELIVERY_FAILED.value
    assert final.cost == 0
    assert not with_image(rig)
    if name == "attach_files":
        assert "could not be posted" in embed_text(reply)
    elif name == "send_messages":
        # Without Send Messages Discord drops embeds from edits: the reply says it in words.
        assert "could not be posted" in reply.content and "Generating" not in reply.content
    else:  # without View Channel nothing reaches the channel: nobody can be told, and nobody is pinged
        assert "Generating" in embed_text(reply)
    calls = len(rig.fake.requests)
    assert await rig.bot.tracker.sweep() == 0
    assert len(rig.fake.requests) == calls


async def test_access_lost_and_regained_mid_job_delivers_to_the_same_reply(world: StartWorld) -> None:
    """A status edit refused (no View Channel) stops the status edits, but not the reply: with access
    back by the end, the image goes into the same reply rather than into a second message."""
    rig = await world(sim={"manual": True}, clock=late_clock)
    await block_queue(rig.sim.base_url, 1)
    interaction = await rig.imagine(rig.fake.alice, prompt="lights out for a moment")
    reply = await interaction.wait_original(lambda m: "position 1" in embed_text(m))
    job = await rig.job_for(interaction)
    await own_cancel_reaction(rig, reply)
    start = len(rig.fake.requests)
    await rig.fake.revoke_bot_permissions(Permission.VIEW_CHANNEL)
    rig.sim.finish(running(rig).request_id)  # the job ahead ends: ours starts, the reply would change
    await rig.fake.wait_for_request("PATCH", EDIT, timeout=5.0, start=start, status=403)
    await rig.fake.restore_bot_permissions(Permission.VIEW_CHANNEL)
    await rig.sim.wait_for(lambda: any(j.state == "IN_PROGRESS" for j in rig.sim.jobs.values()))
    rig.sim.finish(running(rig).request_id)
    final = await ended(rig, job.id)
    assert final.status is JobState.DELIVERED and final.cost == 1
    assert with_image(rig) == [reply] and final.message_id == int(reply.id)
    refused = [r for r in rig.fake.requests[start:] if r.status == 403]
    assert len(refused) == 1  # no status edit after the first refusal


# -- 4. the gateway drops mid-job -------------------------------------------------------------


@pytest.fixture
def quick_reconnect(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discord.backoff.ExponentialBackoff, "delay", lambda self: 0.01)


@pytest.mark.usefixtures("quick_reconnect")
async def test_gateway_outage_mid_job_still_delivers(world: StartWorld) -> None:
    rig = await world(sim={"manual": True})
    interaction = await rig.imagine(rig.fake.alice, prompt="through the storm")
    reply, job = await generating(rig, interaction)
    assert await rig.fake.drop_gateway(refuse=True) == 1
    await rig.fake.wait_until(lambda: rig.fake.gateway.refused >= 1, 5.0, "a refused reconnect")
    rig.sim.finish(running(rig).request_id)
    final = await ended(rig, job.id)
    assert final.status is JobState.DELIVERED and final.cost == 1 and reply.attachments
    rig.fake.gateway.refuse(False)
    await rig.fake.wait_until(lambda: rig.fake.sessions[0].resumes >= 1, 10.0, "the RESUME")


@pytest.mark.usefixtures("quick_reconnect")
async def test_cancel_reaction_sent_during_a_gateway_outage_cancels_after_resume(world: StartWorld) -> None:
    rig = await world(sim={"manual": True})
    interaction = await rig.imagine(rig.fake.alice, prompt="never mind")
    reply, job = await generating(rig, interaction)
    await rig.fake.wait_until(lambda: "❌" in reply.reactions, 5.0, "the ❌ control")
    await rig.fake.drop_gateway(refuse=True)
    await rig.fake.wait_until(lambda: rig.fake.gateway.refused >= 1, 5.0, "a refused reconnect")
    await rig.fake.react(reply, "❌", rig.fake.alice)
    assert (await rig.store.get_job(job.id)).cancel_requested_at is None  # type: ignore[union-attr]
    rig.fake.gateway.refuse(False)
    final = await ended(rig, job.id)
    assert rig.fake.sessions[0].resumes >= 1 and len(rig.fake.identify_payloads) == 1
    assert final.status is JobState.CANCELLED and final.cost == 0
    assert final.cancel_requested_by == int(rig.fake.alice.id)
    assert "Cancelled" in embed_text(reply) and not reply.attachments


# -- 5. Discord REST errors and slow answers --------------------------------------------------


@pytest.mark.parametrize("token", ["interaction", "bot"])
async def test_5xx_on_progress_and_final_edits_still_delivers(world: StartWorld, token: str) -> None:
    """discord.py retries the server errors (after 1 s, then 3 s): the reply goes on, the image arrives."""
    clock = late_clock if token == "bot" else time.time
    rig = await world(sim={"manual": True}, clock=clock)
    progress = rig.fake.inject_fault("PATCH", EDIT, status=502, times=1)  # the first progress edit
    interaction = await rig.imagine(rig.fake.alice, prompt="bumpy road")
    reply, job = await generating(rig, interaction)
    assert progress.hits == 1
    final_fault = rig.fake.inject_fault("PATCH", EDIT, status=500, times=2 if token == "interaction" else 1)
    rig.sim.finish(running(rig).request_id)
    final = await ended(rig, job.id)
    assert not final_fault.active
    assert final.status is JobState.DELIVERED and final.cost == 1
    assert with_image(rig) == [reply] and len(reply.attachments) == 1


async def test_final_edit_that_times_out_but_was_taken_is_not_posted_again(
    world: StartWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The upload is held past the presenter's timeout, then Discord applies it: the image is in the
    reply once, no second message is posted, the job is delivered and counted once."""
    rig = await world(sim={"manual": True})
    interaction = await rig.imagine(rig.fake.alice, prompt="slow upload")
    reply, job = await generating(rig, interaction)
    monkeypatch.setattr("cogs._reply.CALL_TIMEOUT", 1.0)
    upload = rig.fake.inject_fault("PATCH", EDIT, delay=30.0, times=1)
    check = rig.fake.inject_fault("GET", EDIT, delay=30.0, times=1)
    rig.sim.finish(running(rig).request_id)
    await rig.fake.wait_until(lambda: upload.held == 1, 5.0, "the held upload")
    await rig.fake.wait_until(lambda: check.held == 1, 5.0, "the bot checking the reply after its timeout")
    upload.release()
    await rig.fake.wait_until(lambda: bool(reply.attachments), 5.0, "the held upload to be applied")
    check.release()
    final = await ended(rig, job.id)
    assert final.status is JobState.DELIVERED and final.cost == 1
    assert with_image(rig) == [reply] and len(reply.attachments) == 1
    assert sum(1 for snapshot in reply.history if snapshot.attachments) == 1
    assert not [r for r in rig.fake.requests if r.method == "POST" and r.path.endswith("/messages")]


# -- 6. Discord unreachable when the job ends -------------------------------------------------


@pytest.mark.parametrize("token", ["interaction", "bot"])
@pytest.mark.parametrize("outcome", ["fails", "succeeds"])
async def test_discord_down_at_the_end_settles_the_row_and_tells_the_member_later(
    world: StartWorld, monkeypatch: pytest.MonkeyPatch, token: str, outcome: str
) -> None:
    """Every write to Discord fails while the job ends: the row is final and refunded at once;
    once Discord answers again the sweep tells the member, once."""
    clock = late_clock if token == "bot" else time.time
    rig = await world(sim={"manual": True}, clock=clock)
    interaction = await rig.imagine(rig.fake.alice, prompt="into the void")
    reply, job = await generating(rig, interaction)
    # The interaction client retries 5xx for ~16 s; the presenter gives up on a call long before.
    monkeypatch.setattr("cogs._reply.CALL_TIMEOUT", 0.3)
    rig.fake.inject_fault("PATCH", "", status=503, times=None)
    rig.fake.inject_fault("POST", "", status=503, times=None)
    rig.sim.finish(running(rig).request_id, error_type=None if outcome == "succeeds" else "CONTENT_BLOCKED")
    final = await finished_untold(rig, job.id)
    expected = FailureReason.DELIVERY_FAILED if outcome == "succeeds" else FailureReason.CONTENT_BLOCKED
    assert final.status is JobState.FAILED and final.error_type == expected.value
    assert final.cost == 0 and final.told_at is None
    assert "Generating" in embed_text(reply) and not with_image(rig)
    rig.fake.clear_faults()
    monkeypatch.undo()
    await rig.bot.tracker.sweep()  # what the periodic sweep does (every 30 s by default)
    told = await ended(rig, job.id)
    assert told.told_at is not None
    said = "could not be posted" if outcome == "succeeds" else "blocked"
    assert "No image this time" in embed_text(reply) and said in embed_text(reply)
    assert [m for m in rig.fake.messages.values() if not m.deleted] == [reply]
    edits = len(reply.history)
    await rig.bot.tracker.sweep()
    assert len(reply.history) == edits


async def test_a_command_answered_too_late_is_one_warning_and_costs_nothing(
    world: StartWorld, caplog: pytest.LogCaptureFixture
) -> None:
    """Past Discord's 3 s (an overloaded bot) the defer meets 404 Unknown interaction: the member saw
    "The application did not respond", so the job is dropped unsubmitted and uncounted, with one
    warning line rather than an error and its traceback."""
    rig = await world(fake={"callback_deadline": 0.0})
    interaction = await rig.imagine(rig.fake.alice, prompt="too late to answer")
    await rig.fake.wait_until(
        lambda: any(r.status == 404 and "/callback" in r.path for r in rig.fake.requests), 5.0, "the late defer"
    )
    await wait_until(
        lambda: any("not answered within Discord's 3 seconds" in r.getMessage() for r in caplog.records),
        what="the warning",
    )
    assert interaction.original() is None  # no reply was ever made

    async def dropped() -> bool:
        jobs = await rig.store.history(int(rig.fake.guild.id), int(rig.fake.alice.id), limit=5)
        return [(j.status, j.cost) for j in jobs] == [(JobState.FAILED, 0)]

    await wait_until(dropped, what="the job to be dropped uncounted")
    assert rig.sim.submits() == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
