"""What members see: embeds for every job state, and the short messages for every refusal.

Every word comes from the catalogs (``bot/locales``) through the ``t`` each function is given: the
requester's language for a reply, the server's for a message no interaction started.
"""

from __future__ import annotations

import discord

from bot.events import Cancelled, Delivery, Failure, Progress
from bot.i18n import Texts
from bot.imaging import FittedImage
from bot.models import Action, FailureReason, JobRecord, JobState, LimitKind, QuotaRefusal

CANCEL_EMOJI = "❌"
# The Cancel button's custom id: it carries the job, so a click works for old replies and after restarts.
CANCEL_BUTTON_ID = "imagine:cancel:{job_id}"
CANCEL_BUTTON_PATTERN = r"imagine:cancel:(?P<job_id>[0-9]{1,19})"


class Controls(discord.ui.View):
    """The buttons under a reply. Clicks are routed by their custom id (a registered dynamic item),
    so no view is kept in memory per message."""

    def is_dispatchable(self) -> bool:
        return False


# The buttons under a finished image: each starts a new job from it, owned by whoever clicks.
FOLLOWUP_ID = "imagine:{action}:{job_id}"
FOLLOWUP_PATTERN = r"imagine:(?P<action>reroll|edit|vary|upscale):(?P<job_id>[0-9]{1,19})"
FOLLOWUPS = (
    (Action.REROLL, "button-reroll", "🔁"),
    (Action.EDIT, "button-edit", "✏️"),
    (Action.VARY, "button-vary", "🎲"),
    (Action.UPSCALE, "button-upscale", "⬆️"),
)
NEXT_TIER = {"1K": "2K", "2K": "4K"}
FOLLOWUP_ACTIONS = {Action.REROLL.value, Action.EDIT.value, Action.VARY.value, Action.UPSCALE.value}


def result_controls(t: Texts, job: JobRecord) -> discord.ui.View:
    """Re-roll, Edit, Vary and Upscale (not at 4K, the highest tier) under a finished image."""
    view = Controls(timeout=None)
    for action, label, emoji in FOLLOWUPS:
        if action is Action.UPSCALE and job.resolution not in NEXT_TIER:
            continue
        custom_id = FOLLOWUP_ID.format(action=action.value, job_id=job.id)
        view.add_item(
            discord.ui.Button(label=t(label), emoji=emoji, style=discord.ButtonStyle.secondary, custom_id=custom_id)
        )
    return view


def message_link(guild_id: int | None, channel_id: int, message_id: int) -> str:
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"


def origin_line(t: Texts, job: JobRecord, parent: JobRecord | None) -> str | None:
    """ "Edit of <link>" for a job made by a button under another image; ``None`` otherwise."""
    if job.action not in FOLLOWUP_ACTIONS or job.parent_job_id is None:
        return None
    if parent is not None and parent.message_id is not None:
        link = message_link(parent.guild_id, parent.channel_id, parent.message_id)
        return t("job-origin-link", action=job.action, parent=str(parent.id), link=link)
    return t("job-origin", action=job.action, parent=str(job.parent_job_id))


def controls(t: Texts, job: JobRecord) -> discord.ui.View:
    """A job's controls while it runs: a Cancel button (removed with the final state)."""
    view = Controls(timeout=None)
    view.add_item(
        discord.ui.Button(
            label=t("button-cancel"),
            style=discord.ButtonStyle.secondary,
            custom_id=CANCEL_BUTTON_ID.format(job_id=job.id),
        )
    )
    return view


PROMPT_PREVIEW = 1000
COLOR_ACTIVE = discord.Colour.blurple()
COLOR_DONE = discord.Colour.green()
COLOR_FAILED = discord.Colour.red()
COLOR_CANCELLED = discord.Colour.dark_grey()

FAILURE_KEYS = {
    FailureReason.CONTENT_BLOCKED: "failure-content-blocked",
    FailureReason.INVALID_REQUEST: "failure-invalid-request",
    FailureReason.UPSTREAM_TIMEOUT: "failure-upstream-timeout",
    FailureReason.UPSTREAM_FAILED: "failure-upstream-failed",
    FailureReason.UPSTREAM_UNAVAILABLE: "failure-upstream-unavailable",
    FailureReason.ACCOUNT_PROBLEM: "failure-account-problem",
    FailureReason.INTERRUPTED: "failure-interrupted",
    FailureReason.NO_IMAGE: "failure-no-image",
    FailureReason.INVALID_REFERENCE: "failure-invalid-reference",
    FailureReason.SUBMIT_UNCERTAIN: "failure-submit-uncertain",
    FailureReason.DELIVERY_FAILED: "failure-delivery-failed",
    FailureReason.RESULT_UNAVAILABLE: "failure-result-unavailable",
    FailureReason.LOST_UPSTREAM: "failure-lost-upstream",
}
STAGES = {JobState.PENDING: "pending", JobState.QUEUED: "queued", JobState.RUNNING: "running"}


def safe(text: str, limit: int | None = None) -> str:
    """Text from members, made inert: no mention can ping, and it fits where it goes."""
    cleaned = discord.utils.escape_mentions(text)
    if limit is not None and len(cleaned) > limit:
        cleaned = cleaned[: limit - 1] + "…"
    return cleaned


def duration(t: Texts, seconds: float) -> str:
    seconds = max(0, round(seconds))
    minutes, secs = divmod(seconds, 60)
    return t("duration-minutes", minutes=minutes, seconds=secs) if minutes else t("duration-seconds", seconds=secs)


def size_text(t: Texts, size: int) -> str:
    if size >= 1024 * 1024:
        return t("size-mib", value=round(size / (1024 * 1024), 1))
    return t("size-kib", value=round(size / 1024))


