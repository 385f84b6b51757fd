"""The buttons under a finished image (Re-roll, Edit, Vary, Upscale), end to end."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.devtools.fakediscord import FakeDiscord, FakeInteraction, FakeMessage, FakeUser
from bot.devtools.fakediscord.state import iter_components
from bot.models import JobRecord, JobState
from bot.simulator import SimulatorOptions, run_simulator
from cogs.followups import UPSCALE_PROMPT, vary_prompt
from tests.conftest import StartWorld
from tests.harness import SIM_KEY, Rig, embed_text, png_bytes, running_bot
from tests.stores import delete_job

EPHEMERAL = 64


def buttons(message: FakeMessage) -> list[str]:
    return [str(c.get("custom_id")) for c in iter_components(message.components) if c.get("type") == 2]


async def finished(rig: Rig, user: FakeUser, **options: object) -> tuple[FakeMessage, JobRecord]:
    interaction = await rig.imagine(user, **options)
    reply = await interaction.wait_original(lambda m: bool(m.attachments), timeout=10.0)
    job = await rig.job_for(interaction)
    job = await rig.wait_job(job.id, lambda j: j.status is JobState.DELIVERED)
    return reply, job


async def private_answer(interaction: FakeInteraction) -> str:
    response = await interaction.wait_response()
    assert (response.get("data") or {}).get("flags", 0) & EPHEMERAL, response
    if response["type"] == 4:
        return str(response["data"]["content"])
    answer = await interaction.wait_original(lambda m: not m.loading and bool(m.content))
    return answer.content


async def child_of(rig: Rig, click: FakeInteraction) -> tuple[FakeMessage, JobRecord]:
    """The new public reply a button made, once its image is in, and its job."""
    reply = await click.wait_original(lambda m: bool(m.attachments), timeout=10.0)
    job = await rig.job_for(click)
    return reply, await rig.wait_job(job.id, lambda j: j.status is JobState.DELIVERED)


async def test_each_button_makes_one_job_from_the_image(world: StartWorld) -> None:
    rig = await world()
    reference = rig.fake.upload("ref.png", png_bytes(), content_type="image/png")
    parent_reply, parent = await finished(
        rig, rig.fake.alice, prompt="a red fox", aspect_ratio="16:9", resolution="1K", image1=reference
    )
    image_url = parent_reply.attachments[0].url
    ids = buttons(parent_reply)
    assert ids == [f"imagine:{a}:{parent.id}" for a in ("reroll", "edit", "vary", "upscale")]
    link = f"https://discord.com/channels/{rig.fake.guild.id}/{parent_reply.channel_id}/{parent_reply.id}"

    expected = {
        "reroll": ("a red fox", [parent.image_urls[0]], "1K", "Re-roll of"),
        "vary": (vary_prompt("a red fox"), [image_url], "1K", "Variation of"),
        "upscale": (UPSCALE_PROMPT, [image_url], "2K", "Upscale of"),
    }
    for action, (prompt, refs, tier, origin) in expected.items():
        before = len(rig.sim.submits())
        click = await rig.fake.press_button(parent_reply, f"imagine:{action}:{parent.id}", rig.fake.bob)
        reply, job = await child_of(rig, click)
        assert len(rig.sim.submits()) == before + 1
        body = rig.sim.submits()[-1].json
        assert body["prompt"] == prompt and body["image_urls"] == refs
        assert body["aspect_ratio"] == "16:9" and body["resolution"] == tier
        assert job.user_id == int(rig.fake.bob.id) and job.parent_job_id == parent.id and job.action == action
        assert f"{origin} [image #{parent.id}]({link})" in embed_text(reply)

    # Edit: a form; the finished image first, then the original references, then the new upload.
    click = await rig.fake.press_button(parent_reply, f"imagine:edit:{parent.id}", rig.fake.bob)
    modal = await click.wait_modal()
    assert modal["title"] == "Edit this image"
    extra = rig.fake.upload("more.png", png_bytes(colour=(0, 0, 200)), content_type="image/png")
    submitted = await rig.fake.submit_modal(
        click,
        {"prompt": "the same fox at night", "resolution": ["2K"], "aspect_ratio": ["1:1"], "more_images": [extra]},
    )
    reply, job = await child_of(rig, submitted)
    body = rig.sim.submits()[-1].json
    assert body["prompt"] == "the same fox at night" and body["resolution"] == "2K" and body["aspect_ratio"] == "1:1"
    assert body["image_urls"][:2] == [image_url, parent.image_urls[0]] and len(body["image_urls"]) == 3
    assert job.action == "edit" and f"Edit of [image #{parent.id}]" in embed_text(reply)
    assert rig.fake.attachment_bytes(parent_reply.attachments[0].id)  # the bytes behind the first reference


async def test_upscale_is_hidden_at_4k_and_failed_jobs_have_no_buttons(world: StartWorld) -> None:
    rig = await world()
    reply, _ = await finished(rig, rig.fake.alice, prompt="big already", resolution="4K")
    assert not any(b.startswith("imagine:upscale:") for b in buttons(reply))
    assert any(b.startswith("imagine:reroll:") for b in buttons(reply))
    rig.sim.fail_next("CONTENT_BLOCKED")
    interaction = await rig.imagine(rig.fake.alice, prompt="blocked")
    failed = await interaction.wait_original(lambda m: "blocked" in embed_text(m))
    await rig.fake.wait_until(lambda: not buttons(failed), 5.0, "no buttons on a failure")


async def test_a_double_click_makes_one_job(world: StartWorld) -> None:
    rig = await world()
    reply, parent = await finished(rig, rig.fake.alice, prompt="just once")
    before = len(rig.sim.submits())
    custom_id = f"imagine:reroll:{parent.id}"
    first, second = await asyncio.gather(
        rig.fake.press_button(reply, custom_id, rig.fake.alice),
        rig.fake.press_button(reply, custom_id, rig.fake.alice),
    )
    answers = await asyncio.gather(first.wait_response(), second.wait_response())
    private = [a for a in answers if (a.get("data") or {}).get("flags", 0) & EPHEMERAL]
    assert len(private) == 1 and "pressed twice" in private[0]["data"]["content"]
    made = first if answers[0] is not private[0] else second
    await child_of(rig, made)
    assert len(rig.sim.submits()) == before + 1


async def test_a_member_over_quota_gets_no_job_and_a_private_answer(world: StartWorld) -> None:
    rig = await world()
    reply, parent = await finished(rig, rig.fake.alice, prompt="popular")
    quota = await rig.fake.invoke("quota", rig.fake.admin, subcommand="set", options={"user_daily": 1})
    await quota.wait_response()
    await finished(rig, rig.fake.bob, prompt="bob's one image today")
    before = len(rig.sim.submits())
    click = await rig.fake.press_button(reply, f"imagine:vary:{parent.id}", rig.fake.bob)
    assert "daily image limit" in await private_answer(click)
    assert len(rig.sim.submits()) == before


async def test_the_buttons_work_after_a_restart(tmp_path: Path) -> None:
    async with (
        FakeDiscord() as fake,
        run_simulator(SimulatorOptions(api_key=SIM_KEY, job_duration=0.05)) as sim,
    ):
        db = tmp_path / "bot.sqlite3"
        async with running_bot(fake, sim, db) as rig:
            reply, parent = await finished(rig, fake.alice, prompt="still clickable")
        async with running_bot(fake, sim, db, sync_commands=False) as rig:
            click = await fake.press_button(reply, f"imagine:reroll:{parent.id}", fake.bob)
            _, job = await child_of(rig, click)
        assert job.parent_job_id == parent.id and len(sim.submits()) == 2


async def test_a_button_whose_job_row_is_gone_is_answered_privately(world: StartWorld) -> None:
    rig = await world()
    reply, parent = await finished(rig, rig.fake.alice, prompt="soon forgotten")
    await delete_job(rig.settings.database_url, parent.id)  # as an operator pruning old rows would
    before = len(rig.sim.submits())
    click = await rig.fake.press_button(reply, f"imagine:reroll:{parent.id}", rig.fake.bob)
    assert "isn't known here" in await private_answer(click)
    assert len(rig.sim.submits()) == before
