"""Server controls end to end: ``/settings`` through the fake Discord, and how role and member limits,
blocks, 4K access, blocked words and the log channel govern ``/imagine`` and the buttons (the real
discord.py, the shipped cogs, the upstream simulator)."""

from __future__ import annotations

import logging
import time
from typing import Any, cast

import pytest

from bot.devtools.fakediscord import (
    DiscordRejected,
    FakeInteraction,
    FakeMessage,
    FakeRole,
    FakeUser,
    Intent,
    Permission,
    wait_until,
)
from bot.devtools.fakediscord import payloads as P
from bot.i18n import Catalog
from bot.models import FourKAccess, JobState, ServerControls
from bot.quota import MAX_BLOCKED_WORDS, utc_day
from cogs.settings import ServerSettings
from tests.conftest import StartWorld
from tests.harness import Rig
from tests.test_e2e_imagine import EPHEMERAL, private_answer


def TEXT(key: str) -> str:
    return Catalog().text("en", key)


FAST = {"job_duration": 0.01}


# -- helpers -----------------------------------------------------------------------------------


async def add_role(rig: Rig, name: str) -> FakeRole:
    """A new role in the server, announced to the bot as Discord does (GUILD_ROLE_CREATE)."""
    guild = rig.fake.guild
    role = FakeRole(id=rig.fake.snowflake(), name=name, permissions=0, position=len(guild.roles))
    guild.roles[role.id] = role
    await rig.fake.dispatch(
        "GUILD_ROLE_CREATE",
        {"guild_id": guild.id, "role": P.role_payload(role)},
        guild_id=guild.id,
        intent=Intent.GUILDS,
    )
    return role


async def delete_role(rig: Rig, role: FakeRole) -> None:
    guild = rig.fake.guild
    del guild.roles[role.id]
    for member in guild.members.values():
        if role.id in member.roles:
            member.roles.remove(role.id)
    await rig.fake.dispatch(
        "GUILD_ROLE_DELETE", {"guild_id": guild.id, "role_id": role.id}, guild_id=guild.id, intent=Intent.GUILDS
    )


async def settings(rig: Rig, command: str, user: FakeUser | None = None, **options: Any) -> FakeInteraction:
    """``/settings <command>`` (e.g. ``"limit role"``) as ``user`` (default: the manager);
    ``override_permissions`` lets a non-manager send it anyway, ``validate=False`` skips Discord's checks."""
    override = bool(options.pop("override_permissions", False))
    validate = bool(options.pop("validate", True))
    return await rig.fake.invoke(
        f"settings {command}",
        user or rig.fake.manager,
        options=options,
        override_permissions=override,
        validate=validate,
    )


async def answer(rig: Rig, command: str, user: FakeUser | None = None, **options: Any) -> str:
    """The private answer to ``/settings <command>``."""
    interaction = await settings(rig, command, user, **options)
    response = await interaction.wait_response()
    assert response["type"] == 4 and response["data"]["flags"] & EPHEMERAL, response
    assert response["data"].get("allowed_mentions", {}).get("parse") == [], response
    return str(response["data"]["content"])


async def set_quota(rig: Rig, **options: int) -> None:
    interaction = await rig.fake.invoke("quota", rig.fake.manager, subcommand="set", options=options)
    assert "Quota updated" in await private_answer(interaction)


async def accepted(interaction: FakeInteraction) -> None:
    """The request became a public reply showing the job (it was not refused)."""
    response = await interaction.wait_response()
    assert response["type"] == 5, f"expected a deferred public reply, got {response}"
    assert not (response.get("data") or {}).get("flags", 0) & EPHEMERAL
    await interaction.wait_original(lambda m: bool(m.embeds) and not m.deleted)


async def delivered(rig: Rig, interaction: FakeInteraction) -> None:
    await interaction.wait_original(lambda m: bool(m.attachments), timeout=10.0)
    job = await rig.job_for(interaction)
    await rig.wait_job(job.id, lambda j: j.status is JobState.DELIVERED, what="the job to be delivered")


async def jobs_of(rig: Rig, user: FakeUser) -> int:
    """Every job row the member has in the server, whatever its state."""
    return len(await rig.store.history(int(rig.fake.guild.id), int(user.id), limit=100))


