"""Cancelling end to end: ❌ on the bot's reply (and /cancel), against the fake Discord and the simulator.

Jobs are held queued or generating with the simulator's manual mode; nothing here sleeps: every
step waits on a condition (a state of the fake, of the simulator, or of the bot's storage).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.devtools.fakediscord import FakeDiscord, FakeInteraction, FakeMessage, FakeUser, Permission
from bot.devtools.fakediscord.state import iter_components
from bot.models import JobRecord, JobState, Usage
from bot.queue import GenerationRequest, QueueClient
from bot.quota import utc_day
from bot.simulator import Fault, SimJob, SimulatorOptions, run_simulator
from tests.conftest import StartWorld
from tests.harness import SIM_KEY, Rig, embed_text, running_bot

X = "❌"
EPHEMERAL = 64
WITHIN = 1.0  # seconds from the member's ❌ to the cancel reaching the upstream
CANCELLED_TITLE = "🛑 Cancelled"
TOO_LATE = "cancel came too late"


# -- helpers ---------------------------------------------------------------------------------


async def usage(rig: Rig, user: FakeUser) -> Usage:
    return await rig.store.usage(int(rig.fake.guild.id), int(user.id), day=utc_day(time.time()))


def has_bot_x(rig: Rig, message: FakeMessage) -> bool:
    return rig.fake.bot_user.id in message.reactions.get(X, [])


def titles(message: FakeMessage) -> list[str]:
    """The embed title of every version of a message."""
    return [embed.get("title") or "" for snapshot in message.history for embed in snapshot.embeds]


def ever_said(message: FakeMessage, text: str) -> bool:
    """Some version of the message showed ``text`` in its embeds."""
    for snapshot in message.history:
        for embed in snapshot.embeds:
            parts = [embed.get("title") or "", embed.get("description") or ""]
            parts += [f.get("value", "") for f in embed.get("fields") or []]
            if any(text in part for part in parts):
                return True
    return False


async def block_queue(sim_url: str, count: int) -> None:
    """Put ``count`` jobs from someone else in the upstream queue (one runs, the rest wait)."""
    async with aiohttp.ClientSession() as session:
        client = QueueClient(session, base_url=sim_url, api_key=SIM_KEY)
        for i in range(count):
            await client.submit(GenerationRequest(prompt=f"someone else's job {i}"))


def sim_job(rig: Rig, prompt: str) -> SimJob:
    return next(j for j in rig.sim.jobs.values() if j.body.get("prompt") == prompt)


async def start_job(
    rig: Rig, user: FakeUser, prompt: str, shown: str
) -> tuple[FakeInteraction, FakeMessage, JobRecord, SimJob]:
    """/imagine as ``user``; return once the reply shows ``shown`` (the bot's own ❌ is cosmetic and
    only added when the channel's reaction budget allows: a member's ❌ cancels without it)."""
    interaction = await rig.imagine(user, prompt=prompt)
    reply = await interaction.wait_original(lambda m: shown in embed_text(m))
    job = await rig.job_for(interaction)
    return interaction, reply, job, sim_job(rig, prompt)


async def react_and_time_cancel(rig: Rig, reply: FakeMessage, user: FakeUser) -> float:
    """``user`` reacts ❌; returns the seconds until the first cancel call reached the upstream."""
    already = len(rig.sim.calls_to("cancel"))
    loop = asyncio.get_running_loop()
    reacted_at = loop.time()  # asyncio's clock is time.monotonic, like RecordedCall.received_at
    await rig.fake.react(reply, X, user)
    await rig.sim.wait_for(lambda: len(rig.sim.calls_to("cancel")) > already, timeout=3.0)
    return rig.sim.calls_to("cancel")[already].received_at - reacted_at


async def wait_cancelled(rig: Rig, reply: FakeMessage, job: JobRecord) -> JobRecord:
    """The reply shows the cancelled state, the ❌ control no longer applies, the job is CANCELLED."""
    await rig.fake.wait_until(lambda: CANCELLED_TITLE in embed_text(reply), 5.0, "the cancelled reply")
    await rig.fake.wait_until(
        lambda: not has_bot_x(rig, reply) or "no longer applies" in embed_text(reply), 5.0, "the ❌ control retired"
    )
    return await rig.wait_job(job.id, lambda j: j.status is JobState.CANCELLED, what="job CANCELLED in storage")


def images_posted(rig: Rig) -> list[FakeMessage]:
    return [m for m in rig.fake.messages.values() if m.attachments and not m.deleted]


async def ephemeral_answer(interaction: FakeInteraction) -> str:
    """The private answer to a slash command: an immediate reply, or the deferred one filled in."""
    response = await interaction.wait_response()
    assert (response.get("data") or {}).get("flags", 0) & EPHEMERAL, f"not ephemeral: {response}"
    if response["type"] == 4:
        return str(response["data"]["content"])
    answer = await interaction.wait_original(lambda m: not m.loading and bool(m.content))
    assert answer.ephemeral
    return answer.content


async def give_bot_manage_messages(rig: Rig) -> None:
    await rig.fake.update_bot_permissions(rig.fake.bot_permissions | int(Permission.MANAGE_MESSAGES))


# -- the requester cancels -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("blockers", "shown", "stage"),
    [(1, "Queued", "while queued"), (0, "Generating", "while generating")],
    ids=["queued", "generating"],
)
async def test_requester_cancels_with_a_reaction(world: StartWorld, blockers: int, shown: str, stage: str) -> None:
    """One cancel upstream within a second; the reply says cancelled and at what stage; no image; quota as before."""
    rig = await world(sim={"manual": True})
    await block_queue(rig.sim.base_url, blockers)
    before = await usage(rig, rig.fake.alice)
    _, reply, job, ours = await start_job(rig, rig.fake.alice, "a cat in a hat", shown)
    assert ours.state == ("IN_QUEUE" if blockers else "IN_PROGRESS")

    took = await react_and_time_cancel(rig, reply, rig.fake.alice)
    assert took < WITHIN, f"the cancel reached the upstream {took:.2f}s after the ❌"
    done = await wait_cancelled(rig, reply, job)

    text = embed_text(reply)
    assert stage in text and "Cancelled" in text
    assert [c.request_id for c in rig.sim.calls_to("cancel")] == [ours.request_id]
    await rig.sim.wait_for(lambda: ours.state == "COMPLETED")
    assert ours.error_type == "CANCELED"
    assert images_posted(rig) == [] and not reply.attachments
    assert done.cancel_requested_by == int(rig.fake.alice.id)
    assert await usage(rig, rig.fake.alice) == before


# -- who may cancel --------------------------------------------------------------------------


async def test_strangers_reaction_leaves_the_job_running_to_completion(world: StartWorld) -> None:
    """Bob's ❌ on Alice's job does nothing (the bot tries to remove it, but lacks Manage Messages)."""
    rig = await world(sim={"manual": True})
    assert not rig.fake.bot_permissions & Permission.MANAGE_MESSAGES
    interaction, reply, job, ours = await start_job(rig, rig.fake.alice, "a quiet lake", "Generating")
    start = len(rig.fake.requests)
    await rig.fake.react(reply, X, rig.fake.bob)
    # The bot has looked at Bob's ❌ once it tried to take it away (403: it may not).
    attempt = await rig.fake.wait_for_request(
        "DELETE", rf"/messages/{reply.id}/reactions/.+/{rig.fake.bob.id}$", start=start
    )
    assert attempt.status == 403
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.status is JobState.RUNNING and stored.cancel_requested_at is None

    rig.sim.finish(ours.request_id)
    await interaction.wait_original(lambda m: bool(m.attachments), timeout=10.0)
    await rig.wait_job(job.id, lambda j: j.status is JobState.DELIVERED)
    assert rig.sim.calls_to("cancel") == []
    assert CANCELLED_TITLE not in titles(reply) and TOO_LATE not in embed_text(reply)
    assert rig.fake.bob.id in reply.reactions.get(X, [])  # nobody could remove it


async def test_strangers_reaction_is_removed_when_the_bot_may(world: StartWorld) -> None:
    rig = await world(sim={"manual": True})
    await give_bot_manage_messages(rig)
    interaction, reply, job, ours = await start_job(rig, rig.fake.alice, "a windy hill", "Generating")
    await rig.fake.wait_until(lambda: has_bot_x(rig, reply), 5.0, "the bot's own ❌")
    await rig.fake.react(reply, X, rig.fake.bob)
    await rig.fake.wait_until(lambda: rig.fake.bob.id not in reply.reactions.get(X, []), 5.0, "Bob's ❌ to be removed")
    assert has_bot_x(rig, reply)  # the bot's own control stays
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.status is JobState.RUNNING and stored.cancel_requested_at is None
    rig.sim.finish(ours.request_id)
    await interaction.wait_original(lambda m: bool(m.attachments), timeout=10.0)
    assert rig.sim.calls_to("cancel") == []


async def test_moderators_reaction_cancels(world: StartWorld) -> None:
    """A member with Manage Messages cancels someone else's job; the reply names who did, without a ping."""
    rig = await world(sim={"manual": True})
    before = await usage(rig, rig.fake.alice)
    _, reply, job, ours = await start_job(rig, rig.fake.alice, "a red barn", "Generating")
    took = await react_and_time_cancel(rig, reply, rig.fake.moderator)
    assert took < WITHIN
    done = await wait_cancelled(rig, reply, job)
    assert f"<@{rig.fake.moderator.id}>" in embed_text(reply) and "while generating" in embed_text(reply)
    assert not reply.pinged
    assert done.cancel_requested_by == int(rig.fake.moderator.id)
    assert [c.request_id for c in rig.sim.calls_to("cancel")] == [ours.request_id]
    assert images_posted(rig) == []
    assert await usage(rig, rig.fake.alice) == before