def _base(t: Texts, job: JobRecord, title: str, colour: discord.Colour, origin: str | None) -> discord.Embed:
    embed = discord.Embed(title=title, description=safe(job.prompt, PROMPT_PREVIEW), colour=colour)
    if origin:
        embed.add_field(name=t("job-field-from"), value=origin, inline=False)
    ratio = job.aspect_ratio or (t("job-aspect-follows") if job.image_urls else "1:1")
    embed.add_field(name=t("job-field-aspect"), value=ratio)
    embed.add_field(name=t("job-field-resolution"), value=job.resolution)
    embed.add_field(name=t("job-field-references"), value=str(job.reference_count))
    return embed


def status_line(t: Texts, progress: Progress) -> str:
    if progress.cancelling:
        return t("status-cancelling")
    match progress.state:
        case JobState.PENDING:
            return t("status-sending")
        case JobState.QUEUED if progress.queue_position:
            return t("status-queued", position=progress.queue_position)
        case JobState.QUEUED:
            return t("status-waiting", since=timestamp(progress.phase_since))
        case JobState.RUNNING:
            return t("status-generating", since=timestamp(progress.phase_since))
        case _:
            return t("status-finishing")


BAR_CELLS = 10


def timestamp(at: float) -> str:
    """A time the member's Discord shows relative to now ("12 seconds ago", "in 8 seconds") in their
    own language, and keeps counting without an edit."""
    return f"<t:{round(at)}:R>"


def estimate_line(t: Texts, progress: Progress) -> str | None:
    """A small bar (as of the edit) and the learned end, which counts down by itself."""
    if progress.remaining is None or progress.fraction is None or progress.cancelling:
        return None
    filled = min(BAR_CELLS - 1, int(progress.fraction * BAR_CELLS))
    bar = "▰" * filled + "▱" * (BAR_CELLS - filled)
    ends_at = progress.ends_at
    left = t("estimate-soon") if ends_at is None else t("estimate-at", at=timestamp(ends_at))
    return f"{bar} {left}"


def progress_embed(t: Texts, job: JobRecord, progress: Progress, origin: str | None = None) -> discord.Embed:
    embed = _base(t, job, t("job-title-active"), COLOR_ACTIVE, origin)
    embed.add_field(name=t("job-field-status"), value=status_line(t, progress), inline=False)
    if (estimate := estimate_line(t, progress)) is not None:
        embed.add_field(name=t("job-field-estimate"), value=estimate, inline=False)
    if progress.notice:
        embed.add_field(name=t("job-field-note"), value=t(progress.notice), inline=False)
    embed.set_footer(text=t("job-footer-active"))
    return embed


def delivered_embed(t: Texts, job: JobRecord, delivery: Delivery, origin: str | None = None) -> discord.Embed:
    embed = _base(t, job, t("job-title-done"), COLOR_DONE, origin)
    embed.add_field(name=t("job-field-took"), value=duration(t, delivery.took))
    note = fitting_note(t, delivery.image)
    if note:
        embed.add_field(name=t("job-field-note"), value=note, inline=False)
    if delivery.late_cancel:
        embed.add_field(name=t("job-field-cancel"), value=t("job-late-cancel"), inline=False)
    if delivery.text:
        embed.add_field(name=t("job-field-model-reply"), value=safe(delivery.text, 1024), inline=False)
    embed.set_image(url=f"attachment://{delivery.image.filename}")
    embed.set_footer(text=t("job-footer-done"))
    return embed


def fitting_note(t: Texts, image: FittedImage) -> str | None:
    if not image.reencoded and not image.downscaled:
        return None
    parts = [t("fit-note", original=size_text(t, image.original_size), now=size_text(t, len(image.data)))]
    if image.reencoded:
        parts.append(t("fit-note-format", format=image.filename.rsplit(".", 1)[-1].upper()))
    if image.downscaled:
        parts.append(t("fit-note-size", width=str(image.width), height=str(image.height)))
    return " ".join(parts)


def failed_embed(t: Texts, job: JobRecord, failure: Failure, origin: str | None = None) -> discord.Embed:
    embed = _base(t, job, t("job-title-failed"), COLOR_FAILED, origin)
    embed.add_field(name=t("job-field-what-happened"), value=t(FAILURE_KEYS[failure.reason]), inline=False)
    embed.set_footer(text=t("job-footer-not-counted"))
    return embed


def cancelled_embed(t: Texts, job: JobRecord, cancelled: Cancelled, origin: str | None = None) -> discord.Embed:
    embed = _base(t, job, t("job-title-cancelled"), COLOR_CANCELLED, origin)
    stage = STAGES.get(cancelled.stage, "running")
    if cancelled.by is None:
        text = t("cancelled-by-service", stage=stage)
    elif cancelled.by != job.user_id:
        text = t("cancelled-by", stage=stage, by=f"<@{cancelled.by}>")
    else:
        text = t("cancelled-self", stage=stage)
    embed.add_field(name=t("job-field-status"), value=text, inline=False)
    embed.set_footer(text=t("job-footer-cancelled"))
    return embed


def refusal_text(t: Texts, refusal: QuotaRefusal, reset_at: float) -> str:
    if refusal.limit is LimitKind.MAX_CONCURRENT:
        return t("refusal-max-concurrent", allowed=refusal.allowed)
    limit = "guild" if refusal.limit is LimitKind.GUILD_DAILY else "user"
    parts = [t("refusal-daily", limit=limit, used=refusal.used, allowed=refusal.allowed)]
    if refusal.cost > 1:
        parts.append(t("refusal-cost", cost=refusal.cost))
    parts.append(t("refusal-resets", at=str(int(reset_at))))
    return " ".join(parts)