async def used_today(rig: Rig, user: FakeUser) -> int:
    usage = await rig.store.usage(int(rig.fake.guild.id), int(user.id), day=utc_day(time.time()))
    return usage.user_used


def log_lines(rig: Rig) -> list[FakeMessage]:
    return [m for m in rig.fake.messages.values() if m.channel_id == rig.fake.art.id and not m.deleted]


async def refused_with_nothing_reserved(rig: Rig, interaction: FakeInteraction, user: FakeUser) -> str:
    """The private refusal; no job row exists for the member and nothing went upstream."""
    submits = len(rig.sim.submits())
    text = await private_answer(interaction)
    assert interaction.responses[0]["type"] == 4, "refused before the reply was deferred"
    assert await jobs_of(rig, user) == 0
    assert len(rig.sim.submits()) == submits
    return text


# -- acceptance: role and member limits ---------------------------------------------------------


async def test_two_roles_give_the_larger_allowance_and_an_override_beats_both(world: StartWorld) -> None:
    rig = await world(sim=FAST)
    bronze, gold = await add_role(rig, "Bronze"), await add_role(rig, "Gold")
    carol = rig.fake.add_member("carol", roles=[bronze, gold])
    dave = rig.fake.add_member("dave", roles=[bronze])
    await set_quota(rig, user_daily=1)
    assert "2 a day" in await answer(rig, "limit role", role=bronze, daily=2)
    assert "3 a day" in await answer(rig, "limit role", role=gold, daily=3)

    for i in range(3):
        await delivered(rig, await rig.imagine(carol, prompt=f"carol's kite {i}"))
    text = await private_answer(await rig.imagine(carol, prompt="carol's fourth kite"))
    assert "daily image limit" in text and "3 of 3" in text, text
    for i in range(2):
        await delivered(rig, await rig.imagine(dave, prompt=f"dave's kite {i}"))
    assert "2 of 2" in await private_answer(await rig.imagine(dave, prompt="dave's third kite"))
    await delivered(rig, await rig.imagine(rig.fake.alice, prompt="alice's kite"))  # no role: the default
    assert "1 of 1" in await private_answer(await rig.imagine(rig.fake.alice, prompt="alice's second kite"))

    # /usage tells carol where her limit comes from.
    usage = await private_answer(await rig.fake.invoke("usage", carol))
    assert "0 of 3 left" in usage and f"<@&{gold.id}>" in usage, usage

    # A member override wins over both roles, upwards and downwards.
    assert "5 a day" in await answer(rig, "limit member", member=carol, daily=5)
    await delivered(rig, await rig.imagine(carol, prompt="carol's kite four"))
    await delivered(rig, await rig.imagine(carol, prompt="carol's kite five"))
    assert "5 of 5" in await private_answer(await rig.imagine(carol, prompt="carol's kite six"))
    assert "1 a day" in await answer(rig, "limit member", member=dave, daily=1)
    assert "2 of 1" in await private_answer(await rig.imagine(dave, prompt="over dave's own limit"))
    usage = await private_answer(await rig.fake.invoke("usage", dave))
    assert "0 of 1 left" in usage and "set for you by an admin" in usage, usage
    # 0 is "no limit", as in /quota set; removing the override brings the roles back.
    assert "no limit" in await answer(rig, "limit member", member=dave, daily=0)
    await delivered(rig, await rig.imagine(dave, prompt="dave unlimited"))
    assert "no limit of their own" in await answer(rig, "limit remove", member=dave)
    assert "3 of 2" in await private_answer(await rig.imagine(dave, prompt="dave back to bronze"))
    assert await used_today(rig, carol) == 5


async def test_a_role_limit_replaces_the_default_and_no_limit_is_the_highest(world: StartWorld) -> None:
    rig = await world(sim={"manual": True})
    newcomer, staff = await add_role(rig, "Newcomer"), await add_role(rig, "Staff")
    nina = rig.fake.add_member("nina", roles=[newcomer])
    sam = rig.fake.add_member("sam", roles=[newcomer, staff])
    await set_quota(rig, user_daily=3)
    await answer(rig, "limit role", role=newcomer, daily=1)
    assert "no limit" in await answer(rig, "limit role", role=staff, daily=0)
    await accepted(await rig.imagine(nina, prompt="one"))
    assert "1 of 1" in await private_answer(await rig.imagine(nina, prompt="two"))  # lower than the default
    for i in range(4):
        await accepted(await rig.imagine(sam, prompt=f"sam {i}"))  # Staff: no limit beats Newcomer's 1