async def test_the_bots_own_reaction_does_not_cancel(world: StartWorld) -> None:
    """The fake echoes the bot's ❌ as MESSAGE_REACTION_ADD; the bot (here with Manage Messages) ignores it."""
    rig = await world(sim={"manual": True})
    await give_bot_manage_messages(rig)
    interaction, reply, job, ours = await start_job(rig, rig.fake.alice, "an old clock", "Generating")

    def echoes() -> list[dict[str, Any]]:
        return [
            d
            for d in rig.fake.dispatched("MESSAGE_REACTION_ADD")
            if d["message_id"] == reply.id and d["user_id"] == rig.fake.bot_user.id
        ]

    await rig.fake.wait_until(lambda: bool(echoes()), 5.0, "the fake to tell the bot about its own ❌")
    # A later event that the bot visibly handles: by then it has handled its own ❌ as well.
    await rig.fake.react(reply, X, rig.fake.bob)
    await rig.fake.wait_until(lambda: rig.fake.bob.id not in reply.reactions.get(X, []), 5.0, "Bob's ❌ removed")
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.cancel_requested_at is None and stored.status is JobState.RUNNING
    rig.sim.finish(ours.request_id)
    await interaction.wait_original(lambda m: bool(m.attachments), timeout=10.0)
    assert rig.sim.calls_to("cancel") == []
    assert TOO_LATE not in embed_text(reply)


