"""/imagine end to end: the real discord.py against the fake Discord, the upstream simulator."""

from __future__ import annotations

import io
import itertools
import os
import re
import time
from pathlib import Path

import aiohttp
from PIL import Image

from bot.devtools.fakediscord import FakeClock, FakeDiscord, FakeInteraction, FakeMessage, Permission
from bot.queue import GenerationRequest, QueueClient
from bot.simulator import Fault, SimJob, SimulatorOptions, run_simulator
from tests.conftest import StartWorld
from tests.harness import (
    SIM_KEY,
    BotProcess,
    Rig,
    decoded_size,
    embed_text,
    png_bytes,
    settings_env,
    settings_for,
    status_history,
)

EPHEMERAL = 64
MiB = 1024 * 1024


def noise_png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(buffer, format="PNG")
    return buffer.getvalue()


async def block_queue(sim_url: str, count: int) -> None:
    """Put ``count`` jobs from someone else in the upstream queue (one runs, the rest wait)."""
    async with aiohttp.ClientSession() as session:
        client = QueueClient(session, base_url=sim_url, api_key=SIM_KEY)
        for i in range(count):
            await client.submit(GenerationRequest(prompt=f"someone else's job {i}"))


def sim_job(rig: Rig, prompt: str) -> SimJob | None:
    return next((j for j in rig.sim.jobs.values() if j.body.get("prompt") == prompt), None)


def running(rig: Rig) -> SimJob:
    return next(j for j in rig.sim.jobs.values() if j.state == "IN_PROGRESS")


async def private_answer(interaction: FakeInteraction) -> str:
    """The ephemeral text the member got (an immediate reply, or a follow-up after a withdrawn defer)."""
    response = await interaction.wait_response()
    if response["type"] == 4:
        assert response["data"]["flags"] & EPHEMERAL
        return str(response["data"]["content"])
    await interaction.fake.wait_until(lambda: bool(interaction.followups()), 5.0, "a private follow-up")
    followup = next(m for m in interaction.followups() if m.flags & EPHEMERAL)
    await interaction.fake.wait_until(
        lambda: interaction.original() is None or interaction.original().deleted,  # type: ignore[union-attr]
        5.0,
        "the public 'thinking' reply to be withdrawn",
    )
    return followup.content


async def delivered(rig: Rig, interaction: FakeInteraction, timeout: float = 10.0) -> FakeMessage:
    return await interaction.wait_original(lambda m: bool(m.attachments), timeout)


async def test_imagine_with_two_references_through_a_real_queue(world: StartWorld) -> None:
    """Positions 3, 2, 1, then generating, then the 16:9 2K image in the same reply."""
    rig = await world(sim={"manual": True})
    await block_queue(rig.sim.base_url, 3)
    first, second = png_bytes(64, 48, (200, 40, 40)), png_bytes(40, 40, (20, 40, 220))
    image1 = rig.fake.upload("red.png", first, "image/png")
    image2 = rig.fake.upload("blue.png", second, "image/png")
    prompt = "a red and a blue cube on a table"
    interaction = await rig.imagine(
        rig.fake.alice, prompt=prompt, aspect_ratio="16:9", resolution="2K", image1=image1, image2=image2
    )
    response = await interaction.wait_response(timeout=3.0)
    assert response["type"] == 5 and not (response.get("data") or {}).get("flags", 0) & EPHEMERAL
    await rig.sim.wait_for(lambda: sim_job(rig, prompt) is not None)
    ours = sim_job(rig, prompt)
    assert ours is not None
    assert ours.body["aspect_ratio"] == "16:9"
    assert ours.body["resolution"] == "2K" and ours.body["image_size"] == "2K"
    assert len(ours.body["image_urls"]) == 2
    reply = await interaction.wait_original(lambda m: bool(m.embeds))
    await rig.fake.wait_until(lambda: "❌" in reply.reactions, 5.0, "the ❌ control")
    for position in (3, 2, 1):
        await rig.fake.wait_until(
            lambda p=position: f"Queued, position {p}" in embed_text(reply), 5.0, f"position {position}"
        )
        blocker = running(rig)
        rig.sim.finish(blocker.request_id)
        await rig.sim.wait_for(lambda b=blocker: b.state == "COMPLETED")  # type: ignore[misc]
    await rig.fake.wait_until(lambda: "Generating" in embed_text(reply), 5.0, "the generating state")
    assert ours.fetched_images == [first, second]  # the URLs resolved to the members' files
    rig.sim.finish(ours.request_id)
    await delivered(rig, interaction)
    statuses = status_history(reply)
    queued = [s for s in statuses if s.startswith("Queued")]
    assert queued == ["Queued, position 3", "Queued, position 2", "Queued, position 1"]
    assert statuses.index(queued[-1]) < next(i for i, s in enumerate(statuses) if s.startswith("Generating"))
    data = rig.fake.attachment_bytes(reply.attachments[0].id)
    assert decoded_size(data) == (2752, 1536)
    assert "Done" in embed_text(reply) and "16:9" in embed_text(reply)
    assert len(rig.sim.submits()) == 4


