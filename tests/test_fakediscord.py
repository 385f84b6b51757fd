"""End-to-end tests of the fake Discord with a minimal, real discord.py bot (not the project's bot)."""

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator
from typing import Any, Literal

import aiohttp
import discord
import pytest
import yarl
from discord import app_commands
from discord.ext import commands

from bot.devtools.fakediscord import (
    DiscordRejected,
    FakeClock,
    FakeDiscord,
    FakeInteraction,
    FakeMessage,
    MessageFlag,
    Permission,
    PermissionOverwrite,
    wait_until,
)
from bot.devtools.fakediscord.validation import compute_pings, validate_command_definitions, validate_modal

PNG_1x1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


# ================================================================================== the minimal bot


class RemixModal(discord.ui.Modal, title="Remix"):
    prompt: discord.ui.Label[Any] = discord.ui.Label(
        text="Prompt", component=discord.ui.TextInput(custom_id="prompt", max_length=100)
    )
    style: discord.ui.Label[Any] = discord.ui.Label(
        text="Style",
        component=discord.ui.Select(
            custom_id="style",
            options=[
                discord.SelectOption(label="Photo", value="photo"),
                discord.SelectOption(label="Anime", value="anime"),
            ],
        ),
    )
    files: discord.ui.Label[Any] = discord.ui.Label(
        text="References", component=discord.ui.FileUpload(custom_id="files", max_values=2)
    )

    def __init__(self, target: discord.Message) -> None:
        super().__init__()
        self.target = target

    async def on_submit(self, interaction: discord.Interaction) -> None:
        text_input = self.prompt.component
        select = self.style.component
        upload = self.files.component
        assert isinstance(text_input, discord.ui.TextInput)
        assert isinstance(select, discord.ui.Select)
        assert isinstance(upload, discord.ui.FileUpload)
        data = await upload.values[0].read()
        await interaction.response.send_message(
            f"remix:{text_input.value}:{select.values[0]}:{len(upload.values)}:{self.target.content}",
            file=discord.File(io.BytesIO(data), filename="remix.png"),
        )


class ConfirmView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=30)

    @discord.ui.button(label="OK", custom_id="mini:ok", style=discord.ButtonStyle.primary)
    async def ok(self, interaction: discord.Interaction, button: discord.ui.Button["ConfirmView"]) -> None:
        await interaction.response.edit_message(content=f"clicked by {interaction.user.id}", view=None)


class MiniBot(commands.Bot):
    def __init__(self, guild_id: int) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.default(),
            guild_ready_timeout=0.05,
            help_command=None,
        )
        self.guild_id = guild_id
        self.reactions: list[discord.RawReactionActionEvent] = []
        self.errors: list[BaseException] = []
        self.results: dict[str, Any] = {}
        self.release = asyncio.Event()
        self.disconnects = 0
        self.resumes = 0

    async def setup_hook(self) -> None:
        add_commands(self)
        await self.tree.sync()
        await self.tree.sync(guild=discord.Object(self.guild_id))

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        self.reactions.append(payload)

    async def on_disconnect(self) -> None:
        self.disconnects += 1

    async def on_resumed(self) -> None:
        self.resumes += 1