# -- after a restart -------------------------------------------------------------------------


async def test_reaction_after_a_restart_cancels_a_job_started_before(tmp_path: Path) -> None:
    """The reply is not in the new process's message cache: the raw event and storage find the job."""
    db = tmp_path / "bot.sqlite3"
    async with (
        FakeDiscord() as fake,
        run_simulator(SimulatorOptions(api_key=SIM_KEY, manual=True)) as sim,
    ):
        async with running_bot(fake, sim, db) as first:
            before = await usage(first, fake.alice)
            _, reply, job, ours = await start_job(first, fake.alice, "survive the restart", "Generating")
        async with running_bot(fake, sim, db) as rig:
            assert int(reply.id) not in {m.id for m in rig.bot.cached_messages}
            took = await react_and_time_cancel(rig, reply, fake.alice)
            assert took < WITHIN
            await wait_cancelled(rig, reply, job)
            assert "while generating" in embed_text(reply)
            assert [c.request_id for c in sim.calls_to("cancel")] == [ours.request_id]
            assert images_posted(rig) == []
            assert await usage(rig, fake.alice) == before
        assert len(sim.submits()) == 1


# -- the upstream refuses or cannot cancel ---------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "notice"),
    [
        (Fault("cancel", status=404), "no longer knows this job"),
        (Fault("cancel", status=500, times=3), "could not be reached"),  # every retry fails
    ],
    ids=["404", "500"],
)
async def test_failed_upstream_cancel_is_told_truthfully(world: StartWorld, fault: Fault, notice: str) -> None:
    """The reply says the cancel failed, never claims "Cancelled", and the job still delivers."""
    rig = await world(sim={"manual": True})
    rig.sim.add_fault(fault)
    interaction, reply, job, ours = await start_job(rig, rig.fake.alice, "a stubborn mule", "Generating")
    await react_and_time_cancel(rig, reply, rig.fake.alice)
    await rig.sim.wait_for(lambda: not rig.sim.pending_faults() and all(c.status for c in rig.sim.calls_to("cancel")))
    await rig.wait_job(job.id, lambda j: j.cancel_requested_at is None, what="the cancel request withdrawn")
    # BUG (bot/tracker.py _send_cancel + _follow, cogs/_reply.py _progress_worker): the notice is a one-off
    # Progress event; the next status refresh replaces it (often before it is even sent), so the member
    # never learns that the cancel failed. It must reach the reply and stay while the job runs.
    await rig.fake.wait_until(lambda: ever_said(reply, "Cancel failed"), 3.0, "a 'Cancel failed' notice on the reply")
    assert ever_said(reply, notice)
    assert CANCELLED_TITLE not in titles(reply)

    def polls() -> int:
        return sum(1 for c in rig.sim.calls_to("status") if c.request_id == ours.request_id)

    seen = polls()
    await rig.sim.wait_for(lambda: polls() >= seen + 3)
    assert "Cancel failed" in embed_text(reply), "the notice vanished after later status reads"
    assert "Cancelling" not in embed_text(reply)
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.status is JobState.RUNNING

    rig.sim.finish(ours.request_id)
    await interaction.wait_original(lambda m: bool(m.attachments), timeout=10.0)
    assert CANCELLED_TITLE not in titles(reply) and TOO_LATE not in embed_text(reply)
    await rig.wait_job(job.id, lambda j: j.status is JobState.DELIVERED)


