"""``/imagine`` and the "Imagine with these images" message command: Discord in, jobs out."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, cast

import discord
from discord import app_commands
from discord.ext import commands

from bot import imaging, quota
from bot.app import tell_privately
from bot.events import Progress
from bot.i18n import Texts
from bot.models import Action, FourKAccess, JobRecord, JobState, LimitKind, NewJob, QuotaRefusal, ServerControls
from bot.queue import ASPECT_RATIOS, MAX_PROMPT_CHARS, MAX_REFERENCE_IMAGES, SIZE_TIERS
from cogs import _render

if TYPE_CHECKING:
    from bot.app import ImagineBot
    from cogs.settings import ServerSettings

log = logging.getLogger(__name__)

Interaction = discord.Interaction["ImagineBot"]
QUOTA_LOG_KEYS = {
    LimitKind.USER_DAILY: "controls-log-quota-user-daily",
    LimitKind.GUILD_DAILY: "controls-log-quota-guild-daily",
    LimitKind.MAX_CONCURRENT: "controls-log-quota-max-concurrent",
}
AspectRatio = Literal["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"]
Resolution = Literal["1K", "2K", "4K"]
AUTO = "auto"
# A new reply shows "Sending to the image service…" only when the submit is not answered this soon.
SENDING_SHOWN_AFTER = 1.0

PROBLEM_KEYS = {
    imaging.ReferenceProblem.NOT_AN_IMAGE: "reference-not-an-image",
    imaging.ReferenceProblem.UNSUPPORTED_TYPE: "reference-unsupported",
    imaging.ReferenceProblem.TOO_LARGE: "reference-too-large",
    imaging.ReferenceProblem.CORRUPT: "reference-corrupt",
}


@dataclass(frozen=True, slots=True)
class ImagineRequest:
    prompt: str
    aspect_ratio: str | None
    resolution: str
    with_text: bool
    references: tuple[discord.Attachment, ...]
    # References already known and checked (a finished image, a parent job's references): they go
    # first, and are not downloaded again.
    known_urls: tuple[str, ...] = ()
    parent_job_id: int | None = None
    action: Action = Action.IMAGINE

    @property
    def reference_count(self) -> int:
        return len(self.known_urls) + len(self.references)


class Refused(Exception):
    """A request that must not go ahead; the message is shown to the member privately."""


# Without these the image cannot reach the channel once the interaction's 15 minutes are over.
REQUIRED_PERMISSIONS = (("permission-view-channel", "view_channel"), ("permission-attach-files", "attach_files"))
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".heic", ".heif", ".gif")


def looks_like_image(attachment: discord.Attachment) -> bool:
    """Whether a message attachment is meant as a picture (it is checked properly later)."""
    content_type = (attachment.content_type or "").lower()
    return content_type.startswith("image/") or attachment.filename.lower().endswith(IMAGE_EXTENSIONS)


class ImagineModal(discord.ui.Modal):
    """Prompt, aspect ratio, resolution and more references for the message command."""

    def __init__(
        self,
        cog: Imagine,
        references: tuple[discord.Attachment, ...],
        default_resolution: str,
        t: Texts,
        *,
        title: str | None = None,
        placeholder: str | None = None,
        more_images: int = 10,
    ) -> None:
        super().__init__(title=title or t("form-title-imagine"), timeout=900)
        self._cog = cog
        self._references = references
        self.prompt: discord.ui.TextInput[ImagineModal] = discord.ui.TextInput(
            style=discord.TextStyle.paragraph,
            min_length=1,
            max_length=MAX_PROMPT_CHARS,
            custom_id="prompt",
            placeholder=placeholder[:100] if placeholder else None,
        )
        self.aspect: discord.ui.Select[ImagineModal] = discord.ui.Select(
            custom_id="aspect_ratio",
            required=False,
            options=[discord.SelectOption(label=t("form-aspect-follow"), value=AUTO, default=True)]
            + [discord.SelectOption(label=r, value=r) for r in ASPECT_RATIOS],
        )
        self.resolution: discord.ui.Select[ImagineModal] = discord.ui.Select(
            custom_id="resolution",
            required=False,
            options=[discord.SelectOption(label=t, value=t, default=t == default_resolution) for t in SIZE_TIERS],
        )
        self.files: discord.ui.FileUpload[ImagineModal] = discord.ui.FileUpload(
            custom_id="more_images", required=False, min_values=0, max_values=max(1, more_images)
        )
        self.text_reply: discord.ui.Select[ImagineModal] = discord.ui.Select(
            custom_id="text_reply",
            required=False,
            options=[
                discord.SelectOption(label=t("form-image-only"), value="no", default=True),
                discord.SelectOption(label=t("form-image-and-text"), value="yes"),
            ],
        )
        self.add_item(discord.ui.Label(text=t("form-prompt"), component=self.prompt))
        self.add_item(discord.ui.Label(text=t("form-aspect"), component=self.aspect))
        self.add_item(discord.ui.Label(text=t("form-resolution"), component=self.resolution))
        self.add_item(
            discord.ui.Label(
                text=t("form-more-images"),
                description=t("form-more-images-hint", max=MAX_REFERENCE_IMAGES),
                component=self.files,
            )
        )
        self.add_item(discord.ui.Label(text=t("form-text-reply"), component=self.text_reply))

    async def on_error(self, interaction: Interaction, error: Exception) -> None:  # type: ignore[override]
        log.error("the imagine form failed", exc_info=error)
        await tell_privately(interaction, interaction.client.texts(interaction)("unexpected-error"))

    async def on_submit(self, interaction: Interaction) -> None:  # type: ignore[override]
        await self._cog.start(interaction, self.request())

    def request(self) -> ImagineRequest:
        """What the member filled in, as a request."""
        aspect = self.aspect.values[0] if self.aspect.values else AUTO
        return ImagineRequest(
            prompt=self.prompt.value,
            aspect_ratio=None if aspect == AUTO else aspect,
            resolution=self.resolution.values[0] if self.resolution.values else self._cog.default_resolution,
            with_text=self.text_reply.values == ["yes"],
            references=self._references + tuple(self.files.values),
        )


class Imagine(commands.Cog):
    """Creates jobs from commands and hands them to the tracker."""

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(name="Imagine with these images", callback=self.imagine_from_message)
        self.menu.guild_only = True

    @property
    def default_resolution(self) -> str:
        return self.bot.settings.default_resolution

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    @app_commands.command(name="imagine", description="Generate an image with Nano Banana Pro")
    @app_commands.guild_only()
    @app_commands.describe(
        prompt="What to draw (up to 2500 characters)",
        aspect_ratio="Shape of the image; without it, it follows your first reference image (else 1:1)",
        resolution="Size tier: 1K, 2K or 4K (4K may count as more than one image)",
        text_reply="Also get the model's text reply",
        image1="Reference image",
        image2="Reference image",
        image3="Reference image",
        image4="Reference image",
        image5="Reference image",
        image6="Reference image",
        image7="Reference image",
        image8="Reference image",
        image9="Reference image",
        image10="Reference image",
    )
    async def imagine(
        self,
        interaction: Interaction,
        prompt: app_commands.Range[str, 1, MAX_PROMPT_CHARS],
        aspect_ratio: AspectRatio | None = None,
        resolution: Resolution | None = None,
        text_reply: bool = False,
        image1: discord.Attachment | None = None,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        image5: discord.Attachment | None = None,
        image6: discord.Attachment | None = None,
        image7: discord.Attachment | None = None,
        image8: discord.Attachment | None = None,
        image9: discord.Attachment | None = None,
        image10: discord.Attachment | None = None,
    ) -> None:
        images = (image1, image2, image3, image4, image5, image6, image7, image8, image9, image10)
        request = ImagineRequest(
            prompt=prompt,
            aspect_ratio=aspect_ratio,
            resolution=resolution or self.default_resolution,
            with_text=text_reply,
            references=tuple(a for a in images if a is not None),
        )
        await self.start(interaction, request)

    async def imagine_from_message(self, interaction: Interaction, message: discord.Message) -> None:
        t = self.bot.texts(interaction)
        images = tuple(a for a in message.attachments if looks_like_image(a))
        if not images:
            await interaction.response.send_message(t("menu-no-images"), ephemeral=True)
            return
        if len(images) > MAX_REFERENCE_IMAGES:
            await interaction.response.send_message(
                t("menu-too-many-images", count=len(images), max=MAX_REFERENCE_IMAGES), ephemeral=True
            )
            return
        await interaction.response.send_modal(ImagineModal(self, images, self.default_resolution, t))

    # -- the flow shared by both commands ----------------------------------------------------

    async def start(self, interaction: Interaction, request: ImagineRequest) -> None:
        tracker = self.bot.tracker
        t = self.bot.texts(interaction)
        if not self.bot.store.ownership.owns(interaction.guild_id):
            await self._start_for_its_shard(t, interaction, request)
            return
        try:
            if not tracker.accepting:
                raise Refused(t("imagine-restarting"))
            self._check(t, interaction, request)
            job = await self._reserve(t, interaction, request)
        except Refused as refusal:
            await interaction.response.send_message(str(refusal), ephemeral=True)
            return
        # The row exists and its quota is reserved. If the bot stops before tracker.start, the
        # next start submits the job (its submit never began); until then the sweep leaves it be.
        with tracker.preparing(job.id):
            try:
                job = await self._defer(interaction, job)
                await self._verify_references(t, request)
            except Refused as refusal:
                await self._drop(job, "refused")
                await self._withdraw(interaction, str(refusal))
                return
            except Exception:
                await self._drop(job, "error")
                raise
            tracker.start(job)
        await self._show_queued(job)  # cosmetic: the submit does not wait for it

    async def _start_for_its_shard(self, t: Texts, interaction: Interaction, request: ImagineRequest) -> None:
        """A server on a shard another process runs (Discord sends a server's interactions to its
        shard, so only a misrouted one lands here). Answer the member here, and make the job with its
        reply and checked references already recorded: only its owner may change it afterwards. The
        process that runs the server's shard takes it at its next sweep and submits it."""
        try:
            if not self.bot.tracker.accepting:
                raise Refused(t("imagine-restarting"))
            self._check(t, interaction, request)
        except Refused as refusal:
            await interaction.response.send_message(str(refusal), ephemeral=True)
            return
        callback = await interaction.response.defer(thinking=True)
        message_id = callback.message_id if callback is not None else None
        if message_id is None:
            message_id = (await interaction.original_response()).id
        try:
            await self._verify_references(t, request)
            job = await self._reserve(t, interaction, request, message_id=message_id)
        except Refused as refusal:
            await self._withdraw(interaction, str(refusal))
            return
        log.info(
            "job %d is for server %s on shard %d, which another process runs: left to it",
            job.id,
            interaction.guild_id,
            self.bot.store.ownership.shard_of(interaction.guild_id),
        )

    async def _drop(self, job: JobRecord, why: str) -> None:
        """End a job that was refused before it was handed to the tracker (the member is told here)."""
        now = self.bot.clock()
        await self.bot.store.finish(job.id, JobState.FAILED, now=now, refund=True, error_type=why, told=True)

    def _check(self, t: Texts, interaction: Interaction, request: ImagineRequest) -> None:
        if interaction.guild_id is None:
            raise Refused(t("imagine-guild-only"))
        missing = [t(key) for key, flag in REQUIRED_PERMISSIONS if not getattr(interaction.app_permissions, flag)]
        if missing:
            raise Refused(t("imagine-missing-permissions", permissions=", ".join(missing)))
        prompt = request.prompt.strip()
        if not prompt:
            raise Refused(t("imagine-prompt-empty"))
        if len(request.prompt) > MAX_PROMPT_CHARS:
            raise Refused(t("imagine-prompt-too-long", length=len(request.prompt), max=MAX_PROMPT_CHARS))
        if request.reference_count > MAX_REFERENCE_IMAGES:
            raise Refused(t("imagine-too-many-references", count=request.reference_count, max=MAX_REFERENCE_IMAGES))
        cap = self.bot.settings.max_reference_bytes
        for attachment in request.references:
            problem = imaging.check_declared(attachment.content_type, attachment.filename, attachment.size, cap)
            if problem is not None:
                raise Refused(self._problem_text(t, attachment.filename, problem))

    def _problem_text(self, t: Texts, filename: str, problem: imaging.ReferenceProblem) -> str:
        cap = _render.size_text(t, self.bot.settings.max_reference_bytes)
        return t(PROBLEM_KEYS[problem], file=_render.safe(filename, 100), cap=cap)

    @staticmethod
    def _upload_limit(interaction: Interaction) -> int:
        """The interaction's limit may include the member's Nitro, but after 15 minutes (or for a new
        message) the image goes up with the bot's token, where only the server's limit applies."""
        server = interaction.guild.filesize_limit if interaction.guild else discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
        return min(interaction.filesize_limit, server)

    @staticmethod
    def _role_ids(interaction: Interaction) -> tuple[int, ...]:
        """The member's roles in the server (@everyone included)."""
        user = interaction.user
        return tuple(role.id for role in user.roles) if isinstance(user, discord.Member) else ()

    def _report(self, controls: ServerControls, text: str, *, key: tuple[object, ...]) -> None:
        """A line for the server's log channel, if it has one (queued: nothing waits on it)."""
        settings = cast("ServerSettings | None", self.bot.get_cog("ServerSettings"))
        if settings is not None and controls.log_channel_id is not None:
            settings.admin_log.post(controls.guild_id, controls.log_channel_id, text, key=key)

    async def _apply_controls(
        self,
        t: Texts,
        interaction: Interaction,
        request: ImagineRequest,
        controls: ServerControls,
        role_ids: tuple[int, ...],
    ) -> None:
        """The server's controls that need no quota: a blocked member, blocked words, who may use 4K."""
        admin = self._admin_texts(interaction)
        who = {"member": f"<@{interaction.user.id}>", "channel": f"<#{interaction.channel_id}>"}
        if (await self.bot.store.member_controls(controls.guild_id, interaction.user.id)).blocked:
            self._report(controls, admin("controls-log-blocked-member", **who), key=("blocked", interaction.user.id))
            raise Refused(t("controls-refused-blocked-member"))
        if quota.blocked_phrase(request.prompt, controls.blocked_words) is not None:
            self._report(controls, admin("controls-log-blocked-words", **who), key=("words", interaction.user.id))
            raise Refused(t("controls-refused-blocked-words"))
        if request.resolution == "4K" and not quota.may_use_4k(controls.four_k, controls.four_k_roles, role_ids):
            off = controls.four_k is FourKAccess.OFF
            raise Refused(t("controls-refused-4k-off") if off else t("controls-refused-4k-roles"))

    def _admin_texts(self, interaction: Interaction) -> Texts:
        """Lines for the server's log channel speak the server's language."""
        return self.bot.catalog.bind(interaction.guild_locale.value if interaction.guild_locale else None)

    async def _reserve(
        self, t: Texts, interaction: Interaction, request: ImagineRequest, *, message_id: int | None = None
    ) -> JobRecord:
        now = self.bot.clock()
        channel_id = interaction.channel_id
        assert channel_id is not None and interaction.guild_id is not None
        role_ids = self._role_ids(interaction)
        controls = await self.bot.store.server_controls(interaction.guild_id)
        await self._apply_controls(t, interaction, request, controls, role_ids)
        new = NewJob(
            user_id=interaction.user.id,
            guild_id=interaction.guild_id,
            channel_id=channel_id,
            message_id=message_id,
            application_id=interaction.application_id,
            interaction_token=interaction.token,
            token_expires_at=interaction.expires_at.timestamp(),
            upload_limit=self._upload_limit(interaction),
            prompt=request.prompt.strip(),
            aspect_ratio=request.aspect_ratio,
            resolution=request.resolution,
            with_text=request.with_text,
            image_urls=request.known_urls + tuple(a.url for a in request.references),
            parent_job_id=request.parent_job_id,
            action=request.action.value,
            role_ids=role_ids,
            locale=interaction.locale.value,
            guild_locale=interaction.guild_locale.value if interaction.guild_locale else None,
        )
        created = await self.bot.store.create_job(new, now=now, default_4k_weight=self.bot.settings.default_4k_weight)
        if isinstance(created, QuotaRefusal):
            admin = self._admin_texts(interaction)
            who = {"member": f"<@{interaction.user.id}>", "channel": f"<#{channel_id}>"}
            if created.limit is LimitKind.BLOCKED:  # blocked after the check above
                self._report(
                    controls, admin("controls-log-blocked-member", **who), key=("blocked", interaction.user.id)
                )
                raise Refused(t("controls-refused-blocked-member"))
            if self.bot.metrics is not None:
                self.bot.metrics.quota_refused(created.limit.value)
            line = admin(QUOTA_LOG_KEYS[created.limit], **who, used=created.used, allowed=created.allowed)
            self._report(controls, line, key=("quota", created.limit.value, interaction.user.id))
            raise Refused(_render.refusal_text(t, created, quota.next_reset(now)))
        return created

    async def _defer(self, interaction: Interaction, job: JobRecord) -> JobRecord:
        callback = await interaction.response.defer(thinking=True)
        message_id = callback.message_id if callback is not None else None
        if message_id is None:
            message_id = (await interaction.original_response()).id
        return await self.bot.store.set_reply(job.id, message_id=message_id, token_dead=False, now=self.bot.clock())

    async def _verify_references(self, t: Texts, request: ImagineRequest) -> None:
        """Download each reference once and decode it: the declared type is only a hint."""
        cap = self.bot.settings.max_reference_bytes

        async def verify(attachment: discord.Attachment) -> None:
            try:
                data = await attachment.read()
            except discord.HTTPException as exc:
                raise Refused(t("reference-download-failed", file=_render.safe(attachment.filename, 100))) from exc
            check = await asyncio.to_thread(imaging.check_reference, data, cap)
            if not check.ok and check.problem is not None:
                raise Refused(self._problem_text(t, attachment.filename, check.problem))

        await asyncio.gather(*(verify(a) for a in request.references))

    async def _withdraw(self, interaction: Interaction, text: str) -> None:
        """Replace the public "thinking…" reply by a private explanation."""
        await tell_privately(interaction, text)

    async def _show_queued(self, job: JobRecord) -> None:
        """ "Sending to the image service…", only if the submit is slow to be answered: the job's
        next state (queued) usually replaces "thinking…" first, one edit instead of two."""
        now = self.bot.clock()
        try:
            progress = Progress(JobState.PENDING, None, now, now)
            await self.bot.presenter.show_first(job, progress, after=SENDING_SHOWN_AFTER)
        except Exception as exc:  # cosmetic: the tracker's next update shows the state anyway
            log.info("job %d: could not show the queued state: %s", job.id, exc)


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Imagine(bot))