async def test_4k_result_is_shrunk_under_the_upload_limit(world: StartWorld) -> None:
    """A ~30 MB 4K PNG arrives as an attachment under 10 MiB, and the reply says it was shrunk."""
    rig = await world(sim={"noisy_images": True, "job_duration": 0.01})
    interaction = await rig.imagine(rig.fake.bob, prompt="static noise", aspect_ratio="16:9", resolution="4K")
    reply = await delivered(rig, interaction, timeout=60.0)
    produced = next(iter(rig.sim.jobs.values()))
    assert produced.image is not None and len(produced.image) > 20 * MiB
    attachment = reply.attachments[0]
    assert attachment.size <= 10 * MiB
    width, height = decoded_size(rig.fake.attachment_bytes(attachment.id))
    assert abs(width / height - 5504 / 3072) < 0.01  # the provider's 16:9 is 5504x3072 at 4K
    assert "Shrunk" in embed_text(reply)


async def test_delivery_survives_an_expired_interaction_token(world: StartWorld) -> None:
    """After the token dies (401/50027), edits continue in the same reply with the bot token: the
    dead token is met once, not again at every later edit."""
    clock = FakeClock()
    rig = await world(fake={"clock": clock, "token_ttl": 5.0}, sim={"manual": True})
    await block_queue(rig.sim.base_url, 2)
    interaction = await rig.imagine(rig.fake.alice, prompt="a slow painting")
    reply = await interaction.wait_original(lambda m: "position 2" in embed_text(m))
    clock.advance(10.0)
    rig.sim.finish(running(rig).request_id)
    await interaction.wait_original(lambda m: "position 1" in embed_text(m))
    rig.sim.finish(running(rig).request_id)
    await interaction.wait_original(lambda m: "Generating" in embed_text(m))
    rig.sim.finish(running(rig).request_id)
    await delivered(rig, interaction)
    expired = [r for r in rig.fake.requests if r.path.startswith("/webhooks/") and r.status == 401]
    assert len(expired) == 1, "the bot should have met the expired token once"
    final = [r for r in rig.fake.requests if r.method == "PATCH" and r.path.endswith(f"/messages/{reply.id}")]
    assert final[-1].path.startswith("/channels/") and final[-1].status == 200
    assert reply.attachments and not reply.deleted


async def test_too_long_prompt_is_refused_privately(world: StartWorld) -> None:
    """A 2,501-character prompt sent past the client-side limit gets a private answer; nothing is submitted."""
    rig = await world()
    interaction = await rig.imagine(rig.fake.alice, prompt="x" * 2501, validate=False)
    text = await private_answer(interaction)
    assert "2,501" in text and "2,500" in text
    assert rig.sim.submits() == [] and await rig.store.active_jobs() == []


async def test_text_file_as_reference_is_refused(world: StartWorld) -> None:
    rig = await world()
    notes = rig.fake.upload("notes.txt", b"just some text", "text/plain")
    interaction = await rig.imagine(rig.fake.alice, prompt="use my notes", image1=notes)
    text = await private_answer(interaction)
    assert "notes.txt" in text and "not an image" in text
    assert rig.sim.submits() == []