# -- races -----------------------------------------------------------------------------------


async def test_reaction_after_delivery_changes_nothing(world: StartWorld) -> None:
    rig = await world()
    interaction = await rig.imagine(rig.fake.alice, prompt="a finished picture")
    reply = await interaction.wait_original(lambda m: bool(m.attachments), timeout=10.0)
    job = await rig.wait_job((await rig.job_for(interaction)).id, lambda j: j.status is JobState.DELIVERED)
    await rig.fake.wait_until(lambda: "no longer applies" in embed_text(reply), 5.0, "the ❌ control retired")
    versions, attachments = len(reply.history), [a.id for a in reply.attachments]

    await rig.fake.react(reply, X, rig.fake.alice)
    # /cancel reaches the bot after the ❌ event; once it has answered, the ❌ has been handled.
    answer = await ephemeral_answer(await rig.fake.invoke("cancel", rig.fake.alice))
    assert "no images in progress" in answer

    assert rig.sim.calls_to("cancel") == []
    assert len(reply.history) == versions and [a.id for a in reply.attachments] == attachments
    assert "Done" in embed_text(reply) and TOO_LATE not in embed_text(reply)
    after = await rig.store.get_job(job.id)
    assert after is not None and after.status is JobState.DELIVERED and after.cancel_requested_at is None