# -- acceptance: blocked members ------------------------------------------------------------------


async def test_a_blocked_member_is_refused_privately_with_nothing_reserved(world: StartWorld) -> None:
    rig = await world(sim=FAST)
    reply = await rig.imagine(rig.fake.alice, prompt="alice's lighthouse")
    await delivered(rig, reply)
    parent = await rig.job_for(reply)
    image = await reply.wait_original(lambda m: bool(m.attachments))
    await answer(rig, "log-channel", channel=rig.fake.art)
    text = await answer(rig, "block", member=rig.fake.bob)
    assert f"<@{rig.fake.bob.id}> is blocked" in text
    assert "already blocked" in await answer(rig, "block", member=rig.fake.bob)

    refusal = await refused_with_nothing_reserved(rig, await rig.imagine(rig.fake.bob, prompt="a cat"), rig.fake.bob)
    assert refusal == TEXT("controls-refused-blocked-member")
    # The buttons under someone else's image go through the same checks.
    click = await rig.fake.press_button(image, f"imagine:reroll:{parent.id}", rig.fake.bob)
    assert await refused_with_nothing_reserved(rig, click, rig.fake.bob) == refusal
    assert "blocked" in await private_answer(await rig.fake.invoke("usage", rig.fake.bob))
    # The attempt is posted in the log channel once (a repeat within a minute is not), without a ping.
    await rig.fake.wait_until(lambda: len(log_lines(rig)) == 1, 5.0, "a line in the log channel")
    line = log_lines(rig)[0]
    assert f"<@{rig.fake.bob.id}> is blocked" in line.content and not line.pinged
    assert (line.allowed_mentions or {}).get("parse") == []

    assert "no longer blocked" in await answer(rig, "unblock", member=rig.fake.bob)
    assert "wasn't blocked" in await answer(rig, "unblock", member=rig.fake.bob)
    await delivered(rig, await rig.imagine(rig.fake.bob, prompt="a cat, at last"))


# -- acceptance: blocked words ----------------------------------------------------------------------


async def test_a_blocked_word_refuses_the_job_privately_with_nothing_reserved(world: StartWorld) -> None:
    rig = await world(sim=FAST)
    added = await answer(rig, "words add", words="Crème, forbidden fruit,  , crème")
    assert "Added 2" in added and "0 already" in added and "2 entries" in added, added
    again = await answer(rig, "words add", words="CREME")  # the same entry, folded
    assert "Added 0" in again and "1 already" in again and "2 entries" in again, again
    await answer(rig, "log-channel", channel=rig.fake.art)
    carol = rig.fake.add_member("carol")
    for prompt in ("a creme brulee", "CRÈME on a plate", "a Forbidden   Fruit tree", "the forbidden-fruit"):
        text = await refused_with_nothing_reserved(rig, await rig.imagine(carol, prompt=prompt), carol)
        assert text == TEXT("controls-refused-blocked-words")
        assert "crème" not in text.casefold() and "creme" not in text.casefold() and "forbidden" not in text
    # Whole words only: inside another word, or only part of a phrase, does not match.
    for prompt in ("a crèmerie in Paris", "forbidden fruity drinks", "fruit that is forbidden"):
        await delivered(rig, await rig.imagine(carol, prompt=prompt))
    await rig.fake.wait_until(lambda: len(log_lines(rig)) == 1, 5.0, "a line in the log channel")
    line = log_lines(rig)[0].content
    assert "blocked word" in line and "crème" not in line.casefold() and "forbidden" not in line

    # The list is shown only to admins, privately.
    listing = await answer(rig, "words list")
    assert "Crème" in listing and "forbidden fruit" in listing and "2" in listing
    assert "Manage Server" in await answer(rig, "words list", rig.fake.alice, override_permissions=True)
    with pytest.raises(DiscordRejected):
        await settings(rig, "words list", rig.fake.alice)

    assert "Removed 1" in await answer(rig, "words remove", words="creme")  # folded like the prompts
    await delivered(rig, await rig.imagine(carol, prompt="a creme brulee, allowed now"))


# -- 4K -------------------------------------------------------------------------------------------


