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

from bot.i18n import Texts
from bot.jobrun import progress_of, timing_of
from bot.models import ACTIVE_STATES, Action, JobRecord, JobState
from cogs import _render

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

# Catalog keys: each state's label, how a job was made from another, a state in the server's queue.
STATE_KEYS = {
    JobState.DELIVERED: "history-state-delivered",
    JobState.FAILED: "history-state-failed",
    JobState.CANCELLED: "history-state-cancelled",
}
LINEAGE_KEYS = {
    Action.REROLL: "history-from-reroll",
    Action.EDIT: "history-from-edit",
    Action.VARY: "history-from-vary",
    Action.UPSCALE: "history-from-upscale",
}
QUEUE_STATE_KEYS = {
    JobState.PENDING: "jobs-state-sending",
    JobState.QUEUED: "jobs-state-queued",
    JobState.RUNNING: "jobs-state-generating",
    JobState.DELIVERING: "jobs-state-delivering",
}


def message_link(guild_id: int | None, channel_id: int, message_id: int | None) -> str | None:
    if guild_id is None or message_id is None:
        return None
    return f"https://discord.com/channels/{guild_id}/{channel_id}/{message_id}"


def job_link(job: JobRecord) -> str | None:
    return message_link(job.guild_id, job.channel_id, job.message_id)


def jump_link(t: Texts, link: str) -> str:
    label = t("history-jump")
    return f"[{label}]({link})"


def about(t: Texts, seconds: float) -> str:
    """A rounded duration that does not pretend to precision."""
    if seconds < 5:
        return t("jobs-about-few")
    if seconds < 60:
        return t("jobs-about-seconds", seconds=int(5 * round(seconds / 5)))
    return t("jobs-about-minutes", minutes=round(seconds / 60))


def prompt_line(t: Texts, prompt: str, limit: int) -> str:
    """A member's prompt on one line, inert (no mention, no markdown) and short."""
    flat = " ".join(prompt.split())
    if not flat:
        return t("history-no-prompt")
    return _render.safe(discord.utils.escape_markdown(flat), limit)


def parameters(t: Texts, job: JobRecord) -> str:
    ratio = job.aspect_ratio or (t("history-ratio-reference") if job.image_urls else "1:1")
    parts = [job.resolution, ratio]
    if job.reference_count:
        parts.append(t("history-references", count=job.reference_count))
    return " · ".join(parts)


def lineage(t: Texts, job: JobRecord, parents: dict[int, JobRecord]) -> str | None:
    """Where a job came from, e.g. "Edit of #12" (linked to the parent's message when it is known);
    None for a fresh image."""
    if job.parent_job_id is None:
        return None
    try:
        key = LINEAGE_KEYS.get(Action(job.action or ""), "history-from-other")
    except ValueError:
        key = "history-from-other"
    parent = parents.get(job.parent_job_id)
    link = job_link(parent) if parent is not None and parent.guild_id == job.guild_id else None
    number = f"#{job.parent_job_id}"
    return t(key, parent=f"[{number}]({link})" if link else number)


def history_entry(t: Texts, job: JobRecord, parents: dict[int, JobRecord]) -> str:
    state = t(STATE_KEYS.get(job.status, "history-state-in-progress"))
    details = [parameters(t, job)]
    if (made_from := lineage(t, job, parents)) is not None:
        details.append(made_from)
    if (link := job_link(job)) is not None:
        details.append(jump_link(t, link))
    return "\n".join(
        (
            f"**#{job.id}** · {state} · <t:{int(job.created_at)}:R>",
            prompt_line(t, job.prompt, PROMPT_CHARS),
            " · ".join(details),
        )
    )


class HistoryView(discord.ui.View):
    """Previous/Next under a history page. Clicks are routed by custom id (a registered dynamic
    item), so the view itself is never kept."""

    def is_dispatchable(self) -> bool:
        return False


class PageButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=PAGE_BUTTON_PATTERN):
    """Previous or Next under a ``/history`` page (``label`` in the viewer's language; a click
    rebuilds the button from its custom id, where the label does not matter)."""

    def __init__(self, direction: str, member_id: int, viewer_id: int, cursor: int, label: str | None = None) -> None:
        custom_id = PAGE_BUTTON_ID.format(direction=direction, member=member_id, viewer=viewer_id, cursor=cursor)
        super().__init__(discord.ui.Button(label=label, custom_id=custom_id))
        self.direction = direction
        self.member_id = member_id
        self.viewer_id = viewer_id
        self.cursor = cursor

    @classmethod
    async def from_custom_id(  # type: ignore[override]
        cls, interaction: Interaction, item: discord.ui.Button[discord.ui.View], match: re.Match[str]
    ) -> PageButton:
        return cls(match["direction"], int(match["member"]), int(match["viewer"]), int(match["cursor"]), item.label)

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        t = interaction.client.texts(interaction)  # whoever pressed it, in their language
        if interaction.guild_id is None:
            await interaction.response.send_message(t("controls-guild-only"), ephemeral=True)
            return
        if interaction.user.id != self.viewer_id:
            await interaction.response.send_message(t("history-not-viewer"), ephemeral=True)
            return
        if self.member_id != self.viewer_id and not interaction.permissions.manage_messages:
            await interaction.response.send_message(t("history-not-moderator"), ephemeral=True)
            return
        page = await history_page(
            interaction.client,
            t,
            interaction.guild_id,
            self.member_id,
            self.viewer_id,
            older_than=self.cursor if self.direction == "older" else None,
            newer_than=self.cursor if self.direction == "newer" else None,
        )
        if page is None:
            await interaction.response.edit_message(
                content=empty_history(t, self.member_id, self.viewer_id), embed=None, view=None
            )
            return
        embed, view = page
        await interaction.response.edit_message(content=None, embed=embed, view=view)


