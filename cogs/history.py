"""Looking back and around: ``/history`` (a member's recent images) and ``/jobs`` (what is in progress).

Both answer privately. ``/history`` pages with Previous/Next buttons whose custom ids carry the
member, the viewer and the page's edge (a job id), so the buttons work after restarts and nothing is
kept in memory. Thumbnails are not shown: the bot keeps no image URLs, and looking each reply up on
Discord would cost a request per entry.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.jobrun import progress_of, timing_of
from bot.models import ACTIVE_STATES, Action, JobRecord, JobState
from cogs import _render
from cogs.quota import GUILD_ONLY

if TYPE_CHECKING:
    from bot.app import ImagineBot

log = logging.getLogger(__name__)

Interaction = discord.Interaction["ImagineBot"]

PAGE_SIZE = 5
PROMPT_CHARS = 120
JOBS_SHOWN = 10
JOBS_PROMPT_CHARS = 60
NEW_JOB_TIER = "1K"  # the tier of the "a new image would take" estimate

# The paging buttons: "older" lists the jobs before the cursor, "newer" those after it.
PAGE_BUTTON_ID = "imagine:history:{direction}:{member}:{viewer}:{cursor}"
PAGE_BUTTON_PATTERN = (
    r"imagine:history:(?P<direction>older|newer)"
    r":(?P<member>[0-9]{1,20}):(?P<viewer>[0-9]{1,20}):(?P<cursor>[0-9]{1,19})"
)

STATE_TEXT = {
    JobState.DELIVERED: "✅ Delivered",
    JobState.FAILED: "⚠️ Failed",
    JobState.CANCELLED: "🛑 Cancelled",
}
IN_PROGRESS = "🎨 In progress"
LINEAGE_TEXT = {
    Action.REROLL: "Re-roll of",
    Action.EDIT: "Edit of",
    Action.VARY: "Variation of",
    Action.UPSCALE: "Upscale of",
}
QUEUE_STATE_TEXT = {
    JobState.PENDING: "Sending",
    JobState.QUEUED: "Queued",
    JobState.RUNNING: "Generating",
    JobState.DELIVERING: "Delivering",
}

NOT_A_MODERATOR = "Only moderators (Manage Messages) can see another member's images."
NOT_THE_VIEWER = "Only the member who opened this list can page through it."
NO_JOBS = "You have no images in progress here."


def message_link(guild_id: int | None, channel_id: int, message_id: int | None) -> str | None:
    if guild_id is None or message_id is None:
        return None
    return f"https://discord.com/channels/{guild_id}/{channel_id}/{message_id}"


def job_link(job: JobRecord) -> str | None:
    return message_link(job.guild_id, job.channel_id, job.message_id)


def about(seconds: float) -> str:
    """A rounded duration that does not pretend to precision."""
    if seconds < 5:
        return "a few seconds"
    if seconds < 60:
        return f"about {int(5 * round(seconds / 5))} s"
    return f"about {round(seconds / 60)} min"


def prompt_line(prompt: str, limit: int) -> str:
    """A member's prompt on one line, inert (no mention, no markdown) and short."""
    flat = " ".join(prompt.split())
    if not flat:
        return "*(no prompt)*"
    return _render.safe(discord.utils.escape_markdown(flat), limit)


def parameters(job: JobRecord) -> str:
    ratio = job.aspect_ratio or ("reference's ratio" if job.image_urls else "1:1")
    parts = [job.resolution, ratio]
    if job.reference_count:
        parts.append(f"{job.reference_count} reference{'s' if job.reference_count != 1 else ''}")
    return " · ".join(parts)


def lineage(job: JobRecord, parents: dict[int, JobRecord]) -> str | None:
    """Where a job came from, e.g. "Edit of #12" (linked to the parent's message when it is known);
    None for a fresh image."""
    if job.parent_job_id is None:
        return None
    try:
        what = LINEAGE_TEXT.get(Action(job.action or ""), "Made from")
    except ValueError:
        what = "Made from"
    parent = parents.get(job.parent_job_id)
    link = job_link(parent) if parent is not None and parent.guild_id == job.guild_id else None
    number = f"#{job.parent_job_id}"
    return f"{what} [{number}]({link})" if link else f"{what} {number}"