async def test_4k_for_listed_roles_only_or_off(world: StartWorld) -> None:
    rig = await world(sim={"manual": True})
    gold = await add_role(rig, "Gold")
    carol = rig.fake.add_member("carol", roles=[gold])
    text = await answer(rig, "4k add", role=gold)
    assert f"<@&{gold.id}>" in text and "Only these roles" in text, text
    await accepted(await rig.imagine(carol, prompt="big", resolution="4K"))
    await rig.sim.wait_for(lambda: len(rig.sim.submits()) == 1)
    refusal = await refused_with_nothing_reserved(
        rig, await rig.imagine(rig.fake.alice, prompt="big", resolution="4K"), rig.fake.alice
    )
    assert refusal == TEXT("controls-refused-4k-roles")
    await accepted(await rig.imagine(rig.fake.alice, prompt="not so big", resolution="2K"))

    assert "off" in await answer(rig, "4k access", who="off")
    assert TEXT("controls-refused-4k-off") == await private_answer(
        await rig.imagine(carol, prompt="big again", resolution="4K")
    )
    assert "Everyone" in await answer(rig, "4k access", who="everyone")
    await accepted(await rig.imagine(rig.fake.alice, prompt="big for all", resolution="4K"))
    assert "none is listed" not in await answer(rig, "4k access", who="roles")
    assert "none is listed" in await answer(rig, "4k remove", role=gold)
    controls = await rig.store.server_controls(int(rig.fake.guild.id))
    assert controls.four_k is FourKAccess.ROLES and controls.four_k_roles == ()


# -- bad input ----------------------------------------------------------------------------------------


async def test_bad_limits_are_refused_and_nothing_is_stored(world: StartWorld) -> None:
    rig = await world()
    gold = await add_role(rig, "Gold")
    guild_id = int(rig.fake.guild.id)
    for daily in (-1, 100_001, 10**12):
        with pytest.raises(DiscordRejected):  # Discord's client keeps to the option's range
            await settings(rig, "limit role", role=gold, daily=daily)
        text = await answer(rig, "limit role", role=gold, daily=daily, validate=False)  # a modified client
        assert "from 0 (no limit) to 100,000" in text, text
        text = await answer(rig, "limit member", member=rig.fake.alice, daily=daily, validate=False)
        assert "from 0 (no limit) to 100,000" in text, text
    assert "@everyone" in await answer(rig, "limit role", role=rig.fake.everyone_role, daily=3)
    assert "@everyone" in await answer(rig, "4k add", role=rig.fake.everyone_role)
    assert "Name a role or a member" in await answer(rig, "limit remove")

    # A role deleted while the admin was choosing it: Discord still resolves it; the bot knows better.
    ghost = await add_role(rig, "Ghost")
    await delete_role(rig, ghost)
    assert "no longer exists" in await answer(rig, "limit role", role=ghost, daily=3)
    assert "no longer exists" in await answer(rig, "4k add", role=ghost)

    controls = await rig.store.server_controls(guild_id)
    assert controls.role_limits == () and controls.four_k_roles == () and controls.four_k is FourKAccess.EVERYONE
    assert await rig.store.member_limits(guild_id, limit=10) == []


async def test_word_lists_over_the_size_are_refused_and_nothing_is_stored(world: StartWorld) -> None:
    rig = await world()
    guild_id = int(rig.fake.guild.id)
    too_long = "x" * 101
    assert "at most 100 characters" in await answer(rig, "words add", words=f"fine, {too_long}")
    assert "letter or digit" in await answer(rig, "words add", words="fine, !!!")
    assert "separated by commas" in await answer(rig, "words add", words=" , ,", validate=False)
    assert (await rig.store.server_controls(guild_id)).blocked_words == ()

    for start in range(0, MAX_BLOCKED_WORDS - 1, 50):  # an option holds at most 2,000 characters
        batch = ", ".join(f"blocked phrase {i}" for i in range(start, min(start + 50, MAX_BLOCKED_WORDS - 1)))
        await answer(rig, "words add", words=batch)
    assert len((await rig.store.server_controls(guild_id)).blocked_words) == MAX_BLOCKED_WORDS - 1
    full = await answer(rig, "words add", words="one more, and another")
    assert "can hold 200" in full and "Nothing was added" in full, full
    assert len((await rig.store.server_controls(guild_id)).blocked_words) == MAX_BLOCKED_WORDS - 1
    assert f"{MAX_BLOCKED_WORDS} entries" in await answer(rig, "words add", words="the last one")
    # The whole list no longer fits in a message: it comes as a file, still privately.
    interaction = await settings(rig, "words list")
    response = await interaction.wait_response()
    assert response["type"] == 4 and response["data"]["flags"] & EPHEMERAL
    listing = await interaction.wait_original(lambda m: bool(m.attachments))
    assert "200" in listing.content and listing.attachments[0].filename == "blocked-words.txt"
    lines = rig.fake.attachment_bytes(listing.attachments[0].id).decode().splitlines()
    assert len(lines) == MAX_BLOCKED_WORDS and "the last one" in lines


