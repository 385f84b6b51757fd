"""Quotas end to end: ``/quota set|show|reset`` and ``/usage`` through the fake Discord, and how the
limits they set govern ``/imagine`` (the real discord.py, the shipped cogs, the upstream simulator)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from bot.devtools.fakediscord import DiscordRejected, FakeInteraction, FakeUser
from bot.models import JobState
from bot.quota import next_reset, utc_day
from tests.conftest import StartWorld
from tests.harness import Rig, embed_text
from tests.test_e2e_imagine import EPHEMERAL, private_answer

FAST = {"job_duration": 0.01}


# -- helpers -----------------------------------------------------------------------------------


async def quota(rig: Rig, sub: str, user: FakeUser, **options: Any) -> FakeInteraction:
    """``/quota <sub>`` as ``user``; ``override_permissions`` lets a non-manager send it anyway."""
    override = bool(options.pop("override_permissions", False))
    return await rig.fake.invoke("quota", user, subcommand=sub, options=options, override_permissions=override)


async def set_quota(rig: Rig, **options: int) -> str:
    """The manager runs ``/quota set``; returns the private confirmation."""
    return await private_answer(await quota(rig, "set", rig.fake.manager, **options))


def reset_stamps() -> set[int]:
    """Next UTC midnight as a Discord timestamp (two candidates if the test straddles midnight)."""
    now = time.time()
    return {int(next_reset(now)), int(next_reset(now + 30.0))}


def mentions_reset(text: str, stamps: set[int]) -> bool:
    return any(f"<t:{stamp}:" in text for stamp in stamps)


async def accepted(rig: Rig, interaction: FakeInteraction) -> None:
    """The request became a public reply showing the job (it was not refused)."""
    response = await interaction.wait_response()
    assert response["type"] == 5, f"expected a deferred public reply, got {response}"
    assert not (response.get("data") or {}).get("flags", 0) & EPHEMERAL
    await interaction.wait_original(lambda m: bool(m.embeds) and not m.deleted)


async def delivered(rig: Rig, interaction: FakeInteraction) -> None:
    """The image arrived and the job is recorded as delivered."""
    await interaction.wait_original(lambda m: bool(m.attachments), timeout=10.0)
    job = await rig.job_for(interaction)
    await rig.wait_job(job.id, lambda j: j.status is JobState.DELIVERED, what="the job to be delivered")


async def used_today(rig: Rig, user: FakeUser) -> tuple[int, int]:
    usage = await rig.store.usage(int(rig.fake.guild.id), int(user.id), day=utc_day(time.time()))
    return usage.user_used, usage.guild_used


def settled(interaction: FakeInteraction) -> bool:
    """Answered for good: a private refusal, a withdrawn reply with its follow-up, or a job reply."""
    if not interaction.responses:
        return False
    if interaction.responses[0]["type"] == 4 or interaction.followups():
        return True
    original = interaction.original()
    return original is not None and not original.deleted and bool(original.embeds)


def is_refusal(interaction: FakeInteraction) -> bool:
    return interaction.responses[0]["type"] == 4 or bool(interaction.followups())


# -- acceptance ----------------------------------------------------------------------------------


async def test_user_daily_one_refuses_the_second_imagine_with_the_reset_time(world: StartWorld) -> None:
    rig = await world(sim=FAST)
    confirmation = await set_quota(rig, user_daily=1)
    assert "Quota updated" in confirmation and "Images per member per day" in confirmation and "1" in confirmation
    first = await rig.imagine(rig.fake.alice, prompt="a lighthouse")
    await delivered(rig, first)
    stamps = reset_stamps()
    second = await rig.imagine(rig.fake.alice, prompt="another lighthouse")
    text = await private_answer(second)
    assert "daily image limit" in text and "1 of 1" in text
    assert mentions_reset(text, stamps), text
    assert len(rig.sim.submits()) == 1
    assert await used_today(rig, rig.fake.alice) == (1, 1)


async def test_member_without_manage_server_is_refused_by_the_bot(world: StartWorld) -> None:
    """The server overrode the permission hint, so Discord sends it; the bot checks again."""
    rig = await world()
    guild_id = int(rig.fake.guild.id)
    before = await rig.store.get_quota(guild_id)
    interaction = await quota(rig, "set", rig.fake.alice, user_daily=1, guild_daily=5, override_permissions=True)
    response = await interaction.wait_response()
    assert response["type"] == 4 and response["data"]["flags"] & EPHEMERAL
    assert "Manage Server" in response["data"]["content"]
    assert await rig.store.get_quota(guild_id) == before
    assert await rig.store.quota_changes(guild_id) == []
    for sub, options in (("show", {}), ("reset", {"member": rig.fake.bob})):
        other = await quota(rig, sub, rig.fake.alice, override_permissions=True, **options)
        assert "Manage Server" in await private_answer(other)
    assert await rig.store.quota_changes(guild_id) == []
    # Still no limit: alice can imagine as before.
    await accepted(rig, await rig.imagine(rig.fake.alice, prompt="unlimited"))


async def test_twenty_concurrent_imagines_under_user_daily_five(world: StartWorld) -> None:
    """Reservation happens in one transaction: exactly 5 of 20 simultaneous requests get through."""
    rig = await world(sim=FAST)
    await set_quota(rig, user_daily=5)
    stamps = reset_stamps()
    interactions = await asyncio.gather(*(rig.imagine(rig.fake.alice, prompt=f"cat number {i}") for i in range(20)))
    assert len({i.id for i in interactions}) == 20
    await rig.fake.wait_until(lambda: all(settled(i) for i in interactions), 10.0, "an answer to all 20 requests")
    refused = [i for i in interactions if is_refusal(i)]
    went_ahead = [i for i in interactions if not is_refusal(i)]
    assert len(went_ahead) == 5 and len(refused) == 15
    for interaction in refused:
        text = await private_answer(interaction)
        assert "daily image limit" in text and "5 of 5" in text, text
        assert mentions_reset(text, stamps), text
    for interaction in went_ahead:
        await delivered(rig, interaction)
    assert len(rig.sim.submits()) == 5
    assert await used_today(rig, rig.fake.alice) == (5, 5)


async def test_job_failing_upstream_does_not_use_up_the_quota(world: StartWorld) -> None:
    rig = await world(sim=FAST)
    await set_quota(rig, user_daily=1)
    rig.sim.fail_next("CONTENT_BLOCKED")
    blocked = await rig.imagine(rig.fake.alice, prompt="something forbidden")
    await blocked.wait_original(lambda m: "blocked" in embed_text(m))
    job = await rig.job_for(blocked)
    failed = await rig.wait_job(job.id, lambda j: j.status is JobState.FAILED, what="the job to fail")
    assert failed.cost == 0
    assert await used_today(rig, rig.fake.alice) == (0, 0)
    retry = await rig.imagine(rig.fake.alice, prompt="something allowed")
    await delivered(rig, retry)
    assert len(rig.sim.submits()) == 2
    assert await used_today(rig, rig.fake.alice) == (1, 1)
    # The delivered one counts: the next is refused.
    assert "daily image limit" in await private_answer(await rig.imagine(rig.fake.alice, prompt="one more"))


async def test_guild_daily_applies_across_members(world: StartWorld) -> None:
    rig = await world(sim=FAST)
    await set_quota(rig, guild_daily=2)
    first = await rig.imagine(rig.fake.alice, prompt="alice's fox")
    second = await rig.imagine(rig.fake.bob, prompt="bob's fox")
    await delivered(rig, first)
    await delivered(rig, second)
    stamps = reset_stamps()
    for user in (rig.fake.alice, rig.fake.moderator):
        text = await private_answer(await rig.imagine(user, prompt="a third fox"))
        assert "this server's daily image limit" in text and "2 of 2" in text, text
        assert mentions_reset(text, stamps), text
    assert len(rig.sim.submits()) == 2


async def test_max_concurrent_applies_per_member(world: StartWorld) -> None:
    rig = await world(sim={"manual": True})
    await set_quota(rig, max_concurrent=1)
    alice_first = await rig.imagine(rig.fake.alice, prompt="alice one")
    await accepted(rig, alice_first)
    text = await private_answer(await rig.imagine(rig.fake.alice, prompt="alice two"))
    assert "in progress at once" in text and "(1)" in text, text
    bob = await rig.imagine(rig.fake.bob, prompt="bob one")  # another member is not held back
    await accepted(rig, bob)
    await rig.sim.wait_for(lambda: len(rig.sim.submits()) == 2)
    running = next(j for j in rig.sim.jobs.values() if j.body.get("prompt") == "alice one")
    await rig.sim.wait_for(lambda: running.state == "IN_PROGRESS")
    rig.sim.finish(running.request_id)
    await delivered(rig, alice_first)
    await accepted(rig, await rig.imagine(rig.fake.alice, prompt="alice three"))  # a slot is free again
    await rig.sim.wait_for(lambda: len(rig.sim.submits()) == 3)


# -- the commands ------------------------------------------------------------------------------


async def test_quota_set_without_options_changes_nothing(world: StartWorld) -> None:
    rig = await world()
    guild_id = int(rig.fake.guild.id)
    await set_quota(rig, user_daily=4)
    before = await rig.store.get_quota(guild_id)
    text = await set_quota(rig)
    assert "Nothing changed" in text
    assert await rig.store.get_quota(guild_id) == before
    assert len(await rig.store.quota_changes(guild_id)) == 1


async def test_zero_removes_a_limit_and_other_limits_stay(world: StartWorld) -> None:
    rig = await world(sim=FAST)
    guild_id = int(rig.fake.guild.id)
    await set_quota(rig, user_daily=1, guild_daily=10)
    await delivered(rig, await rig.imagine(rig.fake.alice, prompt="first"))
    assert "daily image limit" in await private_answer(await rig.imagine(rig.fake.alice, prompt="second"))
    text = await set_quota(rig, user_daily=0)
    assert "Images per member per day" in text and "no limit" in text
    settings = await rig.store.get_quota(guild_id)
    assert settings.user_daily is None and settings.guild_daily == 10  # left out: unchanged
    await delivered(rig, await rig.imagine(rig.fake.alice, prompt="third"))
    assert len(rig.sim.submits()) == 2


async def test_quota_show_lists_settings_use_and_who_changed_what(world: StartWorld) -> None:
    rig = await world(sim=FAST)
    await set_quota(rig, user_daily=3, max_concurrent=2)
    await delivered(rig, await rig.imagine(rig.fake.alice, prompt="a kite"))
    interaction = await quota(rig, "show", rig.fake.admin)
    response = await interaction.wait_response()
    assert response["type"] == 4 and response["data"]["flags"] & EPHEMERAL
    embed = response["data"]["embeds"][0]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Images per member per day"] == "3"
    assert fields["Images per server per day"] == "no limit"
    assert fields["Images in progress per member"] == "2"
    assert fields["A 4K image counts as"] == "2 images"
    assert fields["Used today (server)"].startswith("1") and "<t:" in fields["Used today (server)"]
    history = fields["Recent changes"].splitlines()
    manager = f"<@{rig.fake.manager.id}>"
    daily = next(line for line in history if "Images per member per day" in line)
    assert manager in daily and "no limit → 3" in daily and daily.startswith("<t:")
    assert any(manager in line and "no limit → 2" in line for line in history)
    assert response["data"].get("allowed_mentions", {}).get("parse") == []


async def test_quota_reset_of_one_member_gives_their_use_back(world: StartWorld) -> None:
    rig = await world(sim=FAST)
    await set_quota(rig, user_daily=1)
    await delivered(rig, await rig.imagine(rig.fake.alice, prompt="alice's owl"))
    await delivered(rig, await rig.imagine(rig.fake.bob, prompt="bob's owl"))
    assert "daily image limit" in await private_answer(await rig.imagine(rig.fake.alice, prompt="again"))
    text = await private_answer(await quota(rig, "reset", rig.fake.manager, member=rig.fake.alice))
    assert f"<@{rig.fake.alice.id}>" in text and "1 image given back" in text
    assert await used_today(rig, rig.fake.alice) == (0, 1)
    await delivered(rig, await rig.imagine(rig.fake.alice, prompt="alice's second owl"))
    assert "daily image limit" in await private_answer(await rig.imagine(rig.fake.bob, prompt="bob again"))
    assert len(rig.sim.submits()) == 3
    changes = await rig.store.quota_changes(int(rig.fake.guild.id))
    assert changes[0].field == f"reset:{rig.fake.alice.id}" and changes[0].user_id == int(rig.fake.manager.id)


async def test_4k_counts_as_its_weight(world: StartWorld) -> None:
    """With user_daily 2 one 4K image (weight 2) uses the whole day; weight_4k is adjustable."""
    rig = await world(sim={"manual": True})
    await set_quota(rig, user_daily=2, weight_4k=3)
    text = await private_answer(await rig.imagine(rig.fake.alice, prompt="huge", resolution="4K"))
    assert "daily image limit" in text and "count as 3" in text, text
    await set_quota(rig, weight_4k=2)
    big = await rig.imagine(rig.fake.alice, prompt="big", resolution="4K")
    await accepted(rig, big)
    assert (await rig.job_for(big)).cost == 2
    text = await private_answer(await rig.imagine(rig.fake.alice, prompt="small", resolution="1K"))
    assert "daily image limit" in text and "2 of 2" in text, text
    await rig.sim.wait_for(lambda: len(rig.sim.submits()) == 1)
    assert len(rig.sim.submits()) == 1


async def test_usage_is_private_with_numbers_and_reset_time(world: StartWorld) -> None:
    rig = await world(sim=FAST)
    await set_quota(rig, user_daily=3, guild_daily=10, max_concurrent=2)
    await delivered(rig, await rig.imagine(rig.fake.alice, prompt="a pear"))
    await delivered(rig, await rig.imagine(rig.fake.bob, prompt="an apple"))
    stamps = reset_stamps()
    interaction = await rig.fake.invoke("usage", rig.fake.alice)
    response = await interaction.wait_response()
    assert response["type"] == 4 and response["data"]["flags"] & EPHEMERAL
    text = response["data"]["content"]
    assert "2 of 3 left" in text and "(1 used)" in text, text
    assert "8 of 10 left" in text and "(2 used)" in text, text
    assert "0 of 2 at once" in text, text
    assert mentions_reset(text, stamps), text


async def test_fake_discord_refuses_quota_set_for_non_managers(world: StartWorld) -> None:
    """Discord's side: default_member_permissions hides /quota from members without Manage Server."""
    rig = await world()
    sent = len(rig.fake.interactions)
    with pytest.raises(DiscordRejected):
        await quota(rig, "set", rig.fake.alice, user_daily=1)
    assert len(rig.fake.interactions) == sent
    assert await rig.store.quota_changes(int(rig.fake.guild.id)) == []


async def test_quota_commands_are_guild_only(world: StartWorld) -> None:
    """Discord offers them only in servers; if a DM invocation arrives anyway, the bot says so privately."""
    rig = await world()
    with pytest.raises(DiscordRejected):
        await rig.fake.invoke("usage", rig.fake.alice, guild=False)
    with pytest.raises(DiscordRejected):
        await rig.fake.invoke("quota", rig.fake.admin, subcommand="show", guild=False)
    for name, sub, options in (("usage", None, {}), ("quota", "show", {}), ("quota", "set", {"user_daily": 1})):
        dm = await rig.fake.invoke(name, rig.fake.admin, subcommand=sub, options=options, guild=False, validate=False)
        assert "only in a server" in await private_answer(dm)
    assert await rig.store.quota_changes(int(rig.fake.guild.id)) == []