async def test_already_completed_upstream_delivers_the_image(world: StartWorld) -> None:
    """The image is done upstream but the bot has not polled yet (long poll interval): the ❌'s cancel
    is answered ALREADY_COMPLETED, and the bot delivers at once instead of waiting for its next poll."""
    rig = await world(sim={"manual": True}, poll_min_interval=30.0, poll_max_interval=30.0)
    before = await usage(rig, rig.fake.alice)
    interaction = await rig.imagine(rig.fake.alice, prompt="just in time")
    reply = await interaction.wait_original(lambda m: has_bot_x(rig, m))
    job = await rig.job_for(interaction)
    await rig.wait_job(job.id, lambda j: j.request_id is not None, what="the job submitted")
    ours = sim_job(rig, "just in time")
    await rig.sim.wait_for(lambda: any(c.status for c in rig.sim.calls_to("status")) and ours.state == "IN_PROGRESS")
    rig.sim.finish(ours.request_id)
    await rig.sim.wait_for(lambda: ours.state == "COMPLETED")
    finished_at = ours.finished_at
    assert finished_at is not None
    polls = [c for c in rig.sim.calls_to("status") if c.request_id == ours.request_id]
    assert all(c.received_at < finished_at for c in polls), "the bot polled before the ❌: not the race wanted"

    await rig.fake.react(reply, X, rig.fake.alice)
    await rig.sim.wait_for(lambda: any(c.status for c in rig.sim.calls_to("cancel")))
    assert [c.status for c in rig.sim.calls_to("cancel")] == [400]  # {"status": "ALREADY_COMPLETED"}
    # The tracker pokes the job on ALREADY_COMPLETED, so the image must not wait for the next 30 s poll.
    # BUG (bot/tracker.py _follow): after a status poll reads COMPLETED the loop still pauses a whole poll
    # interval before fetching the result, so this delivery only comes ~30 s later.
    await rig.fake.wait_until(lambda: bool(reply.attachments), 3.0, "the image, promptly after ALREADY_COMPLETED")
    await rig.wait_job(job.id, lambda j: j.status is JobState.DELIVERED)
    assert CANCELLED_TITLE not in titles(reply) and "Done" in embed_text(reply)
    assert (await usage(rig, rig.fake.alice)).user_used == before.user_used + 1  # made, so it counts


async def test_cancel_accepted_but_job_finished_delivers_with_a_note(world: StartWorld) -> None:
    """The upstream answers 202 to the cancel yet finishes the image: it is delivered, paid for, and said so."""
    rig = await world(sim={"manual": True, "cancel_running_finishes": True})
    before = await usage(rig, rig.fake.alice)
    interaction, reply, job, ours = await start_job(rig, rig.fake.alice, "too late to stop", "Generating")
    took = await react_and_time_cancel(rig, reply, rig.fake.alice)
    assert took < WITHIN
    await rig.sim.wait_for(lambda: [c.status for c in rig.sim.calls_to("cancel")] == [202])
    await rig.fake.wait_until(lambda: "Cancelling" in embed_text(reply), 5.0, "the cancelling state")
    assert ours.state == "IN_PROGRESS"

    rig.sim.finish(ours.request_id)
    await interaction.wait_original(lambda m: bool(m.attachments), timeout=10.0)
    text = embed_text(reply)
    assert "Done" in text and TOO_LATE in text and "paid for" in text
    assert CANCELLED_TITLE not in titles(reply)
    await rig.wait_job(job.id, lambda j: j.status is JobState.DELIVERED)
    assert (await usage(rig, rig.fake.alice)).user_used == before.user_used + 1