def history_entry(job: JobRecord, parents: dict[int, JobRecord]) -> str:
    state = STATE_TEXT.get(job.status, IN_PROGRESS)
    details = [parameters(job)]
    if (made_from := lineage(job, parents)) is not None:
        details.append(made_from)
    if (link := job_link(job)) is not None:
        details.append(f"[Jump to message]({link})")
    return "\n".join(
        (
            f"**#{job.id}** · {state} · <t:{int(job.created_at)}:R>",
            prompt_line(job.prompt, PROMPT_CHARS),
            " · ".join(details),
        )
    )


class HistoryView(discord.ui.View):
    """Previous/Next under a history page. Clicks are routed by custom id (a registered dynamic
    item), so the view itself is never kept."""

    def is_dispatchable(self) -> bool:
        return False


class PageButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=PAGE_BUTTON_PATTERN):
    """Previous or Next under a ``/history`` page."""

    def __init__(self, direction: str, member_id: int, viewer_id: int, cursor: int) -> None:
        custom_id = PAGE_BUTTON_ID.format(direction=direction, member=member_id, viewer=viewer_id, cursor=cursor)
        super().__init__(discord.ui.Button(label="Next" if direction == "older" else "Previous", custom_id=custom_id))
        self.direction = direction
        self.member_id = member_id
        self.viewer_id = viewer_id
        self.cursor = cursor

    @classmethod
    async def from_custom_id(  # type: ignore[override]
        cls, interaction: Interaction, item: discord.ui.Button[discord.ui.View], match: re.Match[str]
    ) -> PageButton:
        return cls(match["direction"], int(match["member"]), int(match["viewer"]), int(match["cursor"]))

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        if interaction.guild_id is None:
            await interaction.response.send_message(GUILD_ONLY, ephemeral=True)
            return
        if interaction.user.id != self.viewer_id:
            await interaction.response.send_message(NOT_THE_VIEWER, ephemeral=True)
            return
        if self.member_id != self.viewer_id and not interaction.permissions.manage_messages:
            await interaction.response.send_message(NOT_A_MODERATOR, ephemeral=True)
            return
        page = await history_page(
            interaction.client,
            interaction.guild_id,
            self.member_id,
            self.viewer_id,
            older_than=self.cursor if self.direction == "older" else None,
            newer_than=self.cursor if self.direction == "newer" else None,
        )
        if page is None:
            await interaction.response.edit_message(
                content=empty_history(self.member_id, self.viewer_id), embed=None, view=None
            )
            return
        embed, view = page
        await interaction.response.edit_message(content=None, embed=embed, view=view)


def empty_history(member_id: int, viewer_id: int) -> str:
    if member_id == viewer_id:
        return "You have no images in this server yet."
    return f"<@{member_id}> has no images in this server yet."


async def history_page(
    bot: ImagineBot,
    guild_id: int,
    member_id: int,
    viewer_id: int,
    *,
    older_than: int | None = None,
    newer_than: int | None = None,
) -> tuple[discord.Embed, discord.ui.View | None] | None:
    """One page of a member's images, newest first, with its buttons; ``None`` when there are none."""
    store = bot.store
    jobs: list[JobRecord] = []
    has_newer = has_older = False
    if newer_than is not None:
        # Paging back: one more than a page tells whether newer ones remain. With fewer, this is
        # the start again, shown as a full first page below.
        newer = await store.history(guild_id, member_id, after_id=newer_than, limit=PAGE_SIZE + 1)
        if len(newer) > PAGE_SIZE:
            jobs, has_newer, has_older = newer[1:], True, True
    if not jobs:
        older = await store.history(guild_id, member_id, before_id=older_than, limit=PAGE_SIZE + 1)
        if not older and older_than is not None:  # nothing older after all: the first page
            older_than = None
            older = await store.history(guild_id, member_id, limit=PAGE_SIZE + 1)
        jobs, has_older, has_newer = older[:PAGE_SIZE], len(older) > PAGE_SIZE, older_than is not None
    if not jobs:
        return None
    parents: dict[int, JobRecord] = {}
    for parent_id in {job.parent_job_id for job in jobs if job.parent_job_id is not None}:
        if (parent := await store.get_job(parent_id)) is not None:
            parents[parent_id] = parent
    whose = "Your images" if member_id == viewer_id else f"Images by <@{member_id}>"
    lines = [f"{whose} in this server, newest first.", *(history_entry(job, parents) for job in jobs)]
    embed = discord.Embed(title="🖼️ History", description="\n\n".join(lines), colour=_render.COLOR_ACTIVE)
    if not has_newer and not has_older:
        return embed, None  # a single page: no buttons
    view = HistoryView(timeout=None)
    for direction, cursor, enabled in (("newer", jobs[0].id, has_newer), ("older", jobs[-1].id, has_older)):
        button = PageButton(direction, member_id, viewer_id, cursor).item
        button.disabled = not enabled
        view.add_item(button)
    return embed, view