async def test_disguised_file_is_caught_by_decoding(world: StartWorld) -> None:
    """A text file that claims to be a PNG is refused after download; the public reply is withdrawn."""
    rig = await world()
    fake_png = rig.fake.upload("photo.png", b"this is not a picture at all", "image/png")
    interaction = await rig.imagine(rig.fake.alice, prompt="a photo", image1=fake_png)
    text = await private_answer(interaction)
    assert "photo.png" in text
    assert rig.sim.submits() == []
    assert (await rig.store.usage(int(rig.fake.guild.id), int(rig.fake.alice.id), day=_today())).user_used == 0


async def test_image_over_the_cap_is_refused(world: StartWorld) -> None:
    rig = await world(max_reference_bytes=20_000)
    big = rig.fake.upload("big.png", noise_png(120, 120), "image/png")
    assert big.size > 20_000
    interaction = await rig.imagine(rig.fake.alice, prompt="bigger", image1=big)
    text = await private_answer(interaction)
    assert "big.png" in text and "larger than" in text
    assert rig.sim.submits() == []


async def test_message_command_on_a_message_without_images(world: StartWorld) -> None:
    rig = await world()
    message = await rig.fake.post_user_message(rig.fake.bob, "no pictures here")
    interaction = await rig.fake.invoke_message_command("Imagine with these images", rig.fake.alice, message)
    text = await private_answer(interaction)
    assert "no images" in text
    assert rig.sim.submits() == []


async def test_more_than_14_references_in_all_is_refused(world: StartWorld) -> None:
    """10 images on the message plus 5 uploaded in the form: refused, nothing submitted."""
    rig = await world()
    on_message = [rig.fake.upload(f"m{i}.png", png_bytes(8, 8), "image/png", ephemeral=False) for i in range(10)]
    message = await rig.fake.post_user_message(rig.fake.bob, "look", attachments=on_message)
    menu = await rig.fake.invoke_message_command("Imagine with these images", rig.fake.alice, message)
    await menu.wait_modal()
    extra = [rig.fake.upload(f"u{i}.png", png_bytes(8, 8), "image/png") for i in range(5)]
    submit = await rig.fake.submit_modal(menu, {"prompt": "all of them", "more_images": extra})
    text = await private_answer(submit)
    assert "15" in text and "14" in text
    assert rig.sim.submits() == []


async def test_message_command_with_modal_submits_all_references(world: StartWorld) -> None:
    """The message's images plus the form's uploads go upstream with the chosen ratio and tier."""
    rig = await world()
    pictures = [rig.fake.upload(f"p{i}.png", png_bytes(20 + i, 20), "image/png", ephemeral=False) for i in range(2)]
    message = await rig.fake.post_user_message(rig.fake.bob, "refs", attachments=pictures)
    menu = await rig.fake.invoke_message_command("Imagine with these images", rig.fake.alice, message)
    await menu.wait_modal()
    more = [rig.fake.upload("extra.png", png_bytes(30, 30), "image/png")]
    submit = await rig.fake.submit_modal(
        menu,
        {
            "prompt": "merge them",
            "aspect_ratio": ["9:16"],
            "resolution": ["1K"],
            "more_images": more,
            "text_reply": ["yes"],
        },
    )
    reply = await delivered(rig, submit)
    job = next(iter(rig.sim.jobs.values()))
    assert job.body["aspect_ratio"] == "9:16" and len(job.body["image_urls"]) == 3
    assert job.body["response_modalities"] == ["Text", "Image"]
    assert "Model's reply" in embed_text(reply)
    assert decoded_size(rig.fake.attachment_bytes(submit.original().attachments[0].id)) == (768, 1376)  # type: ignore[union-attr]


async def test_mentions_in_the_prompt_ping_nobody(world: StartWorld) -> None:
    rig = await world()
    role = rig.fake.moderator_role.id
    prompt = f"@everyone and @here look at <@&{role}> and <@{rig.fake.bob.id}>"
    interaction = await rig.imagine(rig.fake.alice, prompt=prompt, text_reply=True)
    reply = await delivered(rig, interaction)
    assert all(not m.pinged for m in rig.fake.messages.values())
    assert all(not snap.pinged for m in rig.fake.messages.values() for snap in m.history)
    assert "@everyone" not in embed_text(reply).replace("@\u200beveryone", "")