# -- /cancel ---------------------------------------------------------------------------------


async def test_slash_cancel_without_options_cancels_the_latest_job(world: StartWorld) -> None:
    rig = await world(sim={"manual": True})
    first_interaction, first_reply, first, first_sim = await start_job(rig, rig.fake.alice, "first", "Generating")
    _, second_reply, second, second_sim = await start_job(rig, rig.fake.alice, "second", "Queued")

    answer = await ephemeral_answer(await rig.fake.invoke("cancel", rig.fake.alice))
    assert f"#{second.id}" in answer and "Cancelling" in answer
    await wait_cancelled(rig, second_reply, second)
    assert "while queued" in embed_text(second_reply)
    assert [c.request_id for c in rig.sim.calls_to("cancel")] == [second_sim.request_id]

    still = await rig.store.get_job(first.id)
    assert still is not None and still.status is JobState.RUNNING and still.cancel_requested_at is None
    rig.sim.finish(first_sim.request_id)
    await first_interaction.wait_original(lambda m: bool(m.attachments), timeout=10.0)
    assert CANCELLED_TITLE not in titles(first_reply)


async def test_slash_cancel_with_nothing_in_progress(world: StartWorld) -> None:
    """Bob has nothing running (Alice does): a clear private answer, and Alice's job is untouched."""
    rig = await world(sim={"manual": True})
    _, _, job, _ = await start_job(rig, rig.fake.alice, "alice's picture", "Generating")
    answer = await ephemeral_answer(await rig.fake.invoke("cancel", rig.fake.bob))
    assert answer == "You have no images in progress here."
    assert rig.sim.calls_to("cancel") == []
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.status is JobState.RUNNING and stored.cancel_requested_at is None


async def test_jobs_are_cancelled_when_the_bot_leaves_the_server(world: StartWorld) -> None:
    """Kicked from a server, the bot stops its jobs there instead of paying for undeliverable images."""
    rig = await world(sim={"manual": True})
    interaction = await rig.imagine(rig.fake.alice, prompt="nobody will see this")
    await interaction.wait_original(lambda m: "Generating" in embed_text(m))
    job = await rig.job_for(interaction)
    await rig.fake.dispatch("GUILD_DELETE", {"id": rig.fake.guild.id}, guild_id=rig.fake.guild.id)
    await rig.sim.wait_for(lambda: len(rig.sim.calls_to("cancel")) == 1)
    await rig.wait_job(job.id, lambda j: j.status.is_terminal, what="the job to end")


# -- the Cancel button and the reaction budget -------------------------------------------------

BUTTON = "imagine:cancel:{job_id}"


def has_cancel_button(message: FakeMessage) -> bool:
    return any(str(c.get("custom_id", "")).startswith("imagine:cancel:") for c in iter_components(message.components))


async def test_requester_cancels_with_the_button_and_it_goes_with_the_final_state(world: StartWorld) -> None:
    rig = await world(sim={"manual": True})
    before = await usage(rig, rig.fake.alice)
    _, reply, job, ours = await start_job(rig, rig.fake.alice, "a quiet lake", "Generating")
    assert has_cancel_button(reply)
    click = await rig.fake.press_button(reply, BUTTON.format(job_id=job.id), rig.fake.alice)
    assert "Cancelling" in await ephemeral_answer(click)
    await wait_cancelled(rig, reply, job)
    assert not has_cancel_button(reply)
    assert [c.request_id for c in rig.sim.calls_to("cancel")] == [ours.request_id]
    assert await usage(rig, rig.fake.alice) == before