async def test_members_without_manage_server_can_change_nothing(world: StartWorld) -> None:
    rig = await world()
    gold = await add_role(rig, "Gold")
    guild_id = int(rig.fake.guild.id)
    attempts: list[tuple[str, dict[str, Any]]] = [
        ("show", {}),
        ("limit role", {"role": gold, "daily": 5}),
        ("limit member", {"member": rig.fake.alice, "daily": 5}),
        ("limit remove", {"role": gold}),
        ("block", {"member": rig.fake.bob}),
        ("unblock", {"member": rig.fake.bob}),
        ("4k access", {"who": "off"}),
        ("4k add", {"role": gold}),
        ("4k remove", {"role": gold}),
        ("words add", {"words": "secret"}),
        ("words remove", {"words": "secret"}),
        ("words list", {}),
        ("log-channel", {"channel": rig.fake.art}),
    ]
    for command, options in attempts:
        with pytest.raises(DiscordRejected):  # default_member_permissions hides /settings from them
            await settings(rig, command, rig.fake.alice, **options)
        # The server overrode that in Integrations; the bot checks again.
        text = await answer(rig, command, rig.fake.alice, override_permissions=True, **options)
        assert "Manage Server" in text, (command, text)
    assert await rig.store.server_controls(guild_id) == ServerControls(guild_id=guild_id)
    assert not (await rig.store.member_controls(guild_id, int(rig.fake.bob.id))).blocked
    assert await rig.store.member_limits(guild_id, limit=10) == []


# -- deleted roles, /settings show ----------------------------------------------------------------------


async def test_a_deleted_role_is_forgotten(world: StartWorld) -> None:
    rig = await world()
    guild_id = int(rig.fake.guild.id)
    gold, silver = await add_role(rig, "Gold"), await add_role(rig, "Silver")
    await answer(rig, "limit role", role=gold, daily=4)
    await answer(rig, "4k add", role=gold)
    await answer(rig, "limit role", role=silver, daily=2)
    await delete_role(rig, gold)

    async def gold_gone() -> bool:
        controls = await rig.store.server_controls(guild_id)
        return [r.role_id for r in controls.role_limits] == [int(silver.id)] and controls.four_k_roles == ()

    await wait_until(gold_gone, 5.0, what="the deleted role's limit and 4K access to be removed")
    # A role deleted while the bot was away (its id is still stored): /settings show leaves it out and
    # removes it.
    await rig.store.set_role_limit(guild_id, 424242, 9, by=1, now=time.time())
    interaction = await settings(rig, "show")
    response = await interaction.wait_response()
    fields = {f["name"]: f["value"] for f in response["data"]["embeds"][0]["fields"]}
    assert "424242" not in fields["Role limits"] and f"<@&{silver.id}>" in fields["Role limits"]
    assert [r.role_id for r in (await rig.store.server_controls(guild_id)).role_limits] == [int(silver.id)]


