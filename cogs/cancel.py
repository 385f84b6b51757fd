"""Cancelling: the Cancel button or a ❌ reaction on the job's reply, or ``/cancel``.

The same rule applies to all three: the member who asked for the image may cancel it, and so may
anyone with Manage Messages in its channel.
"""

from __future__ import annotations

import contextlib
import logging
import re
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.events import CancelResult
from bot.models import JobRecord
from cogs import _render

if TYPE_CHECKING:
    from bot.app import ImagineBot

log = logging.getLogger(__name__)

Interaction = discord.Interaction["ImagineBot"]

RESULT_KEYS = {
    CancelResult.REQUESTED: "cancel-requested",
    CancelResult.ALREADY_REQUESTED: "cancel-already-requested",
    CancelResult.NOT_ACTIVE: "cancel-not-active",
    CancelResult.TOO_LATE: "cancel-too-late",
    CancelResult.FAILED: "cancel-failed",
}


class CancelButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=_render.CANCEL_BUTTON_PATTERN):
    """The Cancel button under a running job's reply; the job travels in its custom id, so it works
    after restarts and keeps nothing in memory."""

    def __init__(self, job_id: int) -> None:
        super().__init__(discord.ui.Button(custom_id=_render.CANCEL_BUTTON_ID.format(job_id=job_id)))
        self.job_id = job_id

    @classmethod
    async def from_custom_id(  # type: ignore[override]
        cls, interaction: Interaction, item: discord.ui.Button[discord.ui.View], match: re.Match[str]
    ) -> CancelButton:
        return cls(int(match["job_id"]))

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        bot = interaction.client
        t = bot.texts(interaction)
        job = await bot.store.get_job(self.job_id)
        if job is None or job.guild_id != interaction.guild_id:
            await interaction.response.send_message(t("cancel-unknown"), ephemeral=True)
            return
        if interaction.user.id != job.user_id and not interaction.permissions.manage_messages:
            await interaction.response.send_message(t("cancel-not-yours"), ephemeral=True)
            return
        # The upstream cancel may take longer than Discord's 3 seconds: answer first, privately.
        await interaction.response.defer(ephemeral=True, thinking=True)
        result = await bot.tracker.cancel(job.id, user_id=interaction.user.id)
        log.info("job %d: cancel by button from %d: %s", job.id, interaction.user.id, result.value)
        await interaction.followup.send(t(RESULT_KEYS[result], job="none"), ephemeral=True)


class Cancel(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(CancelButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(CancelButton)

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        me = self.bot.user
        if me is None or payload.user_id == me.id or str(payload.emoji) != _render.CANCEL_EMOJI:
            return
        if payload.message_author_id is not None and payload.message_author_id != me.id:
            return
        job = await self.bot.store.job_by_message(payload.message_id)
        if job is None or job.status.is_terminal:
            return
        if not self._may_cancel(job, payload):
            # A stranger's ❌ does nothing; tidy it away when we are allowed to.
            await self._remove_reaction(payload)
            return
        result = await self.bot.tracker.cancel(job.id, user_id=payload.user_id)
        log.info("job %d: cancel by reaction from %d: %s", job.id, payload.user_id, result.value)
        if result is CancelResult.FAILED:
            # The reply now says why; take the ❌ back so a second click can try again.
            await self._remove_reaction(payload)

    async def _remove_reaction(self, payload: discord.RawReactionActionEvent) -> None:
        message = self.bot.get_partial_messageable(payload.channel_id).get_partial_message(payload.message_id)
        with contextlib.suppress(discord.HTTPException):
            await message.remove_reaction(payload.emoji, discord.Object(payload.user_id))

    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        """Removed from a server: stop paying for images nobody there can receive."""
        me = self.bot.user
        jobs = [job for job in await self.bot.store.active_jobs() if job.guild_id == guild.id]
        for job in jobs:
            await self.bot.tracker.cancel(job.id, user_id=me.id if me else 0)
        if jobs:
            log.info("removed from server %d: cancelled %d job(s)", guild.id, len(jobs))

    def _may_cancel(self, job: JobRecord, payload: discord.RawReactionActionEvent) -> bool:
        if payload.user_id == job.user_id:
            return True
        member = payload.member
        if member is None or payload.guild_id is None:
            return False
        guild = self.bot.get_guild(payload.guild_id)
        channel = guild.get_channel_or_thread(payload.channel_id) if guild else None
        permissions = channel.permissions_for(member) if channel is not None else member.guild_permissions
        return permissions.manage_messages

    @app_commands.command(name="cancel", description="Cancel one of your images that is still in progress")
    @app_commands.guild_only()
    @app_commands.describe(job="Which image (default: your most recent one in progress)")
    async def cancel(self, interaction: Interaction, job: int | None = None) -> None:
        t = self.bot.texts(interaction)
        jobs = await self.bot.store.active_jobs_for_user(interaction.user.id, interaction.guild_id)
        if not jobs:
            await interaction.response.send_message(t("cancel-nothing"), ephemeral=True)
            return
        chosen = jobs[-1] if job is None else next((j for j in jobs if j.id == job), None)
        if chosen is None:
            await interaction.response.send_message(t("cancel-not-in-progress"), ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        result = await self.bot.tracker.cancel(chosen.id, user_id=interaction.user.id)
        await interaction.followup.send(t(RESULT_KEYS[result], job=str(chosen.id)), ephemeral=True)

    @cancel.autocomplete("job")
    async def cancel_autocomplete(self, interaction: Interaction, current: str) -> list[app_commands.Choice[int]]:
        jobs = await self.bot.store.active_jobs_for_user(interaction.user.id, interaction.guild_id)
        choices = []
        for job in reversed(jobs):
            label = f"#{job.id} · {job.status.value} · {job.prompt}"
            if current and current.lower() not in label.lower():
                continue
            choices.append(app_commands.Choice(name=label[:100], value=job.id))
        return choices[:25]


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Cancel(bot))