class History(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(PageButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(PageButton)

    @app_commands.command(name="history", description="Your recent images in this server (or a member's)")
    @app_commands.guild_only()
    @app_commands.describe(member="Whose images (moderators only; default: yours)")
    async def history(self, interaction: Interaction, member: discord.Member | discord.User | None = None) -> None:
        if interaction.guild_id is None:
            await interaction.response.send_message(GUILD_ONLY, ephemeral=True)
            return
        viewer_id = interaction.user.id
        member_id = member.id if member is not None else viewer_id
        if member_id != viewer_id and not interaction.permissions.manage_messages:
            await interaction.response.send_message(NOT_A_MODERATOR, ephemeral=True)
            return
        page = await history_page(self.bot, interaction.guild_id, member_id, viewer_id)
        if page is None:
            await interaction.response.send_message(empty_history(member_id, viewer_id), ephemeral=True)
            return
        embed, view = page
        if view is None:
            await interaction.response.send_message(embed=embed, ephemeral=True)
        else:
            await interaction.response.send_message(embed=embed, view=view, ephemeral=True)

    @app_commands.command(name="jobs", description="Your images in progress here (and the server's queue for admins)")
    @app_commands.guild_only()
    async def jobs(self, interaction: Interaction) -> None:
        if interaction.guild_id is None:
            await interaction.response.send_message(GUILD_ONLY, ephemeral=True)
            return
        store = self.bot.store
        now = self.bot.clock()
        mine = await store.active_jobs_in_guild(interaction.guild_id, user_id=interaction.user.id, limit=JOBS_SHOWN + 1)
        admin = interaction.permissions.manage_guild
        if not mine and not admin:
            await interaction.response.send_message(NO_JOBS, ephemeral=True)
            return
        lines = [self._job_line(job, now) for job in mine[:JOBS_SHOWN]] or [NO_JOBS]
        if len(mine) > JOBS_SHOWN:
            lines.append(f"Showing your {JOBS_SHOWN} oldest; more are in progress.")
        embed = discord.Embed(title="🎨 In progress", description="\n\n".join(lines), colour=_render.COLOR_ACTIVE)
        if admin:
            embed.add_field(
                name="This server's queue", value=await self._server_queue(interaction.guild_id), inline=False
            )
        await interaction.response.send_message(embed=embed, ephemeral=True)

    def _job_line(self, job: JobRecord, now: float) -> str:
        progress = progress_of(job, now)
        parts = [f"**#{job.id}**", _render.status_line(progress)]
        if not progress.cancelling and job.status in (JobState.PENDING, JobState.QUEUED, JobState.RUNNING):
            estimate = self.bot.tracker.timing.estimate(job.resolution, **timing_of(job, now))
            parts.append(f"{about(estimate.remaining)} left")
        if (link := job_link(job)) is not None:
            parts.append(f"[Jump to message]({link})")
        return " · ".join(parts) + "\n" + prompt_line(job.prompt, JOBS_PROMPT_CHARS)

    async def _server_queue(self, guild_id: int) -> str:
        counts = await self.bot.store.active_counts_in_guild(guild_id)
        line = " · ".join(f"{QUEUE_STATE_TEXT[state]}: {counts.get(state.value, 0)}" for state in ACTIVE_STATES)
        # Every server's jobs share the upstream queue: a new one waits behind all of the bot's.
        waiting, highest = await self.bot.store.waiting_summary()
        ahead = max(waiting, highest + 1 if highest is not None else 0)
        estimate = self.bot.tracker.timing.estimate(NEW_JOB_TIER, running_for=None, position=ahead, waited=0.0)
        return f"{line}\nA new {NEW_JOB_TIER} image would take {about(estimate.remaining)}."


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(History(bot))
