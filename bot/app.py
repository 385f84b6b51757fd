"""The Discord client: wiring and lifecycle only. Commands live in ``cogs/``."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.ext import commands

from bot.config import Settings
from bot.i18n import Catalog, Texts
from bot.invite import invite_url
from bot.metrics import Metrics
from bot.models import JobRecord
from bot.queue import QueueClient
from bot.storage import Store
from bot.tracker import JobTracker
from cogs._reply import ReplyPresenter
from cogs._translate import CommandTranslator

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.imagine", "cogs.cancel", "cogs.quota", "cogs.followups", "cogs.history", "cogs.settings")


def configure_discord_endpoints(settings: Settings) -> None:
    """Send discord.py's REST and gateway traffic where the settings say (a proxy, or a local fake).

    discord.py keeps both base URLs as class attributes, so this is the one place they are set.
    """
    if settings.discord_api_base_url:
        discord.http.Route.BASE = settings.discord_api_base_url
    if settings.discord_gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


async def tell_privately(interaction: discord.Interaction[Any], text: str) -> None:
    """Answer only the member who acted, whatever state the interaction's response is in."""
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(text, ephemeral=True)
            return
        if interaction.response.type is discord.InteractionResponseType.deferred_channel_message:
            # A public "thinking…" reply. The first follow-up would replace it (and turn public), so
            # end the loading state with a neutral note, answer privately, then withdraw the note.
            client = interaction.client
            note = client.texts(interaction)("request-not-accepted") if isinstance(client, ImagineBot) else "…"
            await interaction.edit_original_response(content=note, embed=None)
            await interaction.followup.send(text, ephemeral=True)
            with contextlib.suppress(discord.HTTPException):
                await interaction.delete_original_response()
            return
        await interaction.followup.send(text, ephemeral=True)
    except discord.HTTPException:
        log.debug("could not answer the member privately")


UNKNOWN_INTERACTION = 10062  # Discord's code for an interaction answered after its 3 s


class ImagineTree(app_commands.CommandTree["ImagineBot"]):
    """Turns any unexpected command error into a short private message instead of silence."""

    async def on_error(self, interaction: discord.Interaction[ImagineBot], error: app_commands.AppCommandError) -> None:
        t = interaction.client.texts(interaction)
        if isinstance(error, app_commands.NoPrivateMessage):
            text = t("imagine-guild-only")
        elif isinstance(error, app_commands.CheckFailure):
            text = t("command-not-here")
        elif (
            isinstance(cause := getattr(error, "original", None), discord.NotFound)
            and cause.code == UNKNOWN_INTERACTION
        ):
            # Answered too late (Discord allows 3 s): the member saw "The application did not respond".
            # There is nobody left to tell; one line, not a traceback per command, when overloaded.
            log.warning(
                "command %s was not answered within Discord's 3 seconds; the bot may be overloaded",
                interaction.command and interaction.command.name,
            )
            return
        else:
            log.error("command %s failed", interaction.command and interaction.command.name, exc_info=error)
            text = t("unexpected-error")
        await tell_privately(interaction, text)


def gateway_intents() -> discord.Intents:
    """The gateway events the bot needs: servers and their roles (``guilds``) and reactions
    (``guild_reactions``: cancel by ❌). Interactions arrive without any intent. Leaving out message
    events spares the bot every message of a busy server, its own edits included, which it would
    otherwise receive and parse only to drop them."""
    return discord.Intents(guilds=True, guild_reactions=True)