async def test_upstream_failure_gets_a_specific_message(world: StartWorld) -> None:
    rig = await world()
    rig.sim.fail_next("CONTENT_BLOCKED")
    interaction = await rig.imagine(rig.fake.alice, prompt="something forbidden")
    reply = await interaction.wait_original(lambda m: "blocked" in embed_text(m))
    assert not reply.attachments
    assert "Traceback" not in embed_text(reply)


async def test_deleted_reply_gets_the_result_as_a_new_message(world: StartWorld) -> None:
    rig = await world(sim={"manual": True})
    interaction = await rig.imagine(rig.fake.alice, prompt="a phoenix")
    reply = await interaction.wait_original(lambda m: "Generating" in embed_text(m))
    await rig.fake.delete_message(reply, by=rig.fake.moderator)
    rig.sim.finish(running(rig).request_id)
    await rig.fake.wait_until(
        lambda: any(m.attachments and not m.deleted and m.id != reply.id for m in rig.fake.messages.values()),
        10.0,
        "a new message with the image",
    )
    fresh = next(m for m in rig.fake.messages.values() if m.attachments and m.id != reply.id)
    assert rig.fake.alice.id in fresh.pinged and len(fresh.pinged) == 1


def _today() -> str:
    from bot.quota import utc_day

    return utc_day(time.time())


async def test_sigkill_while_queued_then_restart_delivers_to_the_original_reply(tmp_path: Path) -> None:
    """The bot is killed while a job waits; started again, it delivers the image and never resubmits."""
    async with (
        FakeDiscord() as fake,
        run_simulator(SimulatorOptions(api_key=SIM_KEY, manual=True)) as sim,
    ):
        await block_queue(sim.base_url, 1)
        settings = settings_for(fake, sim, tmp_path / "bot.sqlite3")
        first = BotProcess(settings_env(settings), tmp_path)
        first.start()
        try:
            await fake.wait_synced(timeout=30.0)
            await fake.wait_identified(timeout=30.0)
            interaction = await fake.invoke("imagine", fake.alice, options={"prompt": "survive the crash"})
            reply = await interaction.wait_original(lambda m: "Queued" in embed_text(m), timeout=15.0)
        finally:
            first.kill()
        second = BotProcess(settings_env(settings), tmp_path)
        second.start()
        try:
            await fake.wait_identified(timeout=30.0, count=2)
            blocker = next(j for j in sim.jobs.values() if j.state == "IN_PROGRESS")
            sim.finish(blocker.request_id)
            await sim.wait_for(lambda: any(j.state == "IN_PROGRESS" for j in sim.jobs.values()), timeout=10.0)
            ours = next(j for j in sim.jobs.values() if j.body["prompt"] == "survive the crash")
            await sim.wait_for(lambda: ours.state == "IN_PROGRESS", timeout=10.0)
            sim.finish(ours.request_id)
            await fake.wait_until(lambda: bool(reply.attachments), 30.0, "the image in the original reply")
        finally:
            second.kill()
        assert [c.json["prompt"] for c in sim.submits()].count("survive the crash") == 1
        assert decoded_size(fake.attachment_bytes(reply.attachments[0].id)) == (1024, 1024)


async def test_result_finished_while_the_bot_was_down_reaches_the_original_reply(tmp_path: Path) -> None:
    """Stopped mid-job; the upstream finishes meanwhile; on start the bot delivers to the same reply."""
    from tests.harness import running_bot

    async with (
        FakeDiscord() as fake,
        run_simulator(SimulatorOptions(api_key=SIM_KEY, manual=True)) as sim,
    ):
        db = tmp_path / "bot.sqlite3"
        async with running_bot(fake, sim, db) as rig:
            interaction = await rig.imagine(fake.alice, prompt="finish without me")
            reply = await interaction.wait_original(lambda m: "Generating" in embed_text(m))
        ours = next(iter(sim.jobs.values()))
        sim.finish(ours.request_id)
        await sim.wait_for(lambda: ours.state == "COMPLETED")
        async with running_bot(fake, sim, db, sync_commands=False):
            await fake.wait_until(lambda: bool(reply.attachments), 10.0, "the image in the original reply")
        assert len(sim.submits()) == 1
        assert "Done" in embed_text(reply)


