"""``/history`` and ``/jobs`` end to end: the real discord.py and the shipped cogs against the fake
Discord and the upstream simulator. Every answer is private; nothing here sleeps."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import pytest

from bot.devtools.fakediscord import DiscordRejected, FakeDiscord, FakeInteraction, FakeMessage, FakeUser
from bot.devtools.fakediscord.state import iter_components
from bot.models import JobRecord, JobState, NewJob
from bot.simulator import SimulatorOptions, run_simulator
from tests.conftest import StartWorld
from tests.harness import SIM_KEY, Rig, embed_text, running_bot
from tests.test_e2e_cancel import block_queue, start_job

EPHEMERAL = 64
UPDATE_MESSAGE = 7
FAST = {"job_duration": 0.01}
LINK = re.compile(r"\(https://discord\.com/channels/(\d+)/(\d+)/(\d+)\)")


# -- helpers -----------------------------------------------------------------------------------


async def make_images(rig: Rig, user: FakeUser, count: int, prefix: str = "picture") -> list[JobRecord]:
    """``count`` delivered images by ``user``, oldest first."""
    interactions = await asyncio.gather(*(rig.imagine(user, prompt=f"{prefix} {i}") for i in range(count)))
    jobs = []
    for interaction in interactions:
        await interaction.wait_original(lambda m: bool(m.attachments), timeout=10.0)
        job = await rig.job_for(interaction)
        jobs.append(await rig.wait_job(job.id, lambda j: j.status is JobState.DELIVERED, what="delivered"))
    return sorted(jobs, key=lambda j: j.id)


async def run(rig: Rig, name: str, user: FakeUser, **options: Any) -> FakeInteraction:
    return await rig.fake.invoke(name, user, options=options)


async def private_message(interaction: FakeInteraction) -> FakeMessage:
    """The bot answered at once, privately; returns that message."""
    response = await interaction.wait_response()
    assert response["type"] == 4, response
    assert response["data"]["flags"] & EPHEMERAL, f"not private: {response}"
    message = await interaction.wait_original()
    assert message.ephemeral
    return message


async def private_text(interaction: FakeInteraction) -> str:
    message = await private_message(interaction)
    assert not message.embeds, embed_text(message)
    return message.content


def description(message: FakeMessage) -> str:
    return str(message.embeds[0].get("description") or "")


def listed(message: FakeMessage) -> list[int]:
    """The job numbers a history page shows, in order."""
    return [int(n) for n in re.findall(r"^\*\*#(\d+)\*\*", description(message), flags=re.MULTILINE)]


def buttons(message: FakeMessage) -> dict[str, dict[str, Any]]:
    return {str(c["label"]): c for c in iter_components(message.components) if c.get("type") == 2}


async def page(rig: Rig, message: FakeMessage, label: str, user: FakeUser) -> FakeInteraction:
    """``user`` presses Previous or Next; the page is updated in place."""
    click = await rig.fake.press_button(message, buttons(message)[label]["custom_id"], user)
    response = await click.wait_response()
    assert response["type"] == UPDATE_MESSAGE, response
    return click


def enabled(message: FakeMessage) -> dict[str, bool]:
    return {label: not button.get("disabled", False) for label, button in buttons(message).items()}


# -- /history ----------------------------------------------------------------------------------


async def test_history_lists_the_newest_first_with_links_and_pages(world: StartWorld) -> None:
    rig = await world(sim=FAST)
    guild = rig.fake.guild.id
    jobs = await make_images(rig, rig.fake.alice, 7)
    await make_images(rig, rig.fake.bob, 1, prefix="bob's")  # someone else's: never listed

    message = await private_message(await run(rig, "history", rig.fake.alice))
    newest = [j.id for j in reversed(jobs)]
    assert listed(message) == newest[:5]
    text = description(message)
    assert text.startswith("Your images in this server, newest first.")
    assert text.count("✅ Delivered") == 5 and "1K · 1:1" in text and "bob's" not in text
    by_id = {j.id: j for j in jobs}
    links = LINK.findall(text)
    assert links == [(guild, str(by_id[n].channel_id), str(by_id[n].message_id)) for n in newest[:5]]
    assert all(f"<t:{int(by_id[n].created_at)}:R>" in text for n in newest[:5])
    assert enabled(message) == {"Previous": False, "Next": True}

    await page(rig, message, "Next", rig.fake.alice)
    assert listed(message) == newest[5:]
    assert enabled(message) == {"Previous": True, "Next": False}
    assert message.ephemeral

    await page(rig, message, "Previous", rig.fake.alice)
    assert listed(message) == newest[:5]
    assert enabled(message) == {"Previous": False, "Next": True}


async def test_history_shows_states_lineage_and_parameters(world: StartWorld) -> None:
    rig = await world(sim=FAST)
    [parent] = await make_images(rig, rig.fake.alice, 1, prefix="@everyone look **here**")
    rig.sim.fail_next("CONTENT_BLOCKED")
    blocked = await rig.imagine(rig.fake.alice, prompt="something forbidden", resolution="2K", aspect_ratio="16:9")
    failed = await rig.wait_job((await rig.job_for(blocked)).id, lambda j: j.status is JobState.FAILED)
    child = await rig.store.create_job(
        NewJob(
            user_id=int(rig.fake.alice.id),
            guild_id=int(rig.fake.guild.id),
            channel_id=parent.channel_id,
            message_id=None,
            application_id=None,
            interaction_token=None,
            token_expires_at=None,
            upload_limit=parent.upload_limit,
            prompt="make it night",
            aspect_ratio=None,
            resolution="2K",
            with_text=False,
            image_urls=("https://cdn.example/finished.png", "https://cdn.example/ref.png"),
            parent_job_id=parent.id,
            action="edit",
        ),
        now=time.time(),
        default_4k_weight=2,
        enforce_quota=False,
    )
    assert isinstance(child, JobRecord)
    await rig.store.finish(child.id, JobState.CANCELLED, now=time.time(), refund=True, told=True)

    message = await private_message(await run(rig, "history", rig.fake.alice))
    assert listed(message) == [child.id, failed.id, parent.id]
    assert buttons(message) == {}, "a single page has no Previous/Next"
    entries = description(message).split("\n\n")[1:]
    link = f"https://discord.com/channels/{rig.fake.guild.id}/{parent.channel_id}/{parent.message_id}"
    assert "🛑 Cancelled" in entries[0] and f"Edit of [#{parent.id}]({link})" in entries[0]
    assert "2K · reference's ratio · 2 references" in entries[0]
    assert "Jump to message" not in entries[0]  # no reply message is known
    assert "⚠️ Failed" in entries[1] and "2K · 16:9" in entries[1] and "Edit of" not in entries[1]
    # The prompt is inert: no ping, no formatting.
    assert "@\u200beveryone" in entries[2] and "\\*\\*here\\*\\*" in entries[2]
    assert not message.pinged


async def test_only_the_viewer_can_page(world: StartWorld) -> None:
    rig = await world(sim=FAST)
    jobs = await make_images(rig, rig.fake.alice, 6)
    message = await private_message(await run(rig, "history", rig.fake.alice))
    before = len(message.history)
    next_id = buttons(message)["Next"]["custom_id"]
    # Discord shows a private message to its viewer only: the fake refuses the click...
    with pytest.raises(DiscordRejected):
        await rig.fake.press_button(message, next_id, rig.fake.bob)
    # ...and the bot refuses it too, should it arrive.
    click = await rig.fake.press_button(message, next_id, rig.fake.bob, validate=False)
    assert await private_text(click) == "Only the member who opened this list can page through it."
    assert len(message.history) == before and listed(message) == [j.id for j in reversed(jobs)][:5]


async def test_a_moderator_sees_another_members_history_and_a_member_does_not(world: StartWorld) -> None:
    rig = await world(sim=FAST)
    jobs = await make_images(rig, rig.fake.alice, 6)

    refused = await run(rig, "history", rig.fake.bob, member=rig.fake.alice)
    assert await private_text(refused) == "Only moderators (Manage Messages) can see another member's images."

    message = await private_message(await run(rig, "history", rig.fake.moderator, member=rig.fake.alice))
    assert description(message).startswith(f"Images by <@{rig.fake.alice.id}> in this server")
    assert listed(message) == [j.id for j in reversed(jobs)][:5]
    assert not message.pinged
    await page(rig, message, "Next", rig.fake.moderator)
    assert listed(message) == [jobs[0].id]


async def test_empty_history_is_answered(world: StartWorld) -> None:
    rig = await world(sim=FAST)
    assert await private_text(await run(rig, "history", rig.fake.bob)) == "You have no images in this server yet."
    own = await run(rig, "history", rig.fake.bob, member=rig.fake.bob)
    assert await private_text(own) == "You have no images in this server yet."
    other = await run(rig, "history", rig.fake.moderator, member=rig.fake.alice)
    assert await private_text(other) == f"<@{rig.fake.alice.id}> has no images in this server yet."


async def test_history_buttons_work_after_a_restart(tmp_path: Path) -> None:
    """The page's buttons carry all they need: a new process pages on."""
    db = tmp_path / "bot.sqlite3"
    async with FakeDiscord() as fake, run_simulator(SimulatorOptions(api_key=SIM_KEY, **FAST)) as sim:
        async with running_bot(fake, sim, db) as first:
            jobs = await make_images(first, fake.alice, 6)
            message = await private_message(await run(first, "history", fake.alice))
        async with running_bot(fake, sim, db, sync_commands=False) as rig:
            await page(rig, message, "Next", fake.alice)
            assert listed(message) == [jobs[0].id]