def add_commands(bot: MiniBot) -> None:
    guild = discord.Object(bot.guild_id)

    @bot.tree.command(name="draw", description="Draw a picture")
    @app_commands.describe(prompt="What to draw", style="Style", count="How many", image="Reference image")
    async def draw(
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, 200],
        style: Literal["photo", "anime"],
        count: app_commands.Range[int, 1, 4] = 1,
        image: discord.Attachment | None = None,
    ) -> None:
        bot.results["draw_args"] = (prompt, style, count)
        await interaction.response.defer()
        await interaction.edit_original_response(content=f"Queued: {prompt} ({style} x{count})")
        data = await image.read() if image is not None else PNG_1x1
        await interaction.edit_original_response(
            content="Done", attachments=[discord.File(io.BytesIO(data), filename="result.png")]
        )
        message = await interaction.original_response()
        await message.add_reaction("🛑")
        bot.results["draw_message"] = message.id

    @bot.tree.command(name="big", description="Upload a file over the limit")
    async def big(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        blob = b"\0" * (interaction.filesize_limit + 1)
        try:
            await interaction.edit_original_response(attachments=[discord.File(io.BytesIO(blob), "huge.bin")])
        except discord.HTTPException as exc:
            bot.results["big"] = (exc.status, exc.code)
        await interaction.edit_original_response(content="too big")

    @bot.tree.command(name="slow", description="Outlive the interaction token")
    async def slow(interaction: discord.Interaction) -> None:
        callback = await interaction.response.defer()
        assert callback is not None and callback.message_id is not None
        await interaction.edit_original_response(content="working")
        await bot.release.wait()
        try:
            await interaction.edit_original_response(content="late")
        except discord.HTTPException as exc:
            bot.results["slow_token"] = (exc.status, exc.code)
        assert interaction.channel_id is not None
        channel = bot.get_partial_messageable(interaction.channel_id)
        await channel.get_partial_message(callback.message_id).edit(content="finished via bot token")
        bot.results["slow_done"] = True

    @bot.tree.command(name="twice", description="Acknowledge twice")
    async def twice(interaction: discord.Interaction) -> None:
        results = await asyncio.gather(
            interaction.response.defer(), interaction.response.defer(), return_exceptions=True
        )
        bot.results["twice"] = results

    @bot.tree.command(name="shout", description="Mention people")
    async def shout(interaction: discord.Interaction, quiet: bool = True) -> None:
        mentions = discord.AllowedMentions.none() if quiet else discord.utils.MISSING
        await interaction.response.send_message(f"hey {interaction.user.mention} @everyone", allowed_mentions=mentions)

    @bot.tree.command(name="follow", description="Defer, then follow up twice")
    async def follow(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True)
        first = await interaction.followup.send("first", wait=True)
        second = await interaction.followup.send("second", wait=True)
        bot.results["follow"] = (first.id, second.id)

    async def fruit_names(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        fruits = ["apple", "apricot", "banana"]
        return [app_commands.Choice(name=f, value=f) for f in fruits if f.startswith(current)]

    @bot.tree.command(name="pick", description="Pick a fruit")
    @app_commands.autocomplete(fruit=fruit_names)
    async def pick(interaction: discord.Interaction, fruit: str) -> None:
        await interaction.response.send_message(fruit)

    @bot.tree.command(name="later", description="Defer, and leave the rest to the test")
    async def later(interaction: discord.Interaction, private: bool = False) -> None:
        await interaction.response.defer(ephemeral=private)
        bot.results.setdefault("later", []).append(interaction)

    @bot.tree.command(name="noreply", description="Leave the interaction unanswered (the test answers it)")
    async def noreply(interaction: discord.Interaction) -> None:
        bot.results.setdefault("noreply", []).append(interaction)

    @bot.tree.command(name="badform", description="Send a modal Discord refuses")
    async def badform(interaction: discord.Interaction, problem: Literal["title", "disabled", "duplicate"]) -> None:
        modal = discord.ui.Modal(title="x" * 46 if problem == "title" else "Bad form")
        select: discord.ui.Select[Any] = discord.ui.Select(
            custom_id="prompt" if problem == "duplicate" else "pick",
            disabled=problem == "disabled",
            options=[discord.SelectOption(label="A", value="a")],
        )
        modal.add_item(discord.ui.Label(text="Prompt", component=discord.ui.TextInput(custom_id="prompt")))
        modal.add_item(discord.ui.Label(text="Pick", component=select))
        try:
            await interaction.response.send_modal(modal)
        except discord.HTTPException as exc:
            bot.results["badform"] = (exc.status, exc.code)

    @bot.tree.command(name="buttons", description="Send a button")
    async def buttons(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Pick one", view=ConfirmView())

    quota = app_commands.Group(
        name="quota", description="Quota administration", default_permissions=discord.Permissions(manage_guild=True)
    )

    @quota.command(name="set", description="Set a user's quota")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def quota_set(
        interaction: discord.Interaction, user: discord.Member, amount: app_commands.Range[int, 0, 100]
    ) -> None:
        await interaction.response.send_message(f"quota {user.id}={amount}", ephemeral=True)

    bot.tree.add_command(quota, guild=guild)

    @app_commands.context_menu(name="Remix")
    async def remix(interaction: discord.Interaction, message: discord.Message) -> None:
        bot.results["remix_target"] = (message.content, [a.filename for a in message.attachments])
        await interaction.response.send_modal(RemixModal(message))

    bot.tree.add_command(remix, guild=guild)

    @bot.tree.error
    async def on_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        bot.errors.append(error)
        if isinstance(error, app_commands.MissingPermissions) and not interaction.response.is_done():
            await interaction.response.send_message("denied", ephemeral=True)


# ================================================================================== fixtures


@pytest.fixture
async def fake(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    options: dict[str, Any] = getattr(request, "param", {})
    async with FakeDiscord(**options) as server:
        monkeypatch.setattr(discord.http.Route, "BASE", server.api_base)
        monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(server.gateway_url))
        yield server
        assert not server.internal_errors, server.internal_errors


@pytest.fixture
async def bot(fake: FakeDiscord) -> AsyncIterator[MiniBot]:
    client = MiniBot(int(fake.guild.id))
    runner = asyncio.create_task(client.start(fake.token))
    ready = asyncio.create_task(client.wait_until_ready())
    done, _ = await asyncio.wait({runner, ready}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:
        ready.cancel()
        await client.close()
        if runner in done:
            runner.result()
        pytest.fail("bot did not become ready within 5 s")
    try:
        yield client
    finally:
        client.release.set()
        await client.close()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


def interaction_creates(fake: FakeDiscord) -> int:
    return len(fake.dispatched("INTERACTION_CREATE"))


def original(inv: FakeInteraction) -> FakeMessage:
    message = inv.original()
    assert message is not None
    return message


# ================================================================================== tests: startup


async def test_bot_logs_in_syncs_and_gets_ready(fake: FakeDiscord, bot: MiniBot) -> None:
    assert bot.user is not None and bot.user.id == int(fake.bot_user.id)
    assert bot.application_id == int(fake.bot_user.id)
    assert [r.path for r in fake.requests[:2]] == ["/users/@me", "/oauth2/applications/@me"]
    assert {c["name"] for c in await fake.wait_synced()} == {
        "draw",
        "big",
        "slow",
        "twice",
        "shout",
        "buttons",
        "follow",
        "pick",
        "later",
        "noreply",
        "badform",
    }
    guild_commands = await fake.wait_synced(fake.guild.id)
    assert {(c["name"], c["type"]) for c in guild_commands} == {("quota", 1), ("Remix", 3)}
    assert all(c["guild_id"] == fake.guild.id for c in guild_commands)
    draw = fake.command("draw")
    assert draw is not None
    style = next(o for o in draw["options"] if o["name"] == "style")
    assert [c["value"] for c in style["choices"]] == ["photo", "anime"]
    assert fake.identify_payloads[0]["intents"] == discord.Intents.default().value
    guild = bot.get_guild(int(fake.guild.id))
    assert guild is not None and guild.name == "Test Server"
    assert {c.name for c in guild.text_channels} == {"general", "art"}
    assert {r.name for r in guild.roles} >= {"@everyone", "Admin", "Moderator", "Manager"}
    # without the presences intent GUILD_CREATE carries only the bot's own member
    assert guild.owner_id == int(fake.owner.id) and guild.get_member(int(fake.owner.id)) is None
    assert guild.me is not None and guild.me.guild_permissions.add_reactions
    owner = await guild.fetch_member(int(fake.owner.id))
    assert owner.guild_permissions.administrator
    login = next(r for r in fake.requests if r.path == "/users/@me")
    assert login.auth == "bot" and login.status == 200


async def test_wrong_token_is_refused(fake: FakeDiscord) -> None:
    client = discord.Client(intents=discord.Intents.default())
    with pytest.raises(discord.LoginFailure):
        await client.login("not-the-token")
    await client.close()
    assert fake.requests[-1].status == 401 and fake.requests[-1].auth == "invalid"


# ================================================================================== tests: the happy path


async def test_slash_command_defers_edits_uploads_and_reacts(fake: FakeDiscord, bot: MiniBot) -> None:
    reference = fake.upload("ref.png", PNG_1x1)
    inv = await fake.invoke(
        "draw", fake.alice, options={"prompt": "a cat", "style": "anime", "count": 2, "image": reference}
    )
    assert (await inv.wait_response(3))["type"] == 5
    await wait_until(lambda: "draw_message" in bot.results, what="the bot to finish /draw")
    message = original(inv)
    assert bot.results["draw_args"] == ("a cat", "anime", 2)
    assert bot.results["draw_message"] == int(message.id)
    assert message.type == 20 and message.author_id == fake.bot_user.id
    assert [(s.action, s.content) for s in message.history] == [
        ("create", ""),
        ("edit", "Queued: a cat (anime x2)"),
        ("edit", "Done"),
    ]
    assert message.history[0].flags & MessageFlag.LOADING
    assert not message.loading
    final = message.history[-1].attachments
    assert [(a.filename, a.content_type, a.width, a.height) for a in final] == [("result.png", "image/png", 1, 1)]
    assert final[0].data == PNG_1x1 == fake.attachment_bytes(final[0].id)
    assert message.history[1].attachments == []
    # JSON edit, then multipart edit with payload_json + files[0]
    edits = [r for r in fake.requests if r.method == "PATCH" and r.path.endswith("/messages/@original")]
    assert [bool(r.files) for r in edits] == [False, True]
    assert edits[1].files == [("result.png", len(PNG_1x1))]
    assert edits[0].auth == "none"
    # the bot's reaction is recorded, echoed through the gateway, and seen by the bot itself
    assert message.reactions == {"🛑": [fake.bot_user.id]}
    await wait_until(lambda: len(bot.reactions) == 1, what="the bot's own reaction event")
    own = bot.reactions[0]
    assert own.user_id == int(fake.bot_user.id) and own.message_id == int(message.id)
    # a user reacts: on_raw_reaction_add gets guild, member and message author
    await fake.react(message, "🛑", fake.alice)
    await wait_until(lambda: len(bot.reactions) == 2, what="alice's reaction event")
    payload = bot.reactions[1]
    assert payload.user_id == int(fake.alice.id) and payload.emoji.name == "🛑"
    assert payload.guild_id == int(fake.guild.id) and payload.member is not None
    assert payload.message_author_id == int(fake.bot_user.id)
    assert message.reactions["🛑"] == [fake.bot_user.id, fake.alice.id]
    # the reference attachment was downloaded from the fake
    assert any(r.path.startswith(f"/attachments/{reference.id}/") for r in fake.requests)


@pytest.mark.parametrize("fake", [{"compress": True}], indirect=True)
async def test_gateway_resume_after_reconnect_with_zlib_frames(fake: FakeDiscord, bot: MiniBot) -> None:
    session = await fake.wait_identified()
    await fake.request_reconnect()
    await fake.wait_until(lambda: session.resumes == 1 and session.connected, 5, "a RESUME")
    assert len(fake.identify_payloads) == 1
    assert fake.gateway.resume_payloads[0]["session_id"] == session.session_id
    message = await fake.post_user_message(fake.bob, "hello")
    await fake.react(message, "👍", fake.bob)
    await wait_until(lambda: any(r.user_id == int(fake.bob.id) for r in bot.reactions), what="a reaction")


# ================================================================================== tests: refusals


async def test_invoke_refuses_what_discord_would_not_send(fake: FakeDiscord, bot: MiniBot) -> None:
    before = interaction_creates(fake)
    bad_options: list[dict[str, Any]] = [
        {"prompt": "x", "style": "watercolor"},  # not among the synced choices
        {"style": "photo"},  # required option missing
        {"prompt": "x" * 201, "style": "photo"},  # over max_length
        {"prompt": "x", "style": "photo", "count": 5},  # over max_value
        {"prompt": "x", "style": "photo", "count": "2"},  # wrong type
        {"prompt": "x", "style": "photo", "colour": "red"},  # unknown option
    ]
    for options in bad_options:
        with pytest.raises(DiscordRejected):
            await fake.invoke("draw", fake.alice, options=options)
    with pytest.raises(DiscordRejected):
        await fake.invoke("nope", fake.alice)
    with pytest.raises(DiscordRejected, match="cannot be used in a DM"):
        await fake.invoke("quota set", fake.owner, options={"user": fake.bob, "amount": 1}, guild=False)
    assert interaction_creates(fake) == before
    # a modified client (validate=False) delivers it anyway, and discord.py passes it through
    inv = await fake.invoke("draw", fake.alice, options={"prompt": "x", "style": "watercolor"}, validate=False)
    await inv.wait_response()
    assert interaction_creates(fake) == before + 1
    await wait_until(lambda: "draw_args" in bot.results, what="the bot to run /draw")
    assert bot.results["draw_args"] == ("x", "watercolor", 1)


async def test_default_member_permissions_and_override(fake: FakeDiscord, bot: MiniBot) -> None:
    options = {"user": fake.bob, "amount": 5}
    with pytest.raises(DiscordRejected, match="default_member_permissions"):
        await fake.invoke("quota", fake.alice, subcommand="set", options=options)
    inv = await fake.invoke("quota set", fake.manager, options=options)
    response = await inv.wait_response()
    assert response["type"] == 4 and response["data"]["content"] == f"quota {fake.bob.id}=5"
    assert original(inv).ephemeral
    assert not [e for e in fake.dispatch_log if e.event == "MESSAGE_CREATE" and e.data["id"] == original(inv).id]
    assert inv.data["options"][0]["type"] == 1 and inv.data["guild_id"] == fake.guild.id
    admin_inv = await fake.invoke("quota set", fake.admin, options=options)
    assert (await admin_inv.wait_response())["type"] == 4
    # a server admin overrode the hint for everyone: the bot's own check still refuses alice
    overridden = await fake.invoke("quota set", fake.alice, options=options, override_permissions=True)
    assert (await overridden.wait_response())["data"]["content"] == "denied"
    assert any(isinstance(e, app_commands.MissingPermissions) for e in bot.errors)


async def test_upload_over_the_limit_is_413(fake: FakeDiscord, bot: MiniBot) -> None:
    inv = await fake.invoke("big", fake.alice)
    await inv.wait_original(lambda m: m.content == "too big")
    assert bot.results["big"] == (413, 40005)
    rejected = await fake.wait_for_request("PATCH", r"/messages/@original$", status=413)
    assert rejected.files == [("huge.bin", fake.attachment_size_limit + 1)]
    assert original(inv).attachments == []


@pytest.mark.parametrize("fake", [{"clock": FakeClock(), "token_ttl": 60.0}], indirect=True)
async def test_expired_token_is_401_but_bot_token_edit_works(fake: FakeDiscord, bot: MiniBot) -> None:
    clock = fake.clock
    assert isinstance(clock, FakeClock)
    inv = await fake.invoke("slow", fake.alice)
    message = await inv.wait_original(lambda m: m.content == "working")
    clock.advance(61)
    bot.release.set()
    await wait_until(lambda: bool(bot.results.get("slow_done")), what="the bot-token fallback edit")
    assert bot.results["slow_token"] == (401, 50027)
    late = await fake.wait_for_request("PATCH", r"^/webhooks/.+/messages/@original$", status=401)
    assert late.response == {"message": "Invalid Webhook Token", "code": 50027}
    fallback = await fake.wait_for_request("PATCH", rf"^/channels/{message.channel_id}/messages/{message.id}$")
    assert fallback.status == 200 and fallback.auth == "bot"
    assert message.contents == ["", "working", "finished via bot token"]


@pytest.mark.parametrize("fake", [{"clock": FakeClock()}], indirect=True)
async def test_late_ack_is_unknown_interaction(fake: FakeDiscord, bot: MiniBot) -> None:
    inv = await fake.invoke("shout", fake.alice)
    assert isinstance(fake.clock, FakeClock)
    fake.clock.advance(fake.callback_deadline + 0.5)  # before the bot's task gets to run
    late = await fake.wait_for_request("POST", rf"^/interactions/{inv.id}/.+/callback$")
    assert late.status == 404 and late.response == {"message": "Unknown interaction", "code": 10062}
    assert not inv.responses and inv.original() is None
    await wait_until(lambda: bool(bot.errors), what="the command error")
    error = bot.errors[0]
    assert isinstance(error, app_commands.CommandInvokeError) and isinstance(error.original, discord.NotFound)


async def test_second_ack_is_40060(fake: FakeDiscord, bot: MiniBot) -> None:
    inv = await fake.invoke("twice", fake.alice)
    await wait_until(lambda: "twice" in bot.results, what="both acknowledgements")
    errors = [r for r in bot.results["twice"] if isinstance(r, BaseException)]
    assert len(errors) == 1 and isinstance(errors[0], discord.HTTPException)
    assert (errors[0].status, errors[0].code) == (400, 40060)
    assert len(inv.responses) == 1 and inv.response_type == 5
    callbacks = [r for r in fake.requests if r.path.endswith("/callback")]
    assert sorted(r.status for r in callbacks) == [200, 400]
    assert all(r.query.get("with_response") in ("1", "true") for r in callbacks)


async def test_pinged_set_respects_allowed_mentions(fake: FakeDiscord, bot: MiniBot) -> None:
    quiet = await fake.invoke("shout", fake.alice)
    await quiet.wait_response()
    message = original(quiet)
    assert message.content == f"hey <@{fake.alice.id}> @everyone"
    assert message.allowed_mentions == {"parse": []}
    assert message.pinged == set()
    loud = await fake.invoke("shout", fake.alice, options={"quiet": False})
    await loud.wait_response()
    assert original(loud).allowed_mentions is None
    assert original(loud).pinged == {fake.alice.id, "everyone"}


# ================================================================================== tests: components


async def test_modal_round_trip_with_file_upload(fake: FakeDiscord, bot: MiniBot) -> None:
    post = await fake.post_user_message(fake.alice, "my cat", attachments=[fake.upload("cat.png", PNG_1x1)])
    # without the MESSAGE_CONTENT intent the bot's MESSAGE_CREATE is blank...
    created = [d for d in fake.dispatched("MESSAGE_CREATE") if d["id"] == post.id]
    assert created[0]["content"] == "" and created[0]["attachments"] == []
    inv = await fake.invoke_message_command("Remix", fake.alice, post)
    modal = await inv.wait_modal()
    assert [(c["type"], c["component"]["type"]) for c in modal["components"]] == [(18, 4), (18, 3), (18, 19)]
    # ...but the context-menu target carries content and attachments
    await wait_until(lambda: "remix_target" in bot.results, what="the context menu")
    assert bot.results["remix_target"] == ("my cat", ["cat.png"])
    ref = fake.upload("ref.png", PNG_1x1)
    before = interaction_creates(fake)
    with pytest.raises(DiscordRejected, match="required"):
        await fake.submit_modal(inv, {"style": ["anime"], "files": [ref]})
    with pytest.raises(DiscordRejected, match="at most 2"):
        await fake.submit_modal(inv, {"prompt": "p", "style": ["anime"], "files": [ref, ref, ref]})
    with pytest.raises(DiscordRejected, match="not an option"):
        await fake.submit_modal(inv, {"prompt": "p", "style": ["oil"], "files": [ref]})
    assert interaction_creates(fake) == before
    submit = await fake.submit_modal(inv, {"prompt": "make it blue", "style": ["anime"], "files": [ref]})
    assert submit.data["components"][2]["component"] == {
        "type": 19,
        "id": submit.data["components"][2]["component"]["id"],
        "custom_id": "files",
        "values": [ref.id],
    }
    assert submit.data["resolved"]["attachments"][ref.id]["filename"] == "ref.png"
    reply = await submit.wait_original()
    assert reply.content == "remix:make it blue:anime:1:my cat"
    assert reply.attachments[0].data == PNG_1x1 and reply.type == 0


async def test_button_press_updates_the_message(fake: FakeDiscord, bot: MiniBot) -> None:
    inv = await fake.invoke("buttons", fake.alice)
    await inv.wait_response()
    message = original(inv)
    assert message.find_component("mini:ok") is not None
    with pytest.raises(DiscordRejected):
        await fake.press_button(message, "mini:nope", fake.bob)
    press = await fake.press_button(message, "mini:ok", fake.bob)
    assert (await press.wait_response())["type"] == 7
    assert message.content == f"clicked by {fake.bob.id}"
    assert message.components == []
    assert press.original() is message
    assert [s.via for s in message.history] == ["callback", "component"]


# ================================================================================== tests: rate limits


async def test_rate_limit_429_then_discord_py_retries(fake: FakeDiscord, bot: MiniBot) -> None:
    fake.rate_limit(r"^/channels/\d+/messages$", limit=1, per=0.3, method="POST", headers=False)
    channel = bot.get_channel(int(fake.channel.id))
    assert isinstance(channel, discord.TextChannel)
    await channel.send("first")
    await channel.send("second")
    assert fake.rate_limited_count == 1
    limited = [r for r in fake.requests if r.status == 429]
    assert len(limited) == 1 and limited[0].response["global"] is False
    assert 0 < limited[0].response["retry_after"] <= 0.3
    assert [m.content for m in fake.find_messages(channel=fake.channel)] == ["first", "second"]


async def test_rate_limit_headers_make_discord_py_wait(fake: FakeDiscord, bot: MiniBot) -> None:
    fake.rate_limit(r"^/channels/\d+/messages$", limit=1, per=0.3, method="POST")
    channel = bot.get_channel(int(fake.art.id))
    assert isinstance(channel, discord.TextChannel)
    await channel.send("first")
    await channel.send("second")
    assert fake.rate_limited_count == 0
    sends = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/messages")]
    assert sends[1].time - sends[0].time >= 0.25


# ================================================================================== tests: the fake alone


async def test_rest_shapes_without_a_bot(fake: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{fake.api_base}/users/@me") as response:
            assert response.status == 401
            assert response.headers["Content-Type"] == "application/json"
            assert await response.json() == {"message": "401: Unauthorized", "code": 0}
        headers = {"Authorization": f"Bot {fake.token}"}
        async with http.get(f"{fake.api_base}/gateway/bot", headers=headers) as response:
            assert (await response.json())["url"] == fake.gateway_url.rstrip("/")
        async with http.get(f"{fake.api_base}/channels/{fake.channel.id}/messages/1", headers=headers) as response:
            assert response.status == 404 and (await response.json())["code"] == 10008
        bad = [{"name": "Bad Name", "description": "x", "type": 1}]
        url = f"{fake.api_base}/applications/{fake.bot_user.id}/commands"
        async with http.put(url, headers=headers, data=json.dumps(bad)) as response:
            body = await response.json()
            assert response.status == 400 and body["code"] == 50035 and "0" in body["errors"]
        attachment = fake.upload("a.txt", b"hello")
        async with http.get(attachment.url) as response:
            assert await response.read() == b"hello"


def test_pings_and_command_rules() -> None:
    content = "<@1> <@&2> @everyone"
    assert compute_pings(content, None, mentionable_role_ids=set(), can_mention_everyone=False) == {"1"}
    assert compute_pings(content, None, mentionable_role_ids={"2"}, can_mention_everyone=True) == {
        "1",
        "2",
        "everyone",
    }
    assert compute_pings(content, {"parse": []}, mentionable_role_ids={"2"}, can_mention_everyone=True) == set()
    assert compute_pings(content, {"users": ["1"]}, mentionable_role_ids=set(), can_mention_everyone=True) == {"1"}
    assert (
        compute_pings("hi", {"parse": []}, mentionable_role_ids=set(), can_mention_everyone=True, replied_user_id="9")
        == set()
    )
    assert compute_pings("hi", None, mentionable_role_ids=set(), can_mention_everyone=True, replied_user_id="9") == {
        "9"
    }
    errors = validate_command_definitions(
        [
            {
                "name": "ok",
                "description": "d",
                "options": [
                    {"type": 3, "name": "a", "description": "d"},
                    {"type": 3, "name": "b", "description": "d", "required": True},
                ],
            }
        ]
    )
    assert "required" in errors.tree["0"]["options"]["1"]
    assert not validate_command_definitions([{"name": "Remix", "type": 3}])
    assert Permission.MANAGE_GUILD == 1 << 5


async def test_followup_after_defer_replaces_the_loading_message(fake: FakeDiscord, bot: MiniBot) -> None:
    inv = await fake.invoke("follow", fake.alice)
    await wait_until(lambda: "follow" in bot.results, what="two follow-ups")
    first_id, second_id = bot.results["follow"]
    message = original(inv)
    assert first_id == int(message.id) and message.content == "first" and message.ephemeral
    assert [m.id for m in inv.followups()] == [str(second_id)]
    # the ephemeral original is never dispatched; the second (public) follow-up is
    created = [d["id"] for d in fake.dispatched("MESSAGE_CREATE")]
    assert str(first_id) not in created and str(second_id) in created


async def test_autocomplete(fake: FakeDiscord, bot: MiniBot) -> None:
    inv = await fake.autocomplete("pick", fake.alice, "fruit", options={"fruit": "ap"})
    await inv.wait_response()
    assert inv.autocomplete_choices == [{"name": "apple", "value": "apple"}, {"name": "apricot", "value": "apricot"}]


async def test_dms_reactions_and_deletions(fake: FakeDiscord, bot: MiniBot) -> None:
    # a global command used in the bot's DM
    inv = await fake.invoke("shout", fake.bob, guild=False)
    await inv.wait_response()
    reply = original(inv)
    assert reply.channel_id == fake.dm_channel(fake.bob).id and reply.guild_id is None
    assert inv.payload["context"] == 1 and "member" not in inv.payload
    # the bot opens a DM; a user with closed DMs answers 50007
    alice = await bot.fetch_user(int(fake.alice.id))
    await alice.send("psst")
    assert [m.content for m in fake.find_messages(channel=fake.dm_channel(fake.alice))] == ["psst"]
    fake.bob.accepts_dms = False
    bob = await bot.fetch_user(int(fake.bob.id))
    with pytest.raises(discord.Forbidden) as closed:
        await bob.send("psst")
    assert closed.value.code == 50007
    # removing someone else's reaction needs MANAGE_MESSAGES
    channel = bot.get_channel(int(fake.channel.id))
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("react here")
    await fake.react(str(sent.id), "👍", fake.alice)
    with pytest.raises(discord.Forbidden) as denied:
        await sent.remove_reaction("👍", discord.Object(int(fake.alice.id)))
    assert denied.value.code == 50013
    await fake.update_bot_permissions(fake.bot_permissions | Permission.MANAGE_MESSAGES)
    await sent.remove_reaction("👍", discord.Object(int(fake.alice.id)))
    assert fake.messages[str(sent.id)].reactions == {}
    assert fake.dispatched("MESSAGE_REACTION_REMOVE")[-1]["user_id"] == fake.alice.id
    # a moderator deletes the bot's message: later edits are 10008
    await fake.delete_message(str(sent.id), by=fake.moderator)
    assert fake.dispatched("MESSAGE_DELETE")[-1]["id"] == str(sent.id)
    with pytest.raises(discord.NotFound) as gone:
        await sent.edit(content="edited")
    assert gone.value.code == 10008
    with pytest.raises(DiscordRejected):
        await fake.delete_message(reply.id, by=fake.alice)


# ================================================================================== tests: fidelity details


async def later_interaction(
    fake: FakeDiscord, bot: MiniBot, *, private: bool = False, **kwargs: Any
) -> tuple[FakeInteraction, discord.Interaction]:
    """Run /later (the bot only defers) and hand back both ends of the interaction."""
    count = len(bot.results.get("later", []))
    inv = await fake.invoke("later", fake.alice, options={"private": True} if private else None, **kwargs)
    await wait_until(lambda: len(bot.results.get("later", [])) > count, what="the bot to defer /later")
    return inv, bot.results["later"][count]


async def test_followup_after_the_loading_message_was_deleted(fake: FakeDiscord, bot: MiniBot) -> None:
    # a public "thinking" message deleted (by a moderator) while still loading: follow-ups are 10008
    inv, interaction = await later_interaction(fake, bot)
    assert original(inv).loading and not original(inv).ephemeral
    await fake.delete_message(original(inv), by=fake.moderator)
    for ephemeral in (False, True):
        with pytest.raises(discord.NotFound) as gone:
            await interaction.followup.send("done", ephemeral=ephemeral, wait=True)
        assert gone.value.code == 10008
    rejected = [
        r for r in fake.requests if r.method == "POST" and r.path == f"/webhooks/{fake.application_id}/{inv.token}"
    ]
    assert [(r.status, r.response) for r in rejected] == [(404, {"message": "Unknown Message", "code": 10008})] * 2
    assert inv.followups() == []
    # the same when the bot itself deleted it while loading
    inv, interaction = await later_interaction(fake, bot)
    await interaction.delete_original_response()
    with pytest.raises(discord.NotFound):
        await interaction.followup.send("done")
    # loading ended by an edit, then deleted: a follow-up is a new message with its own flags
    inv, interaction = await later_interaction(fake, bot)
    await interaction.edit_original_response(content="working")
    await interaction.delete_original_response()
    private = await interaction.followup.send("private", ephemeral=True, wait=True)
    public = await interaction.followup.send("public", wait=True)
    assert [m.id for m in inv.followups()] == [str(private.id), str(public.id)]
    assert [m.ephemeral for m in inv.followups()] == [True, False]
    assert original(inv).deleted and original(inv).contents == ["", "working"]
    # present and no longer loading: a new message, the original untouched
    inv, interaction = await later_interaction(fake, bot)
    await interaction.edit_original_response(content="working")
    extra = await interaction.followup.send("private", ephemeral=True, wait=True)
    assert inv.followups()[0].id == str(extra.id) and inv.followups()[0].ephemeral
    assert original(inv).content == "working" and not original(inv).deleted
    # a private defer deleted while loading keeps the current behaviour (a new message)
    inv, interaction = await later_interaction(fake, bot, private=True)
    await interaction.delete_original_response()
    late = await interaction.followup.send("still here", ephemeral=True, wait=True)
    assert inv.followups()[0].id == str(late.id)


async def test_no_message_or_reaction_events_from_a_channel_the_bot_cannot_view(
    fake: FakeDiscord, bot: MiniBot
) -> None:
    guild = bot.get_guild(int(fake.guild.id))
    art = bot.get_channel(int(fake.art.id))
    assert guild is not None and isinstance(art, discord.TextChannel)
    await fake.set_permission_overwrite(fake.art, fake.bot_role, deny=Permission.VIEW_CHANNEL)
    # CHANNEL_UPDATE carries the overwrite: discord.py computes the same as the fake
    await wait_until(lambda: not art.permissions_for(guild.me).view_channel, what="the CHANNEL_UPDATE")
    assert fake.bot_can_view(fake.general) and not fake.bot_can_view(fake.art)
    seen = len(fake.dispatch_log)
    post = await fake.post_user_message(fake.alice, "hidden", channel=fake.art)
    await fake.react(post, "👍", fake.alice)
    await fake.unreact(post, "👍", fake.alice)
    await fake.delete_message(post, by=fake.alice)
    # slash commands still reach the bot there, but its own messages raise no gateway events either
    inv, interaction = await later_interaction(fake, bot, channel=fake.art)
    assert not int(inv.payload["app_permissions"]) & Permission.VIEW_CHANNEL
    await interaction.edit_original_response(content="working")
    await interaction.followup.send("more")
    assert [e.event for e in fake.dispatch_log[seen:]] == ["INTERACTION_CREATE"]
    with pytest.raises(discord.Forbidden) as denied:
        await (await interaction.original_response()).add_reaction("🛑")
    assert denied.value.code == 50001
    # the same in #general is dispatched as usual
    visible = await fake.post_user_message(fake.alice, "visible")
    await fake.react(visible, "👍", fake.alice)
    await wait_until(lambda: any(r.message_id == int(visible.id) for r in bot.reactions), what="the reaction")
    # a member overwrite for the bot beats its role's deny: events flow again
    await fake.set_permission_overwrite(fake.art, fake.bot_user, allow=Permission.VIEW_CHANNEL)
    await wait_until(lambda: art.permissions_for(guild.me).view_channel, what="the second CHANNEL_UPDATE")
    again = await fake.post_user_message(fake.alice, "seen", channel=fake.art)
    await fake.react(again, "👍", fake.alice)
    await wait_until(lambda: any(r.message_id == int(again.id) for r in bot.reactions), what="the reaction")
    assert [d["id"] for d in fake.dispatched("MESSAGE_CREATE")][-1] == again.id


def test_channel_permission_overwrites() -> None:
    fake = FakeDiscord()
    private = fake.art
    everyone, bot_role = fake.everyone_role, fake.bot_role
    view = int(Permission.VIEW_CHANNEL)
    private.permission_overwrites = [PermissionOverwrite(everyone.id, 0, deny=view)]
    # @everyone's overwrite applies to the bot (and members); admins and the owner bypass it
    assert not fake.bot_can_view(private)
    assert not fake.permissions_of(fake.alice, private) & view
    assert fake.permissions_of(fake.admin, private) & view and fake.permissions_of(fake.owner, private) & view
    # a role allow beats @everyone's deny; a member deny beats the role allow
    private.permission_overwrites.append(PermissionOverwrite(bot_role.id, 0, allow=view))
    assert fake.bot_can_view(private)
    private.permission_overwrites.append(PermissionOverwrite(fake.bot_user.id, 1, deny=view))
    assert not fake.bot_can_view(private)
    assert fake.bot_can_view(fake.general) and fake.bot_can_view(fake.dm_channel(fake.alice))
    payload = next(c for c in fake._guild_create_payload(fake.guild, 0)["channels"] if c["id"] == private.id)
    assert payload["permission_overwrites"][0] == {"id": everyone.id, "type": 0, "allow": "0", "deny": str(view)}


APPLICATION_ID = "1100000000000000042"


@pytest.mark.parametrize("fake", [{"application_id": APPLICATION_ID}], indirect=True)
async def test_application_id_different_from_the_bot_user(fake: FakeDiscord, bot: MiniBot) -> None:
    assert fake.application_id == APPLICATION_ID != fake.bot_user.id
    assert bot.application_id == int(APPLICATION_ID)
    assert bot.user is not None and bot.user.id == int(fake.bot_user.id)
    await fake.wait_synced()
    await fake.wait_synced(fake.guild.id)
    syncs = [r for r in fake.requests if r.method == "PUT"]
    assert syncs and all(r.path.startswith(f"/applications/{APPLICATION_ID}/") and r.status == 200 for r in syncs)
    assert {c["application_id"] for c in fake.commands_global} == {APPLICATION_ID}
    # defer + edits of @original go through /webhooks/{application_id}/{token}
    inv = await fake.invoke("draw", fake.alice, options={"prompt": "a cat", "style": "photo"})
    assert inv.payload["application_id"] == APPLICATION_ID
    await wait_until(lambda: "draw_message" in bot.results, what="the bot to finish /draw")
    message = original(inv)
    assert message.contents == ["", "Queued: a cat (photo x1)", "Done"]
    edits = [r for r in fake.requests if r.method == "PATCH" and r.path.endswith("/messages/@original")]
    assert len(edits) == 2
    assert all(
        r.path == f"/webhooks/{APPLICATION_ID}/{inv.token}/messages/@original" and r.status == 200 for r in edits
    )
    payload = fake.message_payload(message)
    assert payload["author"]["id"] == fake.bot_user.id
    assert payload["webhook_id"] == payload["application_id"] == APPLICATION_ID
    assert message.reactions == {"🛑": [fake.bot_user.id]}
    # the bot user's id is not the application's: the webhook route does not know it
    async with aiohttp.ClientSession() as http:
        url = f"{fake.api_base}/webhooks/{fake.bot_user.id}/{inv.token}/messages/@original"
        async with http.get(url) as response:
            assert response.status == 404 and (await response.json())["code"] == 10015


def modal_errors(data: Any) -> dict[str, Any]:
    return validate_modal(data).tree


def test_modal_validation_limits() -> None:
    base: dict[str, Any] = RemixModal(None).to_dict()  # type: ignore[arg-type]
    # what discord.py 2.7.1 sends is valid, including "disabled": false on the select
    select = base["components"][1]["component"]
    assert select["disabled"] is False and select["type"] == 3
    assert modal_errors(base) == {}

    def broken(change: Any) -> dict[str, Any]:
        data = json.loads(json.dumps(base))
        change(data)
        return modal_errors(data)

    def label(index: int) -> Any:
        return lambda d: d["components"][index]

    def inner(index: int) -> Any:
        return lambda d: d["components"][index]["component"]

    text, pick, upload = inner(0), inner(1), inner(2)
    cases: list[tuple[Any, list[Any]]] = [
        (lambda d: d.update(title=""), ["data", "title"]),
        (lambda d: d.update(title="x" * 46), ["data", "title"]),
        (lambda d: d.update(components=[]), ["data", "components"]),
        (lambda d: d.update(components=d["components"] * 2), ["data", "components"]),
        (lambda d: d["components"].append({"type": 2, "style": 1, "label": "b", "custom_id": "b"}), [3, "type"]),
        (lambda d: label(0)(d).update(label=""), [0, "label"]),
        (lambda d: label(0)(d).update(label="x" * 46), [0, "label"]),
        (lambda d: label(0)(d).update(description="x" * 101), [0, "description"]),
        (lambda d: text(d).update(min_length=4001), [0, "component", "min_length"]),
        (lambda d: text(d).update(min_length=-1), [0, "component", "min_length"]),
        (lambda d: text(d).update(max_length=0), [0, "component", "max_length"]),
        (lambda d: text(d).update(max_length=4001), [0, "component", "max_length"]),
        (lambda d: pick(d).update(options=[]), [1, "component", "options"]),
        (
            lambda d: pick(d).update(options=[{"label": str(i), "value": str(i)} for i in range(26)]),
            [1, "component", "options"],
        ),
        (lambda d: pick(d)["options"][0].update(label=""), [1, "component", "options", 0, "label"]),
        (lambda d: pick(d)["options"][0].update(label="x" * 101), [1, "component", "options", 0, "label"]),
        (lambda d: pick(d)["options"][1].update(value="x" * 101), [1, "component", "options", 1, "value"]),
        (lambda d: pick(d)["options"][1].update(value=""), [1, "component", "options", 1, "value"]),
        (lambda d: pick(d)["options"][0].update(description="x" * 101), [1, "component", "options", 0, "description"]),
        (lambda d: pick(d).update(placeholder="x" * 151), [1, "component", "placeholder"]),
        (lambda d: pick(d).update(min_values=26, max_values=2), [1, "component", "min_values"]),
        (lambda d: pick(d).update(max_values=0), [1, "component", "max_values"]),
        (lambda d: pick(d).update(max_values=26), [1, "component", "max_values"]),
        (lambda d: pick(d).update(min_values=2, max_values=1), [1, "component", "min_values"]),
        (lambda d: pick(d).update(max_values=3), [1, "component", "max_values"]),  # only 2 options
        (lambda d: pick(d).update(disabled=True), [1, "component", "disabled"]),
        (lambda d: upload(d).update(min_values=11), [2, "component", "min_values"]),
        (lambda d: upload(d).update(max_values=0), [2, "component", "max_values"]),
        (lambda d: upload(d).update(max_values=11), [2, "component", "max_values"]),
        (lambda d: upload(d).update(custom_id=""), [2, "component", "custom_id"]),
        (lambda d: upload(d).update(custom_id="x" * 101), [2, "component", "custom_id"]),
        (lambda d: upload(d).update(custom_id="prompt"), [2, "component", "custom_id"]),  # not unique
    ]
    for change, path in cases:
        errors = broken(change)
        node: Any = errors
        keys = path if path[0] == "data" else ["data", "components", *path]
        for key in keys:
            assert str(key) in node, (keys, errors)
            node = node[str(key)]
        assert node["_errors"], (keys, errors)
    # limits themselves are fine
    for change in (
        lambda d: d.update(title="x" * 45),
        lambda d: label(0)(d).update(label="x" * 45, description="x" * 100),
        lambda d: text(d).update(min_length=0, max_length=4000),
        lambda d: pick(d).update(min_values=0, max_values=2, placeholder="x" * 150),
        lambda d: pick(d).update(
            options=[{"label": "x" * 100, "value": str(i), "description": "d" * 100} for i in range(25)], max_values=25
        ),
        lambda d: upload(d).update(min_values=0, max_values=10),
        lambda d: upload(d).update(min_values=10, max_values=10),
    ):
        assert broken(change) == {}


async def test_bot_modal_refused_with_50035(fake: FakeDiscord, bot: MiniBot) -> None:
    for problem, path in (
        ("title", ["title"]),
        ("disabled", ["components", "1", "component", "disabled"]),
        ("duplicate", ["components", "1", "component", "custom_id"]),
    ):
        bot.results.pop("badform", None)
        inv = await fake.invoke("badform", fake.alice, options={"problem": problem})
        await wait_until(lambda: "badform" in bot.results, what=f"the bot's modal ({problem})")
        assert bot.results["badform"] == (400, 50035)
        assert inv.modal is None and not inv.acknowledged
        refused = await fake.wait_for_request("POST", rf"^/interactions/{inv.id}/.+/callback$", status=400)
        node = refused.response["errors"]["data"]
        for key in path:
            node = node[key]
        assert node["_errors"]


# ================================================================================== tests: faults


async def unanswered_interaction(
    fake: FakeDiscord, bot: MiniBot, **kwargs: Any
) -> tuple[FakeInteraction, discord.Interaction]:
    """Run /noreply (the bot does not answer) and hand back both ends; the test answers it."""
    count = len(bot.results.get("noreply", []))
    inv = await fake.invoke("noreply", fake.alice, **kwargs)
    await wait_until(lambda: len(bot.results.get("noreply", [])) > count, what="the bot to receive /noreply")
    return inv, bot.results["noreply"][count]


async def test_injected_server_errors_and_discord_py_retries(fake: FakeDiscord, bot: MiniBot) -> None:
    inv, interaction = await later_interaction(fake, bot)
    # a 500 on the interaction webhook: discord.py sleeps 1 s and retries, and the retry succeeds
    rule = fake.inject_fault("PATCH", r"^/webhooks/.*/messages/@original$")
    assert (rule.status, rule.times, rule.hits) == (500, 1, 0)
    await interaction.edit_original_response(content="after one retry")
    assert rule.hits == 1 and not rule.active
    edits = [r for r in fake.requests if r.method == "PATCH" and r.path.endswith("/messages/@original")]
    assert [(r.status, r.fault) for r in edits] == [(500, "error"), (200, None)]
    assert edits[0].response == {"message": "500: Internal Server Error", "code": 0}
    assert edits[0].auth == "none" and edits[0].json == {"content": "after one retry", "tts": False}
    assert original(inv).contents == ["", "after one retry"]
    # a 503 on a bot-token route is not retried by discord.py: DiscordServerError at once
    channel = bot.get_channel(int(fake.channel.id))
    assert isinstance(channel, discord.TextChannel)
    start = len(fake.requests)
    fake.inject_fault("POST", rf"^/channels/{fake.channel.id}/messages$", status=503, code=0)
    with pytest.raises(discord.DiscordServerError) as down:
        await channel.send("lost")
    assert down.value.status == 503
    assert [(r.path, r.status) for r in fake.requests[start:]] == [(f"/channels/{fake.channel.id}/messages", 503)]
    await channel.send("delivered")
    assert [m.content for m in fake.find_messages(channel=fake.channel, author=fake.bot_user)][-1] == "delivered"
    # any status and code, on every request until cleared (times=None); the method may be any
    unknown = fake.inject_fault(None, r"^/users/\d+$", status=404, code=10013, times=None, message="Unknown User")
    for _ in range(2):
        with pytest.raises(discord.NotFound) as missing:
            await bot.fetch_user(int(fake.bob.id))
        assert missing.value.code == 10013 and missing.value.text == "Unknown User"
    assert unknown.hits == 2 and unknown.active
    fake.clear_faults()
    assert fake.faults == [] and (await bot.fetch_user(int(fake.bob.id))).name == "bob"


async def test_injected_delay_looks_like_a_timeout_but_the_write_lands(fake: FakeDiscord, bot: MiniBot) -> None:
    inv, interaction = await later_interaction(fake, bot)
    rule = fake.inject_fault("PATCH", r"^/webhooks/.*/messages/@original$", delay=60)
    assert rule.status is None
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(interaction.edit_original_response(content="slow edit"), 0.2)
    assert rule.held == 1 and original(inv).contents == [""]
    rule.release()
    await fake.wait_until(lambda: original(inv).content == "slow edit", what="the held edit to land")
    held = await fake.wait_for_request("PATCH", r"/messages/@original$")
    assert (held.status, held.fault) == (200, "delay")
    # times=1: the next edit is not held
    await interaction.edit_original_response(content="quick edit")
    assert original(inv).contents == ["", "slow edit", "quick edit"]
    async with aiohttp.ClientSession() as http:
        # a hold and then an error; and a "CDN" fault on attachment downloads
        both = fake.inject_fault("GET", r"^/gateway$", delay=60, status=502)

        async def get_gateway() -> tuple[int, Any]:
            async with http.get(f"{fake.api_base}/gateway") as response:
                return response.status, await response.json()

        request = asyncio.create_task(get_gateway())
        await fake.wait_until(lambda: both.held == 1, what="the request to be held")
        fake.clear_faults()
        assert await request == (502, {"message": "502: Bad Gateway", "code": 0})
        assert fake.requests[-1].fault == "delay+error" and both.held == 0
        attachment = fake.upload("ref.png", PNG_1x1)
        fake.inject_fault("GET", r"^/attachments/", status=500)
        async with http.get(attachment.url) as response:
            assert response.status == 500
        async with http.get(attachment.url) as response:
            assert await response.read() == PNG_1x1
    with pytest.raises(ValueError):
        fake.inject_fault("GET", "x", times=0)


async def test_deleted_channel(fake: FakeDiscord, bot: MiniBot) -> None:
    guild = bot.get_guild(int(fake.guild.id))
    art = bot.get_channel(int(fake.art.id))
    assert guild is not None and isinstance(art, discord.TextChannel)
    inv, interaction = await later_interaction(fake, bot, channel=fake.art)
    unanswered, pending = await unanswered_interaction(fake, bot, channel=fake.art)
    sent = await art.send("status")
    await fake.delete_channel(fake.art)
    # discord.py drops it from its cache on CHANNEL_DELETE
    await wait_until(lambda: bot.get_channel(int(fake.art.id)) is None, what="the CHANNEL_DELETE")
    assert guild.get_channel(int(fake.art.id)) is None and fake.channel_deleted(fake.art)
    event = fake.dispatched("CHANNEL_DELETE")[-1]
    assert (event["id"], event["guild_id"], event["type"], event["name"]) == (fake.art.id, fake.guild.id, 0, "art")
    assert fake.art.id not in fake.guild.channels and fake.find_messages(channel=fake.art) == []
    assert original(inv).deleted and fake.messages[str(sent.id)].deleted
    # bot-token routes: 10003 Unknown Channel
    calls: list[Any] = [
        lambda: art.send("again"),
        lambda: sent.edit(content="edited"),
        lambda: sent.add_reaction("🛑"),
        lambda: sent.delete(),
        lambda: art.fetch_message(sent.id),
        lambda: bot.fetch_channel(int(fake.art.id)),
    ]
    for call in calls:
        with pytest.raises(discord.NotFound) as gone:
            await call()
        assert gone.value.code == 10003
    # interaction-token routes: the messages are gone (10008); a new one has nowhere to go (10003)
    for call in (
        lambda: interaction.edit_original_response(content="done"),
        lambda: interaction.original_response(),
        lambda: interaction.delete_original_response(),
    ):
        with pytest.raises(discord.NotFound) as gone:
            await call()
        assert gone.value.code == 10008
    with pytest.raises(discord.NotFound) as nowhere:
        await interaction.followup.send("done")
    assert nowhere.value.code == 10003
    with pytest.raises(discord.NotFound) as no_callback:
        await pending.response.defer()
    assert no_callback.value.code == 10003 and not unanswered.acknowledged
    # Discord sends nothing more from it
    with pytest.raises(DiscordRejected):
        await fake.invoke("later", fake.alice, channel=fake.art)
    with pytest.raises(DiscordRejected):
        await fake.post_user_message(fake.alice, "hello?", channel=fake.art)
    with pytest.raises(KeyError):
        await fake.delete_channel(fake.art)
    with pytest.raises(ValueError):
        await fake.delete_channel(fake.dm_channel(fake.alice))
    # the other channels are untouched
    general = bot.get_channel(int(fake.general.id))
    assert isinstance(general, discord.TextChannel)
    await general.send("still here")


async def test_permissions_taken_away_mid_job(fake: FakeDiscord, bot: MiniBot) -> None:
    guild = bot.get_guild(int(fake.guild.id))
    channel = bot.get_channel(int(fake.channel.id))
    art = bot.get_channel(int(fake.art.id))
    assert guild is not None and isinstance(channel, discord.TextChannel) and isinstance(art, discord.TextChannel)
    inv, interaction = await later_interaction(fake, bot)
    sent = await channel.send("status", embed=discord.Embed(title="Queued"))
    seen = len(fake.dispatch_log)
    await fake.update_bot_permissions(fake.bot_permissions & ~int(Permission.SEND_MESSAGES))
    # @everyone grants Send Messages, and discord.py adds it to the bot's role as Discord does: so the
    # role update comes with a deny overwrite for the bot in every channel, and discord.py agrees
    await wait_until(
        lambda: not channel.permissions_for(guild.me).send_messages and not art.permissions_for(guild.me).send_messages,
        what="the CHANNEL_UPDATEs",
    )
    assert [e.event for e in fake.dispatch_log[seen:]] == ["GUILD_ROLE_UPDATE", "CHANNEL_UPDATE", "CHANNEL_UPDATE"]
    assert fake.general.permission_overwrites[0].to_payload() == {
        "id": fake.bot_user.id,
        "type": 1,
        "allow": "0",
        "deny": str(int(Permission.SEND_MESSAGES)),
    }
    assert int(inv.payload["app_permissions"]) & Permission.SEND_MESSAGES  # computed when it was created
    for target in (channel, art):
        with pytest.raises(discord.Forbidden) as denied:
            await target.send("more")
        assert denied.value.code == 50013
    # its own message can still be edited, but without Send Messages the embed and file permissions
    # are implicitly denied: embeds are dropped, new files refused
    await sent.edit(content="edited", embed=discord.Embed(title="Running"))
    assert fake.messages[str(sent.id)].content == "edited" and fake.messages[str(sent.id)].embeds == []
    with pytest.raises(discord.HTTPException) as empty:
        await sent.edit(content=None, embed=discord.Embed(title="Running"))
    assert (empty.value.status, empty.value.code) == (400, 50006)
    with pytest.raises(discord.Forbidden) as no_files:
        await sent.edit(attachments=[discord.File(io.BytesIO(PNG_1x1), "result.png")])
    assert no_files.value.code == 50013
    # the interaction token needs no channel permission, files and embeds included
    await interaction.edit_original_response(
        content="Done",
        embed=discord.Embed(title="Done"),
        attachments=[discord.File(io.BytesIO(PNG_1x1), "result.png")],
    )
    reply = original(inv)
    assert [a.filename for a in reply.attachments] == ["result.png"] and reply.embeds[0]["title"] == "Done"
    await interaction.followup.send("and a follow-up", file=discord.File(io.BytesIO(PNG_1x1), "more.png"))
    # given back: the denies are lifted too
    await fake.update_bot_permissions(fake.bot_permissions | Permission.SEND_MESSAGES)
    await wait_until(lambda: channel.permissions_for(guild.me).send_messages, what="the restoring CHANNEL_UPDATE")
    assert fake.general.permission_overwrites == [] == fake.art.permission_overwrites
    await channel.send("back", embed=discord.Embed(title="ok"))
    # one channel only: a member overwrite for the bot
    await fake.revoke_bot_permissions(Permission.ATTACH_FILES | Permission.SEND_MESSAGES, channel=fake.art)
    await wait_until(lambda: not art.permissions_for(guild.me).attach_files, what="the art CHANNEL_UPDATE")
    assert channel.permissions_for(guild.me).attach_files
    with pytest.raises(discord.Forbidden):
        await art.send("nope")
    await fake.restore_bot_permissions(Permission.SEND_MESSAGES, channel=fake.art)
    await wait_until(lambda: art.permissions_for(guild.me).send_messages, what="the art CHANNEL_UPDATE")
    await art.send("text only")
    with pytest.raises(discord.Forbidden):
        await art.send(file=discord.File(io.BytesIO(PNG_1x1), "a.png"))
    # what @everyone does not grant goes through the bot's role (GUILD_ROLE_UPDATE), both ways
    await fake.update_bot_permissions(fake.bot_permissions | Permission.MANAGE_MESSAGES)
    await wait_until(lambda: guild.me.guild_permissions.manage_messages, what="the GUILD_ROLE_UPDATE")
    await fake.react(str(sent.id), "👍", fake.alice)
    await sent.remove_reaction("👍", discord.Object(int(fake.alice.id)))
    await fake.update_bot_permissions(fake.bot_permissions & ~int(Permission.MANAGE_MESSAGES))
    await wait_until(lambda: not guild.me.guild_permissions.manage_messages, what="the second GUILD_ROLE_UPDATE")
    await fake.react(str(sent.id), "👍", fake.alice)
    with pytest.raises(discord.Forbidden) as no_manage:
        await sent.remove_reaction("👍", discord.Object(int(fake.alice.id)))
    assert no_manage.value.code == 50013


async def test_channel_overwrites_enforced_per_route(fake: FakeDiscord, bot: MiniBot) -> None:
    guild = bot.get_guild(int(fake.guild.id))
    channel = bot.get_channel(int(fake.channel.id))
    assert guild is not None and isinstance(channel, discord.TextChannel)
    sent = await channel.send("first")
    await fake.react(str(sent.id), "👍", fake.alice)

    async def deny(perm: Permission) -> None:
        await fake.set_permission_overwrite(fake.general, fake.bot_role, deny=perm)
        await wait_until(lambda: not channel.permissions_for(guild.me).value & perm, what=f"denying {perm!r}")

    async def refused(call: Any, code: int = 50013) -> None:
        with pytest.raises(discord.Forbidden) as denied:
            await call()
        assert denied.value.code == code

    await deny(Permission.EMBED_LINKS)
    await refused(lambda: channel.send(embed=discord.Embed(title="x")))
    await channel.send("plain text is fine")
    await deny(Permission.ATTACH_FILES)
    await refused(lambda: channel.send(file=discord.File(io.BytesIO(PNG_1x1), "a.png")))
    await deny(Permission.ADD_REACTIONS)
    await refused(lambda: sent.add_reaction("🛑"))
    await sent.add_reaction("👍")  # an emoji someone already used needs no Add Reactions
    await deny(Permission.READ_MESSAGE_HISTORY)
    await refused(lambda: sent.add_reaction("👀"))
    await refused(lambda: channel.fetch_message(sent.id))
    await refused(lambda: channel.send("a reply", reference=sent))
    assert [m async for m in channel.history(limit=10)] == []  # Discord: "no messages will be returned"
    await channel.send("not a reply: fine")
    await deny(Permission.SEND_MESSAGES)
    await refused(lambda: channel.send("nope"))
    await deny(Permission.VIEW_CHANNEL)
    await refused(lambda: channel.send("nope"), 50001)
    await refused(lambda: sent.edit(content="nope"), 50001)
    await fake.set_permission_overwrite(fake.general, fake.bot_role)
    await wait_until(lambda: channel.permissions_for(guild.me).view_channel, what="the overwrite removed")
    assert len([m async for m in channel.history(limit=10)]) == 3


@pytest.mark.parametrize("fake", [{"compress": True}], indirect=True)
async def test_gateway_outage_refused_then_resumed_with_missed_events(
    fake: FakeDiscord, bot: MiniBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # discord.py waits a random 0-2 s, 0-4 s, ... between refused attempts; keep it short here
    monkeypatch.setattr(discord.backoff.ExponentialBackoff, "delay", lambda self: 0.01)
    session = await fake.wait_identified()
    post = await fake.post_user_message(fake.alice, "before the outage")
    assert await fake.drop_gateway(refuse=True) == 1
    await wait_until(lambda: bot.disconnects >= 1, what="on_disconnect")
    # the bot keeps trying and is refused: the gateway is "down"
    await fake.wait_until(lambda: fake.gateway.refused >= 2, what="refused reconnects")
    assert not session.connected and fake.gateway.connected_sessions() == []
    assert bot.resumes == 0
    # what happens meanwhile is buffered for the session...
    await fake.react(post, "👍", fake.bob)
    # ...but an interaction has no connected client to go to
    with pytest.raises(RuntimeError, match="no connected gateway session"):
        await fake.invoke("shout", fake.alice)
    fake.gateway.refuse(False)
    await fake.wait_until(lambda: session.resumes == 1 and session.connected, what="the RESUME")
    await wait_until(lambda: bot.resumes == 1, what="on_resumed")
    await wait_until(lambda: any(r.user_id == int(fake.bob.id) for r in bot.reactions), what="the missed reaction")
    assert len(fake.identify_payloads) == 1 and fake.gateway.connected_sessions() == [session]
    resume = fake.gateway.resume_payloads[-1]
    assert resume["session_id"] == session.session_id and resume["seq"] < session.seq
    # one session dropped on its own: an immediate RESUME
    assert await fake.gateway.disconnect(session) == 1
    await fake.wait_until(lambda: session.resumes == 2 and session.connected, what="the second RESUME")
    await wait_until(lambda: bot.resumes == 2, what="the second on_resumed")
    inv = await fake.invoke("shout", fake.alice)
    assert (await inv.wait_response())["type"] == 4


async def test_original_of_an_unanswered_and_of_a_deferred_interaction(fake: FakeDiscord, bot: MiniBot) -> None:
    inv, interaction = await unanswered_interaction(fake, bot)
    # never answered: @original is Unknown Webhook, for an edit and a fetch alike
    with pytest.raises(discord.NotFound) as unknown:
        await interaction.edit_original_response(content="too early")
    assert unknown.value.code == 10015
    with pytest.raises(discord.NotFound) as unknown:
        await interaction.original_response()
    assert unknown.value.code == 10015
    refused = await fake.wait_for_request("GET", r"^/webhooks/.+/messages/@original$")
    assert refused.status == 404 and refused.response == {"message": "Unknown Webhook", "code": 10015}
    # after a defer, GET @original is the "thinking" message with its id
    callback = await interaction.response.defer()
    assert callback is not None
    message = await interaction.original_response()
    assert message.id == callback.message_id == int(original(inv).id)
    assert message.flags.loading and message.content == "" and not message.flags.ephemeral
    fetched = await fake.wait_for_request("GET", r"^/webhooks/.+/messages/@original$", status=200)
    assert fetched.response["id"] == original(inv).id and fetched.response["flags"] & MessageFlag.LOADING
    # the same for a private defer
    private, deferred = await later_interaction(fake, bot, private=True)
    loading = await deferred.original_response()
    assert loading.id == int(original(private).id) and loading.flags.loading and loading.flags.ephemeral