async def test_strangers_button_press_is_refused_privately(world: StartWorld) -> None:
    rig = await world(sim={"manual": True})
    _, reply, job, ours = await start_job(rig, rig.fake.alice, "not yours", "Generating")
    click = await rig.fake.press_button(reply, BUTTON.format(job_id=job.id), rig.fake.bob)
    assert "Only the member who asked" in await ephemeral_answer(click)
    assert rig.sim.calls_to("cancel") == []
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.cancel_requested_at is None
    rig.sim.finish(ours.request_id)
    await rig.wait_job(job.id, lambda j: j.status is JobState.DELIVERED)
    assert not has_cancel_button(reply)


async def test_moderators_button_press_cancels(world: StartWorld) -> None:
    rig = await world(sim={"manual": True})
    _, reply, job, _ = await start_job(rig, rig.fake.alice, "moderated", "Generating")
    click = await rig.fake.press_button(reply, BUTTON.format(job_id=job.id), rig.fake.moderator)
    assert "Cancelling" in await ephemeral_answer(click)
    cancelled = await wait_cancelled(rig, reply, job)
    assert cancelled.cancel_requested_by == int(rig.fake.moderator.id)


async def test_the_button_works_after_a_restart(tmp_path: Path) -> None:
    """Nothing about the button is kept in memory: a new process routes the click by its custom id."""
    async with (
        FakeDiscord() as fake,
        run_simulator(SimulatorOptions(api_key=SIM_KEY, manual=True)) as sim,
    ):
        db = tmp_path / "bot.sqlite3"
        async with running_bot(fake, sim, db) as rig:
            interaction = await rig.imagine(fake.alice, prompt="click me later")
            reply = await interaction.wait_original(lambda m: "Generating" in embed_text(m))
            job = await rig.job_for(interaction)
        async with running_bot(fake, sim, db, sync_commands=False) as rig:
            click = await fake.press_button(reply, BUTTON.format(job_id=job.id), fake.alice)
            assert "Cancelling" in await ephemeral_answer(click)
            await wait_cancelled(rig, reply, job)


async def test_a_button_pressed_as_the_job_ends_is_answered(world: StartWorld) -> None:
    """The click races the final edit (the button is still on the reply, the job has just ended)."""
    rig = await world(sim={"manual": True})
    _, reply, job, _ = await start_job(rig, rig.fake.alice, "just ended", "Generating")
    await rig.store.finish(job.id, JobState.FAILED, now=time.time(), refund=True, error_type="upstream_failed")
    click = await rig.fake.press_button(reply, BUTTON.format(job_id=job.id), rig.fake.alice)
    assert "already finished" in await ephemeral_answer(click)
    assert rig.sim.calls_to("cancel") == []


async def test_a_busy_channel_draws_no_reaction_429_and_any_x_still_cancels(world: StartWorld) -> None:
    """Ten jobs at once in one channel with Discord's reaction limit applied: the bot adds its own ❌
    only where the channel's budget allows (no 429), and a member's ❌ cancels a reply without it."""
    rig = await world(sim={"manual": True})
    rig.fake.rate_limit(r"/channels/\d+/messages/\d+/reactions/", limit=4, per=1.0, headers=False)
    interactions = await asyncio.gather(*(rig.imagine(rig.fake.alice, prompt=f"busy {i}") for i in range(10)))
    replies = [
        await i.wait_original(lambda m: "Queued" in embed_text(m) or "Generating" in embed_text(m))
        for i in interactions
    ]
    await rig.sim.wait_for(lambda: len(rig.sim.submits()) == 10)
    assert rig.fake.rate_limited_count == 0
    bare = next(r for r in replies if not has_bot_x(rig, r))  # at most a few got the bot's ❌
    job = await rig.store.job_by_message(int(bare.id))
    assert job is not None
    await rig.fake.react(bare, X, rig.fake.alice)
    await wait_cancelled(rig, bare, job)
    assert rig.fake.rate_limited_count == 0
