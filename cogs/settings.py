"""``/settings``: the server controls admins (Manage Server) set, all answered privately.

- ``/settings show``: everything below, and the server's default daily limit.
- ``/settings limit role|member|remove``: daily allowances of roles and of single members. A member's
  own allowance wins over their roles; the highest allowance among their roles replaces the server's
  default (``/quota set user_daily``); 0 means no limit (as in ``/quota set``).
- ``/settings block|unblock``: a blocked member can't make images in the server at all.
- ``/settings 4k access|add|remove``: 4K for everyone, for listed roles only, or for nobody.
- ``/settings words add|remove|list``: blocked words and phrases (case- and accent-insensitive, whole
  words), checked before anything is reserved or submitted.
- ``/settings log-channel``: where refusals and failures worth an admin's attention are posted.

The log channel is fed through :class:`AdminLog`, a bounded queue with one worker: nobody waits on
it, and a channel the bot can't post in costs a warning in the bot's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import quota
from bot.i18n import Texts
from bot.models import FourKAccess, JobRecord, RoleLimit, ServerControls

if TYPE_CHECKING:
    from bot.app import ImagineBot

log = logging.getLogger(__name__)

Interaction = discord.Interaction["ImagineBot"]
NO_PINGS = discord.AllowedMentions.none()
SHOWN = 20  # entries of each list shown by /settings show
FIELD_MAX = 1024  # characters in an embed field's value
MESSAGE_MAX = 2000


def daily_text(t: Texts, daily: int | None) -> str:
    return t("controls-no-limit") if daily is None else t("controls-per-day", count=daily)


def member_ref(user_id: int) -> str:
    return f"<@{user_id}>"


def role_ref(role_id: int) -> str:
    return f"<@&{role_id}>"


def split_words(text: str) -> list[str]:
    """Entries separated by commas, trimmed, empty ones left out."""
    return [part.strip() for part in text.split(",") if part.strip()]


def _lines(t: Texts, lines: list[str], total: int) -> str:
    """Lines for an embed field: as many as fit, and how many more there are."""
    if not lines:
        return t("controls-show-none")
    shown: list[str] = []
    for line in lines:
        more = t("controls-show-more", count=total - len(shown) - 1)
        if len("\n".join([*shown, line, more])) > FIELD_MAX:
            break
        shown.append(line)
    if total > len(shown):
        shown.append(t("controls-show-more", count=total - len(shown)))
    return "\n".join(shown)


class AdminLog:
    """Posts short lines to a server's log channel without holding anyone up.

    ``post`` only queues (a full queue drops the line with a warning); one worker sends them in
    order. The same event (``key``) is posted at most once per ``repeat_window`` seconds, so a
    member who keeps trying, or an outage failing many jobs, does not flood the channel.
    """

    def __init__(
        self,
        bot: ImagineBot,
        *,
        size: int = 100,
        repeat_window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bot = bot
        self._queue: asyncio.Queue[tuple[int, int, str]] = asyncio.Queue(maxsize=size)
        self._repeat_window = repeat_window
        self._clock = clock
        self._recent: dict[tuple[Any, ...], float] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="admin-log")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def post(self, guild_id: int, channel_id: int | None, text: str, *, key: tuple[Any, ...] | None = None) -> None:
        """Queue ``text`` for the log channel ``channel_id`` of a server (nothing when it has none)."""
        if channel_id is None:
            return
        if key is not None:
            now = self._clock()
            for stale in [k for k, at in self._recent.items() if now - at >= self._repeat_window]:
                del self._recent[stale]
            if (guild_id, *key) in self._recent:
                return
            self._recent[(guild_id, *key)] = now
        try:
            self._queue.put_nowait((guild_id, channel_id, text))
        except asyncio.QueueFull:
            log.warning("the log channel queue is full; a line for server %d was dropped", guild_id)

    async def _run(self) -> None:
        while True:
            guild_id, channel_id, text = await self._queue.get()
            try:
                channel = self._bot.get_partial_messageable(channel_id, guild_id=guild_id)
                await channel.send(text, allowed_mentions=NO_PINGS)
            except discord.HTTPException as exc:
                log.warning("could not post in the log channel %d of server %d: %s", channel_id, guild_id, exc)
            except Exception:
                log.exception("posting in the log channel %d of server %d failed", channel_id, guild_id)


class ServerSettings(commands.Cog):
    """The ``/settings`` commands, the log channel, and the clean-up of deleted roles."""

    # How often failed jobs are looked for, to post them in the log channels (seconds).
    FAILURE_SCAN_INTERVAL = 10.0
    # Failures members caused themselves (a reference that is not an image), not worth a line.
    QUIET_FAILURES = frozenset({"refused"})

    settings = app_commands.Group(
        name="settings",
        description="Server controls: role and member limits, blocks, 4K, blocked words, log channel",
        default_permissions=discord.Permissions(manage_guild=True),
        guild_only=True,
    )
    limit = app_commands.Group(name="limit", description="Daily limits of roles and members", parent=settings)
    four_k = app_commands.Group(name="4k", description="Who may make 4K images", parent=settings)
    words = app_commands.Group(name="words", description="Words and phrases prompts may not contain", parent=settings)

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot
        self.admin_log = AdminLog(bot)
        self._watcher: asyncio.Task[None] | None = None
        self._rescan = asyncio.Event()

    async def cog_load(self) -> None:
        self.admin_log.start()
        self._watcher = asyncio.create_task(self._watch_failures(), name="failed-jobs-to-log")

    async def cog_unload(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self.admin_log.close()

    # -- the log channel ------------------------------------------------------------------------

    def rescan(self) -> None:
        """Look for failed jobs now rather than at the next interval."""
        self._rescan.set()

    async def _watch_failures(self) -> None:
        """Post each job that fails from now on in its server's log channel (if it has one)."""
        cursor = (self.bot.clock(), 0)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._rescan.wait(), self.FAILURE_SCAN_INTERVAL)
            self._rescan.clear()
            try:
                failed = await self.bot.store.failed_jobs_to_log(after=cursor, limit=100)
            except Exception as exc:
                log.warning("could not look for failed jobs to log: %s", exc)
                continue
            for job, channel_id in failed:
                cursor = (job.finished_at or cursor[0], job.id)
                if job.guild_id is not None and job.error_type not in self.QUIET_FAILURES:
                    line = self.failure_line(self.bot.job_texts(job, server=True), job)
                    self.admin_log.post(job.guild_id, channel_id, line, key=("failed", job.error_type))

    @staticmethod
    def failure_line(t: Texts, job: JobRecord) -> str:
        """The log channel's line for a failed job, in the server's language (the reason is its code)."""
        return t(
            "controls-log-failed",
            job=str(job.id),
            member=member_ref(job.user_id),
            channel=f"<#{job.channel_id}>",
            reason=f"`{job.error_type or 'unknown'}`",
        )

    @commands.Cog.listener()
    async def on_guild_role_delete(self, role: discord.Role) -> None:
        removed = await self.bot.store.forget_roles(role.guild.id, [role.id])
        if removed:
            log.info("role %d of server %d was deleted: its limit and 4K access are gone", role.id, role.guild.id)

    # -- checks -----------------------------------------------------------------------------------

    async def _is_manager(self, interaction: Interaction) -> bool:
        """Discord's permission hint can be overridden in the server's settings, so check again here."""
        t = self.bot.texts(interaction)
        if interaction.guild_id is None:
            await self._say(interaction, t("controls-guild-only"))
            return False
        if interaction.permissions.manage_guild:
            return True
        await self._say(interaction, t("controls-not-manager"))
        return False

    @staticmethod
    async def _say(interaction: Interaction, text: str) -> None:
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_PINGS)

    async def _usable_role(self, interaction: Interaction, role: discord.Role, *, everyone: str) -> bool:
        """A role that still exists in the server and is not @everyone (else the admin is told why,
        for @everyone with the message ``everyone``)."""
        t = self.bot.texts(interaction)
        if role.is_default():
            await self._say(interaction, t(everyone))
            return False
        guild = interaction.guild
        if guild is None or guild.get_role(role.id) is None:
            await self._say(interaction, t("controls-role-gone"))
            return False
        return True

    async def _valid_daily(self, interaction: Interaction, daily: int) -> bool:
        # Discord enforces the option's range, but a modified client can send anything.
        if 0 <= daily <= quota.MAX_DAILY:
            return True
        await self._say(interaction, self.bot.texts(interaction)("controls-daily-range", max=quota.MAX_DAILY))
        return False

    # -- /settings show ---------------------------------------------------------------------------

    @settings.command(name="show", description="Show role and member limits, blocks, 4K, blocked words, log channel")
    async def show(self, interaction: Interaction) -> None:
        if not await self._is_manager(interaction):
            return
        assert interaction.guild_id is not None
        t = self.bot.texts(interaction)
        guild_id = interaction.guild_id
        store = self.bot.store
        controls = await store.server_controls(guild_id)
        controls = await self._forget_deleted_roles(interaction, controls.role_limits, controls.four_k_roles)
        defaults = await store.get_quota(guild_id)
        member_limits = await store.member_limits(guild_id, limit=SHOWN + 1)
        blocks = await store.blocked_members(guild_id, limit=SHOWN + 1)

        embed = discord.Embed(title=t("controls-show-title"), colour=discord.Colour.blurple())
        embed.add_field(name=t("controls-show-default"), value=daily_text(t, defaults.user_daily), inline=False)
        roles = sorted(controls.role_limits, key=lambda r: (r.daily is not None, -(r.daily or 0), r.role_id))
        embed.add_field(
            name=t("controls-show-roles"),
            value=_lines(
                t, [self._by(t, f"{role_ref(r.role_id)}: {daily_text(t, r.daily)}", r) for r in roles], len(roles)
            ),
            inline=False,
        )
        embed.add_field(
            name=t("controls-show-members"),
            value=_lines(
                t,
                [self._by(t, f"{member_ref(m.user_id)}: {daily_text(t, m.daily)}", m) for m in member_limits[:SHOWN]],
                len(member_limits),
            ),
            inline=False,
        )
        embed.add_field(
            name=t("controls-show-blocked"),
            value=_lines(t, [self._by(t, member_ref(b.user_id), b) for b in blocks[:SHOWN]], len(blocks)),
            inline=False,
        )
        embed.add_field(name=t("controls-show-4k"), value=self._four_k_text(t, controls.four_k, controls.four_k_roles))
        words = len(controls.blocked_words)
        embed.add_field(
            name=t("controls-show-words"),
            value=t("controls-show-words-count", count=words) if words else t("controls-show-none"),
        )
        channel = controls.log_channel_id
        embed.add_field(name=t("controls-show-log"), value=f"<#{channel}>" if channel else t("controls-show-none"))
        embed.set_footer(text=t("controls-show-footer"))
        await interaction.response.send_message(embed=embed, ephemeral=True, allowed_mentions=NO_PINGS)

    @staticmethod
    def _by(t: Texts, what: str, entry: Any) -> str:
        return t("controls-show-by", what=what, by=member_ref(entry.set_by), at=str(int(entry.set_at)))

    @staticmethod
    def _four_k_text(t: Texts, access: FourKAccess, roles: tuple[int, ...]) -> str:
        if access is FourKAccess.EVERYONE:
            return t("controls-4k-everyone")
        if access is FourKAccess.OFF:
            return t("controls-4k-off")
        if not roles:
            return t("controls-4k-roles-none")
        return t("controls-4k-roles", roles=", ".join(role_ref(r) for r in roles))

    async def _forget_deleted_roles(
        self, interaction: Interaction, role_limits: tuple[RoleLimit, ...], four_k_roles: tuple[int, ...]
    ) -> ServerControls:
        """Drop roles the server no longer has (deleted while the bot was away) and read the controls again."""
        guild = interaction.guild
        assert interaction.guild_id is not None
        if guild is not None:
            gone = [r for r in [*(limit.role_id for limit in role_limits), *four_k_roles] if guild.get_role(r) is None]
            if gone:
                await self.bot.store.forget_roles(interaction.guild_id, gone)
        return await self.bot.store.server_controls(interaction.guild_id)

    # -- /settings limit ----------------------------------------------------------------------------

    @limit.command(name="role", description="Daily limit for members with a role (the highest of their roles counts)")
    @app_commands.describe(role="The role", daily="Images per UTC day for members with this role (0 = no limit)")
    async def limit_role(
        self, interaction: Interaction, role: discord.Role, daily: app_commands.Range[int, 0, quota.MAX_DAILY]
    ) -> None:
        if not await self._is_manager(interaction):
            return
        if not await self._valid_daily(interaction, daily):
            return
        if not await self._usable_role(interaction, role, everyone="controls-role-everyone"):
            return
        assert interaction.guild_id is not None
        t = self.bot.texts(interaction)
        value = daily or None
        await self.bot.store.set_role_limit(
            interaction.guild_id, role.id, value, by=interaction.user.id, now=self.bot.clock()
        )
        await self._say(interaction, t("controls-role-limit-set", role=role.mention, daily=daily_text(t, value)))

    @limit.command(name="member", description="Daily limit for one member, whatever their roles")
    @app_commands.describe(member="The member", daily="Images per UTC day for this member (0 = no limit)")
    async def limit_member(
        self,
        interaction: Interaction,
        member: discord.Member | discord.User,
        daily: app_commands.Range[int, 0, quota.MAX_DAILY],
    ) -> None:
        if not await self._is_manager(interaction):
            return
        if not await self._valid_daily(interaction, daily):
            return
        assert interaction.guild_id is not None
        t = self.bot.texts(interaction)
        value = daily or None
        await self.bot.store.set_member_limit(
            interaction.guild_id, member.id, value, by=interaction.user.id, now=self.bot.clock()
        )
        await self._say(interaction, t("controls-member-limit-set", member=member.mention, daily=daily_text(t, value)))

    @limit.command(name="remove", description="Remove the limit of a role or of a member")
    @app_commands.describe(role="The role whose limit to remove", member="The member whose limit to remove")
    async def limit_remove(
        self,
        interaction: Interaction,
        role: discord.Role | None = None,
        member: discord.Member | discord.User | None = None,
    ) -> None:
        if not await self._is_manager(interaction):
            return
        t = self.bot.texts(interaction)
        if role is None and member is None:
            await self._say(interaction, t("controls-remove-what"))
            return
        assert interaction.guild_id is not None
        answers = []
        if role is not None:
            removed = await self.bot.store.remove_role_limit(interaction.guild_id, role.id)
            key = "controls-role-limit-removed" if removed else "controls-role-limit-absent"
            answers.append(t(key, role=role.mention))
        if member is not None:
            removed = await self.bot.store.remove_member_limit(interaction.guild_id, member.id)
            key = "controls-member-limit-removed" if removed else "controls-member-limit-absent"
            answers.append(t(key, member=member.mention))
        await self._say(interaction, "\n".join(answers))

    # -- /settings block, unblock ---------------------------------------------------------------------

    @settings.command(name="block", description="Stop a member from making images in this server")
    @app_commands.describe(member="The member to block")
    async def block(self, interaction: Interaction, member: discord.Member | discord.User) -> None:
        if not await self._is_manager(interaction):
            return
        assert interaction.guild_id is not None
        added = await self.bot.store.block_member(
            interaction.guild_id, member.id, by=interaction.user.id, now=self.bot.clock()
        )
        key = "controls-blocked" if added else "controls-already-blocked"
        await self._say(interaction, self.bot.texts(interaction)(key, member=member.mention))

    @settings.command(name="unblock", description="Let a blocked member make images again")
    @app_commands.describe(member="The member to unblock")
    async def unblock(self, interaction: Interaction, member: discord.Member | discord.User) -> None:
        if not await self._is_manager(interaction):
            return
        assert interaction.guild_id is not None
        removed = await self.bot.store.unblock_member(interaction.guild_id, member.id)
        key = "controls-unblocked" if removed else "controls-not-blocked"
        await self._say(interaction, self.bot.texts(interaction)(key, member=member.mention))

    # -- /settings 4k ---------------------------------------------------------------------------------

    @four_k.command(name="access", description="Who may make 4K images in this server")
    @app_commands.describe(who="Everyone, only the listed roles (/settings 4k add), or nobody")
    @app_commands.choices(
        who=[
            app_commands.Choice(name="Everyone", value=FourKAccess.EVERYONE.value),
            app_commands.Choice(name="Only the listed roles", value=FourKAccess.ROLES.value),
            app_commands.Choice(name="Nobody (4K off)", value=FourKAccess.OFF.value),
        ]
    )
    async def four_k_access(self, interaction: Interaction, who: app_commands.Choice[str]) -> None:
        if not await self._is_manager(interaction):
            return
        assert interaction.guild_id is not None
        t = self.bot.texts(interaction)
        try:
            access = FourKAccess(who.value)
        except ValueError:  # a modified client
            await self._say(interaction, t("controls-4k-unknown"))
            return
        await self.bot.store.set_four_k(interaction.guild_id, access, by=interaction.user.id, now=self.bot.clock())
        controls = await self.bot.store.server_controls(interaction.guild_id)
        await self._say(interaction, self._four_k_text(t, controls.four_k, controls.four_k_roles))

    @four_k.command(name="add", description="Let a role make 4K images (4K then is for the listed roles only)")
    @app_commands.describe(role="The role that may use 4K")
    async def four_k_add(self, interaction: Interaction, role: discord.Role) -> None:
        if not await self._is_manager(interaction):
            return
        if not await self._usable_role(interaction, role, everyone="controls-role-everyone-4k"):
            return
        assert interaction.guild_id is not None
        t = self.bot.texts(interaction)
        access = await self.bot.store.add_four_k_role(
            interaction.guild_id, role.id, by=interaction.user.id, now=self.bot.clock()
        )
        if access is FourKAccess.OFF:
            await self._say(interaction, t("controls-4k-role-added-off", role=role.mention))
            return
        controls = await self.bot.store.server_controls(interaction.guild_id)
        await self._say(interaction, self._four_k_text(t, controls.four_k, controls.four_k_roles))

    @four_k.command(name="remove", description="Take 4K away from a listed role")
    @app_commands.describe(role="The role")
    async def four_k_remove(self, interaction: Interaction, role: discord.Role) -> None:
        if not await self._is_manager(interaction):
            return
        assert interaction.guild_id is not None
        t = self.bot.texts(interaction)
        if not await self.bot.store.remove_four_k_role(interaction.guild_id, role.id):
            await self._say(interaction, t("controls-4k-role-absent", role=role.mention))
            return
        controls = await self.bot.store.server_controls(interaction.guild_id)
        await self._say(interaction, self._four_k_text(t, controls.four_k, controls.four_k_roles))

    # -- /settings words ---------------------------------------------------------------------------------

    async def _entries(self, interaction: Interaction, text: str) -> list[str] | None:
        """The comma-separated entries of ``text``, or ``None`` (and the admin told why) if one is unusable."""
        t = self.bot.texts(interaction)
        entries = split_words(text)
        if not entries:
            await self._say(interaction, t("controls-words-empty"))
            return None
        for entry in entries:
            if len(entry) > quota.MAX_BLOCKED_WORD_CHARS:
                await self._say(
                    interaction, t("controls-word-too-long", max=quota.MAX_BLOCKED_WORD_CHARS, length=len(entry))
                )
                return None
            if not quota.phrase_key(entry):
                await self._say(interaction, t("controls-word-no-letters"))
                return None
        return entries

    @words.command(name="add", description="Block words or phrases in prompts (case and accents don't matter)")
    @app_commands.describe(words="Words or phrases, separated by commas (each matches whole words only)")
    async def words_add(self, interaction: Interaction, words: app_commands.Range[str, 1, 2000]) -> None:
        if not await self._is_manager(interaction):
            return
        assert interaction.guild_id is not None
        entries = await self._entries(interaction, words)
        if entries is None:
            return
        result = await self.bot.store.add_blocked_words(
            interaction.guild_id,
            entries,
            by=interaction.user.id,
            now=self.bot.clock(),
            max_words=quota.MAX_BLOCKED_WORDS,
        )
        t = self.bot.texts(interaction)
        if result is None:
            count = len((await self.bot.store.server_controls(interaction.guild_id)).blocked_words)
            adding = len({quota.phrase_key(e) for e in entries})
            await self._say(
                interaction, t("controls-words-full", max=quota.MAX_BLOCKED_WORDS, count=count, adding=adding)
            )
            return
        await self._say(
            interaction,
            t("controls-words-added", added=len(result.added), present=len(result.present), total=result.total),
        )

    @words.command(name="remove", description="Unblock words or phrases")
    @app_commands.describe(words="Words or phrases, separated by commas")
    async def words_remove(self, interaction: Interaction, words: app_commands.Range[str, 1, 2000]) -> None:
        if not await self._is_manager(interaction):
            return
        assert interaction.guild_id is not None
        entries = await self._entries(interaction, words)
        if entries is None:
            return
        t = self.bot.texts(interaction)
        removed = await self.bot.store.remove_blocked_words(interaction.guild_id, entries)
        if not removed:
            await self._say(interaction, t("controls-words-none-removed"))
            return
        total = len((await self.bot.store.server_controls(interaction.guild_id)).blocked_words)
        await self._say(interaction, t("controls-words-removed", removed=len(removed), total=total))

    @words.command(name="list", description="Show the blocked words and phrases (only to you)")
    async def words_list(self, interaction: Interaction) -> None:
        if not await self._is_manager(interaction):
            return
        assert interaction.guild_id is not None
        t = self.bot.texts(interaction)
        words = (await self.bot.store.server_controls(interaction.guild_id)).blocked_words
        if not words:
            await self._say(interaction, t("controls-words-list-empty"))
            return
        lines = "\n".join(f"• {discord.utils.escape_markdown(w)}" for w in words)
        text = t("controls-words-list", count=len(words)) + "\n" + lines  # a placeable holds at most 1,000 characters
        if len(text) <= MESSAGE_MAX:
            await self._say(interaction, text)
            return
        listing = discord.File(io.BytesIO("\n".join(words).encode()), filename="blocked-words.txt")
        await interaction.response.send_message(
            t("controls-words-list-file", count=len(words)), file=listing, ephemeral=True, allowed_mentions=NO_PINGS
        )

    # -- /settings log-channel ---------------------------------------------------------------------------

    @settings.command(name="log-channel", description="Where refusals and failures are posted for admins")
    @app_commands.describe(channel="The channel (leave out to stop posting them)")
    async def log_channel(self, interaction: Interaction, channel: discord.TextChannel | None = None) -> None:
        if not await self._is_manager(interaction):
            return
        assert interaction.guild_id is not None
        t = self.bot.texts(interaction)
        if channel is not None:
            me = channel.guild.me
            perms = channel.permissions_for(me) if me is not None else None
            if perms is not None and not (perms.view_channel and perms.send_messages):
                await self._say(interaction, t("controls-log-channel-no-access", channel=channel.mention))
                return
        await self.bot.store.set_log_channel(
            interaction.guild_id,
            channel.id if channel is not None else None,
            by=interaction.user.id,
            now=self.bot.clock(),
        )
        if channel is None:
            await self._say(interaction, t("controls-log-channel-off"))
        else:
            await self._say(interaction, t("controls-log-channel-set", channel=channel.mention))


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(ServerSettings(bot))