async def test_time_passing_costs_no_edit_and_edits_are_paced(world: StartWorld) -> None:
    """Waiting with no queue position: the reply shows when the job was sent as a Discord timestamp,
    which counts by itself, so many status reads cause no edit; the edits there are stay paced, and
    the image is shown as soon as Discord's limit on the reply's edits allows."""
    rig = await world(sim={"position_mode": "zero", "manual": True}, status_edit_interval=0.5)
    # Discord's limit on one interaction token's edits, without the headers that would announce it.
    rig.fake.rate_limit(r"/webhooks/\d+/[^/]+/messages/", limit=5, per=5.0, method="PATCH", headers=False)
    await block_queue(rig.sim.base_url, 1)
    interaction = await rig.imagine(rig.fake.alice, prompt="patience")
    reply = await interaction.wait_original(lambda m: "Waiting" in embed_text(m))
    assert re.search(r"sent <t:\d+:R>", embed_text(reply)), embed_text(reply)
    versions = len(reply.history)

    def polls() -> int:
        job = sim_job(rig, "patience")
        return sum(1 for c in rig.sim.calls_to("status") if job is not None and c.request_id == job.request_id)

    seen = polls()
    await rig.sim.wait_for(lambda: polls() >= seen + 5)
    assert len(reply.history) == versions, "an edit although only time passed"
    rig.sim.finish(running(rig).request_id)
    await rig.sim.wait_for(
        lambda: sim_job(rig, "patience") is not None and sim_job(rig, "patience").state == "IN_PROGRESS"
    )  # type: ignore[union-attr]
    ours = sim_job(rig, "patience")
    assert ours is not None
    rig.sim.finish(ours.request_id)
    await delivered(rig, interaction)
    assert rig.fake.rate_limited_count == 0
    assert all("position" not in s for s in status_history(reply))
    edits = [s.time for s in reply.history]
    # Progress edits keep STATUS_EDIT_INTERVAL apart; the image does not wait for it (only for room
    # in Discord's limit, which the fake applies: no 429 above).
    assert all(b - a >= 0.45 for a, b in itertools.pairwise(edits[1:-1]))


async def test_a_new_reply_shows_the_queue_first_and_sending_only_when_the_submit_is_slow(
    world: StartWorld,
) -> None:
    """The submit's answer usually comes at once: "thinking…" turns straight into the queue position,
    one edit, with the bot's own ❌. A submit not answered within a second shows "Sending…" meanwhile."""
    rig = await world(sim={"manual": True})
    await block_queue(rig.sim.base_url, 1)
    quick = await rig.imagine(rig.fake.alice, prompt="answered at once")
    reply = await quick.wait_original(lambda m: "Queued" in embed_text(m))
    assert len(reply.history) == 2  # "thinking…", then the queue position
    await rig.fake.wait_until(lambda: rig.fake.bot_user.id in reply.reactions.get("❌", []), 5.0, "the bot's ❌")

    rig.sim.add_fault(Fault("submit", delay=2.0, after_processing=True))
    slow = await rig.imagine(rig.fake.bob, prompt="answered late")
    sending = await slow.wait_original(lambda m: "Sending to the image service" in embed_text(m))
    await rig.fake.wait_until(lambda: rig.fake.bot_user.id in sending.reactions.get("❌", []), 5.0, "the bot's ❌")
    await slow.wait_original(lambda m: "Queued" in embed_text(m))
    assert "Sending" in status_history(sending)[0]