def empty_history(t: Texts, member_id: int, viewer_id: int) -> str:
    if member_id == viewer_id:
        return t("history-empty-yours")
    return t("history-empty-member", member=f"<@{member_id}>")


async def history_page(
    bot: ImagineBot,
    t: Texts,
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
    whose = t("history-yours") if member_id == viewer_id else t("history-by-member", member=f"<@{member_id}>")
    lines = [whose, *(history_entry(t, job, parents) for job in jobs)]
    embed = discord.Embed(title=t("history-title"), description="\n\n".join(lines), colour=_render.COLOR_ACTIVE)
    if not has_newer and not has_older:
        return embed, None  # a single page: no buttons
    view = HistoryView(timeout=None)
    pages = (
        ("newer", jobs[0].id, has_newer, t("history-previous")),
        ("older", jobs[-1].id, has_older, t("history-next")),
    )
    for direction, cursor, enabled, label in pages:
        button = PageButton(direction, member_id, viewer_id, cursor, label).item
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
        t = self.bot.texts(interaction)
        if interaction.guild_id is None:
            await interaction.response.send_message(t("controls-guild-only"), ephemeral=True)
            return
        viewer_id = interaction.user.id
        member_id = member.id if member is not None else viewer_id
        if member_id != viewer_id and not interaction.permissions.manage_messages:
            await interaction.response.send_message(t("history-not-moderator"), ephemeral=True)
            return
        page = await history_page(self.bot, t, interaction.guild_id, member_id, viewer_id)
        if page is None:
            await interaction.response.send_message(empty_history(t, member_id, viewer_id), ephemeral=True)
            return
        embed, view = page
        if view is None:
            await interaction.response.send_message(embed=embed, ephemeral=True)
        else:
            await interaction.response.send_message(embed=embed, view=view, ephemeral=True)

    @app_commands.command(name="jobs", description="Your images in progress here (and the server's queue for admins)")
    @app_commands.guild_only()
    async def jobs(self, interaction: Interaction) -> None:
        t = self.bot.texts(interaction)
        if interaction.guild_id is None:
            await interaction.response.send_message(t("controls-guild-only"), ephemeral=True)
            return
        store = self.bot.store
        now = self.bot.clock()
        mine = await store.active_jobs_in_guild(interaction.guild_id, user_id=interaction.user.id, limit=JOBS_SHOWN + 1)
        admin = interaction.permissions.manage_guild
        if not mine and not admin:
            await interaction.response.send_message(t("jobs-none"), ephemeral=True)
            return
        lines = [self._job_line(t, job, now) for job in mine[:JOBS_SHOWN]] or [t("jobs-none")]
        if len(mine) > JOBS_SHOWN:
            lines.append(t("jobs-more", count=JOBS_SHOWN))
        embed = discord.Embed(title=t("jobs-title"), description="\n\n".join(lines), colour=_render.COLOR_ACTIVE)
        if admin:
            embed.add_field(
                name=t("jobs-server-queue"), value=await self._server_queue(t, interaction.guild_id), inline=False
            )
        await interaction.response.send_message(embed=embed, ephemeral=True)

    def _job_line(self, t: Texts, job: JobRecord, now: float) -> str:
        progress = progress_of(job, now)
        parts = [f"**#{job.id}**", _render.status_line(t, progress)]
        if not progress.cancelling and job.status in (JobState.PENDING, JobState.QUEUED, JobState.RUNNING):
            estimate = self.bot.tracker.timing.estimate(job.resolution, **timing_of(job, now))
            parts.append(t("jobs-left", time=about(t, estimate.remaining)))
        if (link := job_link(job)) is not None:
            parts.append(jump_link(t, link))
        return " · ".join(parts) + "\n" + prompt_line(t, job.prompt, JOBS_PROMPT_CHARS)

    async def _server_queue(self, t: Texts, guild_id: int) -> str:
        counts = await self.bot.store.active_counts_in_guild(guild_id)
        line = " · ".join(
            t("jobs-queue-count", state=t(QUEUE_STATE_KEYS[state]), count=counts.get(state.value, 0))
            for state in ACTIVE_STATES
        )
        # Every server's jobs share the upstream queue: a new one waits behind all of the bot's.
        waiting, highest = await self.bot.store.waiting_summary()
        ahead = max(waiting, highest + 1 if highest is not None else 0)
        estimate = self.bot.tracker.timing.estimate(NEW_JOB_TIER, running_for=None, position=ahead, waited=0.0)
        return line + "\n" + t("jobs-new-image", tier=NEW_JOB_TIER, time=about(t, estimate.remaining))


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(History(bot))