class ImagineBot(commands.Bot):
    """Holds the shared services; cogs reach them through these typed attributes."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        queue: QueueClient,
        tracker: JobTracker,
        session: aiohttp.ClientSession,
        clock: Callable[[], float] = time.time,
        guild_ready_timeout: float = 2.0,
        sync_commands: bool = True,
        force_sync: bool = False,
        metrics: Metrics | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        extra: dict[str, Any] = {}
        if isinstance(self, commands.AutoShardedBot):
            count, ids = settings.shards
            extra.update(shard_count=count, shard_ids=list(ids))
        if metrics is not None:
            extra["http_trace"] = metrics.discord_trace_config()  # counts Discord REST calls and 429s
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=gateway_intents(),
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            chunk_guilds_at_startup=False,
            guild_ready_timeout=guild_ready_timeout,
            tree_cls=ImagineTree,
            # Servers only: cancel by reaction, late edits and quotas all need the bot in the server.
            allowed_contexts=app_commands.AppCommandContext(guild=True, dm_channel=False, private_channel=False),
            allowed_installs=app_commands.AppInstallationType(guild=True, user=False),
            **extra,
        )
        self.metrics = metrics
        self.catalog = catalog or Catalog()
        self.settings = settings
        # Shows every job's state in its reply. Never edit one reply more often than the elapsed-time
        # refresh (and never more than once a second).
        self.presenter = ReplyPresenter(self, min_edit_gap=settings.status_edit_interval)
        self.store = store
        self.queue = queue
        self.tracker = tracker
        self.session = session
        self.clock = clock
        self._sync_commands = sync_commands
        self._force_sync = force_sync
        self.logged_in = False

    async def setup_hook(self) -> None:
        self.logged_in = True  # discord.py runs this right after a successful login
        if self.application_id is not None:
            log.info(
                "invite link (bot and commands, exactly the permissions used): %s", invite_url(self.application_id)
            )
        await self.tree.set_translator(CommandTranslator(self.catalog))
        for name in EXTENSIONS:
            await self.load_extension(name)
        self.tracker.attach(self.presenter)
        # Resume first: unfinished jobs must not wait on (or die with) a command sync.
        await self.tracker.resume()
        if self._sync_commands and not (self._force_sync or self.registers_commands):
            log.info("commands are registered by the process that runs shard 0; not syncing here")
        elif self._sync_commands:
            try:
                await self._sync()
            except discord.HTTPException as exc:
                log.error("could not register the commands with Discord (will retry at the next start): %s", exc)

    async def _sync(self) -> None:
        """Register the commands with Discord, but only when they changed since the last sync
        (Discord limits command writes per day; ``python -m bot --sync-commands`` forces one)."""
        guild = discord.Object(id=self.settings.dev_guild_id) if self.settings.dev_guild_id is not None else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        # The digest covers the translated names too: a catalog change is a change to sync.
        translator = self.tree.translator
        payload = [
            await command.get_translated_payload(self.tree, translator)
            if translator is not None
            else command.to_dict(self.tree)
            for command in self.tree.get_commands(guild=guild)
        ]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
        key = f"commands:{self.application_id}:{guild.id if guild else 'global'}"
        if not self._force_sync and await self.store.get_meta(key) == digest:
            log.info("commands unchanged since the last sync; not syncing")
            return
        synced = await self.tree.sync(guild=guild)
        await self.store.set_meta(key, digest)
        where = f"server {guild.id}" if guild else "all servers (global)"
        log.info("synced %d command(s) to %s", len(synced), where)

    @property
    def registers_commands(self) -> bool:
        """Whether this process registers the commands: the one that runs shard 0 (the only process
        when unsharded), so several processes never write them at once."""
        return 0 in self.settings.shards[1]

    def texts(self, interaction: discord.Interaction[Any]) -> Texts:
        """The catalog in the language of the member who acted."""
        return self.catalog.bind(interaction.locale.value)

    def job_texts(self, job: JobRecord, *, server: bool = False) -> Texts:
        """The catalog in a job's requester's language (``server``: its server's, for a message no
        interaction started)."""
        return self.catalog.bind(job.guild_locale if server else job.locale)

    @property
    def gateway_connected(self) -> bool:
        """Logged in, READY, and the gateway's websocket open (for the health check)."""
        ws = self.ws
        return self.is_ready() and not self.is_closed() and ws is not None and ws.open

    async def on_ready(self) -> None:
        log.info("ready as %s in %d server(s)", self.user, len(self.guilds))

    async def close(self) -> None:
        # Stop background work before the resources it uses go away.
        await self.tracker.close()
        await self.presenter.close()
        await super().close()


class ShardedImagineBot(ImagineBot, commands.AutoShardedBot):
    """The same bot connected as some shards of a sharded bot (``SHARD_COUNT`` and ``SHARD_IDS``):
    one gateway session per shard it runs, each receiving the events of that shard's servers."""

    @property
    def gateway_connected(self) -> bool:
        """Every shard of this process is connected (and all were READY once)."""
        shards = self.shards
        return (
            self.is_ready()
            and not self.is_closed()
            and set(shards) == set(self.settings.shards[1])
            and not any(shard.is_closed() for shard in shards.values())
        )

    async def on_ready(self) -> None:
        count, ids = self.settings.shards
        listed = ", ".join(map(str, ids))
        log.info("ready as %s in %d server(s), shard(s) %s of %d", self.user, len(self.guilds), listed, count)


def create_bot(settings: Settings, **services: Any) -> ImagineBot:
    """The bot the settings ask for: sharded when ``SHARD_COUNT`` is set, else one plain connection."""
    cls = ShardedImagineBot if settings.sharded else ImagineBot
    return cls(settings=settings, **services)