async def test_the_image_does_not_wait_for_the_pause_between_status_edits(world: StartWorld) -> None:
    """STATUS_EDIT_INTERVAL spaces the status edits of a reply; the finished image is shown at once."""
    rig = await world(sim={"manual": True}, status_edit_interval=60.0)
    await block_queue(rig.sim.base_url, 1)
    interaction = await rig.imagine(rig.fake.alice, prompt="no dawdling")
    await interaction.wait_original(lambda m: "Queued" in embed_text(m))  # the first edit, then a pause
    rig.sim.finish(running(rig).request_id)
    await rig.sim.wait_for(lambda: getattr(sim_job(rig, "no dawdling"), "state", None) == "IN_PROGRESS")
    ours = sim_job(rig, "no dawdling")
    assert ours is not None
    rig.sim.finish(ours.request_id)
    await delivered(rig, interaction, timeout=10.0)  # not after the 60 s pause


async def test_the_image_waits_for_room_in_discords_limit_on_a_replys_edits(world: StartWorld) -> None:
    """Status edits in quick succession (positions 5 to 1), then the image: it waits until the reply's
    last five edits are five seconds old at the latest, and draws no 429."""
    rig = await world(sim={"manual": True}, status_edit_interval=0.05)
    rig.fake.rate_limit(r"/webhooks/\d+/[^/]+/messages/", limit=5, per=5.0, method="PATCH", headers=False)
    await block_queue(rig.sim.base_url, 5)
    interaction = await rig.imagine(rig.fake.alice, prompt="in a hurry")
    reply = await interaction.wait_original(lambda m: "position 5" in embed_text(m))
    for position in (4, 3, 2, 1):
        rig.sim.finish(running(rig).request_id)
        await interaction.wait_original(lambda m, p=position: f"position {p}" in embed_text(m))  # type: ignore[misc]
    rig.sim.finish(running(rig).request_id)
    await rig.sim.wait_for(lambda: getattr(sim_job(rig, "in a hurry"), "state", None) == "IN_PROGRESS")
    ours = sim_job(rig, "in a hurry")
    assert ours is not None
    rig.sim.finish(ours.request_id)
    await delivered(rig, interaction, timeout=15.0)
    assert rig.fake.rate_limited_count == 0
    edits = [version.time for version in reply.history[1:]]  # after the "thinking…" placeholder
    assert len(edits) >= 6
    assert all(b - a >= 5.0 - 0.05 for a, b in zip(edits, edits[5:], strict=False))


async def test_reply_is_not_edited_while_nothing_visible_changes(world: StartWorld) -> None:
    """Stuck at position 2 for many polls: the reply is not re-sent with the same content."""
    rig = await world(sim={"manual": True}, status_edit_interval=0.05)
    await block_queue(rig.sim.base_url, 2)
    interaction = await rig.imagine(rig.fake.alice, prompt="hold still")
    reply = await interaction.wait_original(lambda m: "Queued, position 2" in embed_text(m))
    ours = sim_job(rig, "hold still")
    assert ours is not None
    edits = len(reply.history)

    def polls() -> int:
        return sum(1 for c in rig.sim.calls_to("status") if c.request_id == ours.request_id)

    seen = polls()
    await rig.sim.wait_for(lambda: polls() >= seen + 10)
    assert len(reply.history) == edits


async def test_edits_switch_to_the_bot_token_before_the_interaction_token_dies(world: StartWorld) -> None:
    """The bot does not wait for a 401: near the 15-minute mark it edits through the channel."""
    rig = await world(sim={"job_duration": 0.05}, clock=lambda: time.time() + 15 * 60)
    interaction = await rig.imagine(rig.fake.alice, prompt="late but fine")
    reply = await delivered(rig, interaction)
    edits = [r for r in rig.fake.requests if r.method == "PATCH" and reply.id in r.path]
    assert edits and all(r.path.startswith("/channels/") for r in edits)
    assert not [r for r in rig.fake.requests if r.status == 401]


async def test_channel_where_the_bot_cannot_post_files_is_refused(world: StartWorld) -> None:
    rig = await world()
    rig.fake.bot_permissions = rig.fake.bot_permissions & ~int(Permission.ATTACH_FILES)
    interaction = await rig.imagine(rig.fake.alice, prompt="nowhere to go")
    text = await private_answer(interaction)
    assert "Attach Files" in text
    assert rig.sim.submits() == []