async def test_settings_show_lists_everything_privately(world: StartWorld) -> None:
    rig = await world()
    gold = await add_role(rig, "Gold")
    await set_quota(rig, user_daily=2)
    await answer(rig, "limit role", role=gold, daily=10)
    await answer(rig, "limit member", member=rig.fake.alice, daily=0)
    await answer(rig, "block", member=rig.fake.bob)
    await answer(rig, "4k add", role=gold)
    await answer(rig, "words add", words="secret, other secret")
    await answer(rig, "log-channel", channel=rig.fake.art)
    interaction = await settings(rig, "show")
    response = await interaction.wait_response()
    assert response["type"] == 4 and response["data"]["flags"] & EPHEMERAL
    assert response["data"].get("allowed_mentions", {}).get("parse") == []
    embed = response["data"]["embeds"][0]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    manager = f"<@{rig.fake.manager.id}>"
    assert fields["Daily limit per member (default)"] == "2 a day"
    assert f"<@&{gold.id}>: 10 a day" in fields["Role limits"] and manager in fields["Role limits"]
    assert f"<@{rig.fake.alice.id}>: no limit" in fields["Member limits"]
    assert f"<@{rig.fake.bob.id}>" in fields["Blocked members"]
    assert f"<@&{gold.id}>" in fields["4K"]
    assert fields["Blocked words"].startswith("2 entries") and "secret" not in fields["Blocked words"]
    assert fields["Log channel"] == f"<#{rig.fake.art.id}>"
    assert "own limit wins" in embed["footer"]["text"]
    quota_show = await rig.fake.invoke("quota", rig.fake.manager, subcommand="show")
    assert "/settings show" in (await quota_show.wait_response())["data"]["embeds"][0]["footer"]["text"]


# -- the log channel ----------------------------------------------------------------------------------


async def test_log_channel_gets_quota_refusals_and_failed_jobs_without_pings(world: StartWorld) -> None:
    rig = await world(sim=FAST)
    assert f"<#{rig.fake.art.id}>" in await answer(rig, "log-channel", channel=rig.fake.art)
    await set_quota(rig, user_daily=1)
    await delivered(rig, await rig.imagine(rig.fake.alice, prompt="one"))
    assert "daily image limit" in await private_answer(await rig.imagine(rig.fake.alice, prompt="two"))
    await rig.fake.wait_until(lambda: len(log_lines(rig)) == 1, 5.0, "the quota refusal in the log channel")
    assert "daily limit" in log_lines(rig)[0].content and "1 of 1" in log_lines(rig)[0].content

    rig.sim.fail_next("CONTENT_BLOCKED")
    failing = await rig.imagine(rig.fake.bob, prompt="something the service refuses")
    job = await rig.job_for(failing)
    await rig.wait_job(job.id, lambda j: j.status is JobState.FAILED, what="the job to fail")
    settings_cog = cast("ServerSettings", rig.bot.get_cog("ServerSettings"))
    settings_cog.rescan()  # rather than wait for the next scan
    await rig.fake.wait_until(lambda: len(log_lines(rig)) == 2, 5.0, "the failed job in the log channel")
    line = log_lines(rig)[1]
    assert f"#{job.id}" in line.content and f"<@{rig.fake.bob.id}>" in line.content and "failed" in line.content
    assert all(not m.pinged and (m.allowed_mentions or {}).get("parse") == [] for m in log_lines(rig))

    assert "no longer posted" in await answer(rig, "log-channel")
    assert (await rig.store.server_controls(int(rig.fake.guild.id))).log_channel_id is None


async def test_a_log_channel_the_bot_cannot_post_in(world: StartWorld, caplog: pytest.LogCaptureFixture) -> None:
    rig = await world(sim=FAST)
    guild_id = int(rig.fake.guild.id)
    await rig.fake.revoke_bot_permissions(int(Permission.SEND_MESSAGES), channel=rig.fake.art)
    text = await answer(rig, "log-channel", channel=rig.fake.art)
    assert "can't post" in text and "Nothing was changed" in text
    assert (await rig.store.server_controls(guild_id)).log_channel_id is None

    # Set while it could post; taken away later: a warning in the bot's log, and the bot carries on.
    await rig.fake.restore_bot_permissions(int(Permission.SEND_MESSAGES), channel=rig.fake.art)
    await answer(rig, "log-channel", channel=rig.fake.art)
    await rig.fake.revoke_bot_permissions(int(Permission.SEND_MESSAGES), channel=rig.fake.art)
    await answer(rig, "block", member=rig.fake.bob)
    with caplog.at_level(logging.WARNING, logger="cogs.settings"):
        text = await private_answer(await rig.imagine(rig.fake.bob, prompt="a cat"))
        assert text == TEXT("controls-refused-blocked-member")
        await rig.fake.wait_until(
            lambda: any("could not post in the log channel" in r.getMessage() for r in caplog.records),
            5.0,
            "a warning about the log channel",
        )
    assert log_lines(rig) == []
    await delivered(rig, await rig.imagine(rig.fake.alice, prompt="everyone else carries on"))
