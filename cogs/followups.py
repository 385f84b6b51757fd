"""The buttons under a finished image: Re-roll, Edit, Vary and Upscale.

Each starts a new job owned by whoever clicked (any member may build on a public image), through
the same checks as ``/imagine`` (quota, 4K weight, the bot's permissions, private refusals), as a
new reply that links its parent. The job travels in the button's custom id, so old messages and
restarts are fine; the finished image is taken as it was posted in Discord, so an upstream result
URL that has expired does not matter.

Wording chosen for the two buttons that need a prompt of their own:

- **Vary** keeps the member's prompt and asks for a variation of the reference: the model is an
  editing model, so without the request to vary it tends to return the reference unchanged.
- **Upscale** asks for the reference reproduced faithfully at the next tier: no new content, the
  same composition and colours, finer detail (Nano Banana Pro has no separate upscaler).
"""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING, Any, cast

import discord
from discord.ext import commands

from bot.i18n import Texts
from bot.models import Action, JobRecord, JobState
from bot.queue import MAX_PROMPT_CHARS, MAX_REFERENCE_IMAGES
from cogs import _render
from cogs.imagine import ImagineModal, ImagineRequest

if TYPE_CHECKING:
    from bot.app import ImagineBot
    from cogs.imagine import Imagine

log = logging.getLogger(__name__)

Interaction = discord.Interaction["ImagineBot"]

VARY_PROMPT = (
    "Create a variation of the reference image: keep its subject, style and overall composition, "
    "and vary the details, the pose, the colours and the lighting. The original request was: {prompt}"
)
UPSCALE_PROMPT = (
    "Reproduce the reference image faithfully at a higher resolution with finer detail. Keep its content, "
    "composition, colours and style exactly as they are; do not add, remove or change anything."
)
# A second click on the same button of the same image within this many seconds is a double click.
DOUBLE_CLICK_WINDOW = 5.0


def vary_prompt(prompt: str) -> str:
    room = MAX_PROMPT_CHARS - len(VARY_PROMPT.format(prompt=""))
    return VARY_PROMPT.format(prompt=prompt if len(prompt) <= room else prompt[: room - 1] + "…")


def build_request(action: Action, parent: JobRecord, image_url: str) -> ImagineRequest:
    """The new job a button asks for (Edit's comes from its form instead)."""
    match action:
        case Action.REROLL:
            return ImagineRequest(
                prompt=parent.prompt,
                aspect_ratio=parent.aspect_ratio,
                resolution=parent.resolution,
                with_text=parent.with_text,
                references=(),
                known_urls=parent.image_urls,
                parent_job_id=parent.id,
                action=action,
            )
        case Action.VARY:
            return ImagineRequest(
                prompt=vary_prompt(parent.prompt),
                aspect_ratio=parent.aspect_ratio,
                resolution=parent.resolution,
                with_text=False,
                references=(),
                known_urls=(image_url,),
                parent_job_id=parent.id,
                action=action,
            )
        case Action.UPSCALE:
            return ImagineRequest(
                prompt=UPSCALE_PROMPT,
                aspect_ratio=parent.aspect_ratio,
                resolution=_render.NEXT_TIER[parent.resolution],
                with_text=False,
                references=(),
                known_urls=(image_url,),
                parent_job_id=parent.id,
                action=action,
            )
    raise ValueError(f"no request is built for {action}")


class EditModal(ImagineModal):
    """A new prompt for a finished image (the old one as placeholder), an optional aspect ratio, tier
    and more references; the finished image comes first, then the original references, 14 in all."""

    def __init__(self, cog: Imagine, parent: JobRecord, image_url: str, t: Texts) -> None:
        room = MAX_REFERENCE_IMAGES - 1
        super().__init__(
            cog,
            (),
            parent.resolution,
            t,
            title=t("form-title-edit"),
            placeholder=parent.prompt,
            more_images=min(10, room),
        )
        self._parent = parent
        self._image_url = image_url

    def request(self) -> ImagineRequest:
        asked = super().request()
        kept = MAX_REFERENCE_IMAGES - 1 - len(asked.references)
        known = (self._image_url, *self._parent.image_urls[: max(0, kept)])
        return ImagineRequest(
            prompt=asked.prompt,
            aspect_ratio=asked.aspect_ratio,
            resolution=asked.resolution,
            with_text=asked.with_text,
            references=asked.references,
            known_urls=known,
            parent_job_id=self._parent.id,
            action=Action.EDIT,
        )


class FollowUpButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=_render.FOLLOWUP_PATTERN):
    """One of the buttons under a finished image; its custom id carries the action and the job."""

    def __init__(self, action: Action, job_id: int) -> None:
        custom_id = _render.FOLLOWUP_ID.format(action=action.value, job_id=job_id)
        super().__init__(discord.ui.Button(custom_id=custom_id))
        self.action = action
        self.job_id = job_id

    @classmethod
    async def from_custom_id(  # type: ignore[override]
        cls, interaction: Interaction, item: discord.ui.Button[discord.ui.View], match: re.Match[str]
    ) -> FollowUpButton:
        return cls(Action(match["action"]), int(match["job_id"]))

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        followups = cast("FollowUps | None", interaction.client.get_cog("FollowUps"))
        if followups is not None:
            await followups.clicked(interaction, self.action, self.job_id)


class FollowUps(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot
        # (member, parent job, action) → when a job was last started from that click.
        self._recent: dict[tuple[int, int, Action], float] = {}

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(FollowUpButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(FollowUpButton)

    def _double_click(self, key: tuple[int, int, Action]) -> bool:
        """Whether this click repeats one just handled; otherwise remember it."""
        now = time.monotonic()
        for stale in [k for k, at in self._recent.items() if now - at > DOUBLE_CLICK_WINDOW]:
            del self._recent[stale]
        if key in self._recent:
            return True
        self._recent[key] = now
        return False

    async def clicked(self, interaction: Interaction, action: Action, job_id: int) -> None:
        t = self.bot.texts(interaction)
        parent = await self.bot.store.get_job(job_id)
        if parent is None or parent.guild_id is None or parent.guild_id != interaction.guild_id:
            await interaction.response.send_message(t("followup-unknown"), ephemeral=True)
            return
        image_url = _image_url(interaction.message)
        if parent.status is not JobState.DELIVERED or image_url is None:
            await interaction.response.send_message(t("followup-no-image"), ephemeral=True)
            return
        if action is Action.UPSCALE and parent.resolution not in _render.NEXT_TIER:
            await interaction.response.send_message(t("followup-highest-tier"), ephemeral=True)
            return
        imagine = cast("Imagine | None", self.bot.get_cog("Imagine"))
        if imagine is None:
            await interaction.response.send_message(t("followup-unavailable"), ephemeral=True)
            return
        if action is Action.EDIT:
            await interaction.response.send_modal(EditModal(imagine, parent, image_url, t))
            return
        if self._double_click((interaction.user.id, parent.id, action)):
            await interaction.response.send_message(t("followup-double-click"), ephemeral=True)
            return
        log.info("job %d: %s by %d", parent.id, action.value, interaction.user.id)
        await imagine.start(interaction, build_request(action, parent, image_url))


def _image_url(message: Any) -> str | None:
    """The finished image as posted in Discord (the reply's first image attachment)."""
    if not isinstance(message, discord.Message):
        return None
    for attachment in message.attachments:
        if (attachment.content_type or "").startswith("image/") or attachment.filename.lower().endswith(
            (".png", ".jpg", ".jpeg", ".webp")
        ):
            return attachment.url
    return None


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(FollowUps(bot))