# -- /jobs -------------------------------------------------------------------------------------


async def test_jobs_shows_positions_links_and_the_server_queue(world: StartWorld) -> None:
    rig = await world(sim={"manual": True})
    await block_queue(rig.sim.base_url, 3)  # someone else's: one runs, two wait
    _, first_reply, first, _ = await start_job(rig, rig.fake.alice, "a lighthouse", "Queued, position 3")
    _, second_reply, second, _ = await start_job(rig, rig.fake.alice, "a harbour", "Queued, position 4")

    message = await private_message(await run(rig, "jobs", rig.fake.alice))
    text = description(message)
    lines = [line for line in text.splitlines() if line.startswith("**#")]
    assert listed(message) == [first.id, second.id]
    assert "Queued, position 3" in lines[0] and "Queued, position 4" in lines[1]
    assert all(re.search(r"about \d+ (s|min) left", line) for line in lines), lines
    assert [m for _, _, m in LINK.findall(text)] == [first_reply.id, second_reply.id]
    assert "a lighthouse" in text and "a harbour" in text
    assert not message.embeds[0].get("fields"), "a member without Manage Server sees only their jobs"

    assert await private_text(await run(rig, "jobs", rig.fake.bob)) == "You have no images in progress here."

    admin = await private_message(await run(rig, "jobs", rig.fake.manager))
    assert description(admin) == "You have no images in progress here."
    [field] = admin.embeds[0]["fields"]
    assert field["name"] == "This server's queue"
    assert "Sending: 0 · Queued: 2 · Generating: 0 · Delivering: 0" in field["value"]
    assert re.search(r"A new 1K image would take about \d+ (s|min)\.", field["value"]), field["value"]


async def test_jobs_with_nothing_in_progress(world: StartWorld) -> None:
    rig = await world(sim=FAST)
    await make_images(rig, rig.fake.alice, 1)  # finished: not in progress
    assert await private_text(await run(rig, "jobs", rig.fake.alice)) == "You have no images in progress here."
    admin = await private_message(await run(rig, "jobs", rig.fake.manager))
    assert description(admin) == "You have no images in progress here."
    value = admin.embeds[0]["fields"][0]["value"]
    assert "Sending: 0 · Queued: 0 · Generating: 0 · Delivering: 0" in value
    assert "A new 1K image would take" in value
