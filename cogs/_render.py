"""What members see: embeds for every job state, and the short messages for every refusal."""

from __future__ import annotations

import discord

from bot.events import Cancelled, Delivery, Failure, Progress
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
    (Action.REROLL, "Re-roll", "🔁"),
    (Action.EDIT, "Edit", "✏️"),
    (Action.VARY, "Vary", "🎲"),
    (Action.UPSCALE, "Upscale", "⬆️"),
)
NEXT_TIER = {"1K": "2K", "2K": "4K"}
ORIGIN_TEXT = {
    Action.REROLL.value: "Re-roll of",
    Action.EDIT.value: "Edit of",
    Action.VARY.value: "Variation of",
    Action.UPSCALE.value: "Upscale of",
}


def result_controls(job: JobRecord) -> discord.ui.View:
    """Re-roll, Edit, Vary and Upscale (not at 4K, the highest tier) under a finished image."""
    view = Controls(timeout=None)
    for action, label, emoji in FOLLOWUPS:
        if action is Action.UPSCALE and job.resolution not in NEXT_TIER:
            continue
        custom_id = FOLLOWUP_ID.format(action=action.value, job_id=job.id)
        view.add_item(
            discord.ui.Button(label=label, emoji=emoji, style=discord.ButtonStyle.secondary, custom_id=custom_id)
        )
    return view


def message_link(guild_id: int | None, channel_id: int, message_id: int) -> str:
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"


def origin_line(job: JobRecord, parent: JobRecord | None) -> str | None:
    """ "Edit of <link>" for a job made by a button under another image; ``None`` otherwise."""
    what = ORIGIN_TEXT.get(job.action or "")
    if what is None or job.parent_job_id is None:
        return None
    if parent is not None and parent.message_id is not None:
        return f"{what} [image #{parent.id}]({message_link(parent.guild_id, parent.channel_id, parent.message_id)})"
    return f"{what} image #{job.parent_job_id}"


def controls(job: JobRecord) -> discord.ui.View:
    """A job's controls while it runs: a Cancel button (removed with the final state)."""
    view = Controls(timeout=None)
    view.add_item(
        discord.ui.Button(
            label="Cancel", style=discord.ButtonStyle.secondary, custom_id=CANCEL_BUTTON_ID.format(job_id=job.id)
        )
    )
    return view


PROMPT_PREVIEW = 1000
COLOR_ACTIVE = discord.Colour.blurple()
COLOR_DONE = discord.Colour.green()
COLOR_FAILED = discord.Colour.red()
COLOR_CANCELLED = discord.Colour.dark_grey()

FAILURE_TEXT = {
    FailureReason.CONTENT_BLOCKED: "The image service blocked this prompt or a reference image. Try rewording it.",
    FailureReason.INVALID_REQUEST: "The image service refused the request (a reference image may be unreadable).",
    FailureReason.UPSTREAM_TIMEOUT: "The image service took too long, so the job was stopped. Please try again.",
    FailureReason.UPSTREAM_FAILED: "The image service failed to generate this image. Please try again.",
    FailureReason.UPSTREAM_UNAVAILABLE: "The image service is unavailable right now. Please try again later.",
    FailureReason.ACCOUNT_PROBLEM: "The bot can't use the image service right now (a problem with the bot's account). "
    "Its operator can see the details in the bot's logs.",
    FailureReason.INTERRUPTED: "The bot restarted while sending this request and can't tell whether the image "
    "service got it, so it stopped here rather than risk a second charge. Please try again.",
    FailureReason.NO_IMAGE: "The image service finished without returning an image. Please try again.",
    FailureReason.INVALID_REFERENCE: "A reference image could no longer be read after the bot restarted. "
    "Please try again.",
    FailureReason.SUBMIT_UNCERTAIN: "The image service did not confirm the request, so the bot stopped here. "
    "Please try again.",
    FailureReason.DELIVERY_FAILED: "The image was made but could not be posted here. Please try again.",
    FailureReason.RESULT_UNAVAILABLE: "The image was made but could not be fetched. Please try again.",
    FailureReason.LOST_UPSTREAM: "The image service lost track of this job. Please try again.",
}
STAGE_TEXT = {
    JobState.PENDING: "before it was sent",
    JobState.QUEUED: "while queued",
    JobState.RUNNING: "while generating",
}
LIMIT_TEXT = {
    LimitKind.USER_DAILY: "your daily image limit in this server",
    LimitKind.GUILD_DAILY: "this server's daily image limit",
    LimitKind.MAX_CONCURRENT: "the number of images you may have in progress at once",
}


def safe(text: str, limit: int | None = None) -> str:
    """Text from members, made inert: no mention can ping, and it fits where it goes."""
    cleaned = discord.utils.escape_mentions(text)
    if limit is not None and len(cleaned) > limit:
        cleaned = cleaned[: limit - 1] + "…"
    return cleaned


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    minutes, secs = divmod(seconds, 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def size_text(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KiB"


def _base(job: JobRecord, title: str, colour: discord.Colour, origin: str | None) -> discord.Embed:
    embed = discord.Embed(title=title, description=safe(job.prompt, PROMPT_PREVIEW), colour=colour)
    if origin:
        embed.add_field(name="From", value=origin, inline=False)
    ratio = job.aspect_ratio or ("follows the reference" if job.image_urls else "1:1")
    embed.add_field(name="Aspect ratio", value=ratio)
    embed.add_field(name="Resolution", value=job.resolution)
    embed.add_field(name="References", value=str(job.reference_count))
    return embed


def status_line(progress: Progress) -> str:
    if progress.cancelling:
        return "Cancelling…"
    match progress.state:
        case JobState.PENDING:
            return "Sending to the image service…"
        case JobState.QUEUED if progress.queue_position:
            return f"Queued, position {progress.queue_position}"
        case JobState.QUEUED:
            return f"Waiting for the image service · {duration(progress.elapsed)}"
        case JobState.RUNNING:
            return f"Generating · {duration(progress.elapsed)}"
        case _:
            return "Finishing…"


BAR_CELLS = 10


def estimate_line(progress: Progress) -> str | None:
    """A small bar and the learned time left, rounded so that it does not change every second."""
    if progress.remaining is None or progress.fraction is None or progress.cancelling:
        return None
    filled = min(BAR_CELLS - 1, int(progress.fraction * BAR_CELLS))
    bar = "▰" * filled + "▱" * (BAR_CELLS - filled)
    seconds = progress.remaining
    if seconds < 5:
        left = "any moment now"
    elif seconds < 60:
        left = f"about {int(5 * round(seconds / 5))} s left"
    else:
        left = f"about {round(seconds / 60)} min left"
    return f"{bar} {left}"


def progress_embed(job: JobRecord, progress: Progress, origin: str | None = None) -> discord.Embed:
    embed = _base(job, "🎨 Imagining…", COLOR_ACTIVE, origin)
    embed.add_field(name="Status", value=status_line(progress), inline=False)
    if (estimate := estimate_line(progress)) is not None:
        embed.add_field(name="Estimate", value=estimate, inline=False)
    if progress.notice:
        embed.add_field(name="Note", value=progress.notice, inline=False)
    embed.set_footer(text=f"Press Cancel, react with {CANCEL_EMOJI} or use /cancel to stop it.")
    return embed


def delivered_embed(job: JobRecord, delivery: Delivery, origin: str | None = None) -> discord.Embed:
    embed = _base(job, "✅ Done", COLOR_DONE, origin)
    embed.add_field(name="Took", value=duration(delivery.took))
    note = fitting_note(delivery.image)
    if note:
        embed.add_field(name="Note", value=note, inline=False)
    if delivery.late_cancel:
        embed.add_field(
            name="Cancel",
            value="Your cancel came too late: the image was already finished (and paid for).",
            inline=False,
        )
    if delivery.text:
        embed.add_field(name="Model's reply", value=safe(delivery.text, 1024), inline=False)
    embed.set_image(url=f"attachment://{delivery.image.filename}")
    embed.set_footer(text=f"{CANCEL_EMOJI} no longer applies: this job is finished.")
    return embed


def fitting_note(image: FittedImage) -> str | None:
    if not image.reencoded and not image.downscaled:
        return None
    parts = [f"Shrunk from {size_text(image.original_size)} to {size_text(len(image.data))}"]
    if image.reencoded:
        parts.append(f"as {image.filename.rsplit('.', 1)[-1].upper()}")
    if image.downscaled:
        parts.append(f"at {image.width}×{image.height}")
    return " ".join(parts) + " to fit Discord's upload limit."


def failed_embed(job: JobRecord, failure: Failure, origin: str | None = None) -> discord.Embed:
    embed = _base(job, "⚠️ No image this time", COLOR_FAILED, origin)
    embed.add_field(name="What happened", value=FAILURE_TEXT[failure.reason], inline=False)
    embed.set_footer(text="This did not count against your quota.")
    return embed


def cancelled_embed(job: JobRecord, cancelled: Cancelled, origin: str | None = None) -> discord.Embed:
    embed = _base(job, "🛑 Cancelled", COLOR_CANCELLED, origin)
    who = f" by <@{cancelled.by}>" if cancelled.by and cancelled.by != job.user_id else ""
    if cancelled.by is None:
        text = f"The image service cancelled this job {STAGE_TEXT.get(cancelled.stage, '')}."
    else:
        text = f"Cancelled{who} {STAGE_TEXT.get(cancelled.stage, '')}."
    embed.add_field(name="Status", value=text.replace(" .", "."), inline=False)
    embed.set_footer(text=f"{CANCEL_EMOJI} no longer applies. This did not count against your quota.")
    return embed


def refusal_text(refusal: QuotaRefusal, reset_at: float) -> str:
    what = LIMIT_TEXT[refusal.limit]
    if refusal.limit is LimitKind.MAX_CONCURRENT:
        return f"You've reached {what} ({refusal.allowed}). Wait for one to finish, or cancel one with /cancel."
    cost = f" This one would count as {refusal.cost}." if refusal.cost > 1 else ""
    return (
        f"You've reached {what}: {refusal.used} of {refusal.allowed} used today.{cost} "
        f"It resets <t:{int(reset_at)}:R> (<t:{int(reset_at)}:t>, midnight UTC)."
    )


# -- server controls (/settings) ----------------------------------------------------------------------
# Every text of the server controls, by key: refusals members see, the lines posted to a server's log
# channel, and the answers of /settings. Placeholders are str.format fields.
CONTROLS_TEXT = {
    # Refusals of /imagine and the buttons (nothing is reserved or submitted).
    "refused.blocked_member": "You can't make images in this server: an admin has blocked you.",
    "refused.blocked_words": "Your prompt contains a word or phrase that this server doesn't allow. "
    "Please rephrase it; nothing was counted.",
    "refused.4k_off": "4K is turned off in this server. Choose 1K or 2K; nothing was counted.",
    "refused.4k_roles": "4K is only for some roles in this server. Choose 1K or 2K; nothing was counted.",
    # Lines in the log channel (mentions there never ping).
    "log.blocked_member": "🚫 {member} is blocked and tried to make an image in {channel}.",
    "log.blocked_words": "🚫 {member}'s prompt in {channel} was refused: it contains a blocked word or phrase.",
    "log.quota.user_daily": "📉 {member} reached their daily limit in {channel} ({used} of {allowed} used).",
    "log.quota.guild_daily": "📉 {member} was refused in {channel}: the server's daily limit is reached "
    "({used} of {allowed} used).",
    "log.quota.max_concurrent": "📉 {member} was refused in {channel}: {allowed} image(s) in progress at once.",
    "log.failed": "⚠️ Image #{job} by {member} in {channel} failed ({reason}).",
    # /usage
    "usage.blocked": "You can't make images in this server: an admin has blocked you.",
    "usage.from_role": "Your daily limit comes from your role {role}.",
    "usage.from_member": "Your daily limit was set for you by an admin.",
    # /quota show
    "quota.footer": "Role and member limits, blocked members, 4K access and blocked words: /settings show",
    # /settings: permission, bad input
    "not_manager": "Only members with the Manage Server permission can change or view these settings.",
    "guild_only": "This command works only in a server, not in direct messages.",
    "daily_range": "The daily limit must be a whole number from 0 (no limit) to {max:,}. Nothing was changed.",
    "role_gone": "That role no longer exists in this server. Nothing was changed.",
    "role_everyone": "@everyone can't have a limit of its own: use /quota set user_daily for every member.",
    "role_everyone_4k": "@everyone can't be listed: use /settings 4k access who:Everyone to open 4K to all.",
    "remove_what": "Name a role or a member whose limit to remove.",
    "4k_unknown": "Choose Everyone, Only the listed roles, or Nobody.",
    "words_empty": "Give one or more words or phrases, separated by commas.",
    "word_too_long": "Each entry may be at most {max} characters; one has {length}. Nothing was changed.",
    "word_no_letters": "Each entry needs at least one letter or digit. Nothing was changed.",
    "words_full": "The list can hold {max} entries. It has {count}, and this would add {adding}. Nothing was "
    "added: remove some first with /settings words remove.",
    "log_channel_no_access": "I can't post in {channel}: I need View Channel and Send Messages there. "
    "Nothing was changed.",
    # /settings: confirmations
    "role_limit_set": "Members with {role} may now make {daily} a day (the highest of a member's roles "
    "counts; a member's own limit wins).",
    "member_limit_set": "{member} may now make {daily} a day, whatever their roles.",
    "role_limit_removed": "{role} has no limit of its own any more.",
    "role_limit_absent": "{role} had no limit of its own.",
    "member_limit_removed": "{member} has no limit of their own any more.",
    "member_limit_absent": "{member} had no limit of their own.",
    "blocked": "{member} is blocked: they can't make images in this server until you run /settings unblock.",
    "already_blocked": "{member} was already blocked.",
    "unblocked": "{member} is no longer blocked.",
    "not_blocked": "{member} wasn't blocked.",
    "4k_everyone": "Everyone may use 4K.",
    "4k_off": "4K is off in this server.",
    "4k_roles": "Only these roles may use 4K: {roles}.",
    "4k_roles_none": "Only listed roles may use 4K, and none is listed yet: add one with /settings 4k add.",
    "4k_role_added_off": "{role} is listed, but 4K is off in this server: run /settings 4k access to turn it on.",
    "4k_role_absent": "{role} wasn't listed.",
    "words_added": "Added {added} to the blocked list ({present} already on it). It has {total} entries.",
    "words_removed": "Removed {removed} from the blocked list. It has {total} entries.",
    "words_none_removed": "None of those is on the blocked list.",
    "words_list_empty": "No words or phrases are blocked in this server.",
    "words_list": "Blocked words and phrases ({count}):\n{words}",
    "words_list_file": "Blocked words and phrases ({count}): the list is attached.",
    "log_channel_set": "Refusals and failures worth your attention will be posted in {channel}.",
    "log_channel_off": "Refusals and failures are no longer posted in a channel.",
    # /settings show
    "show.title": "Server settings",
    "show.default": "Daily limit per member (default)",
    "show.roles": "Role limits",
    "show.members": "Member limits",
    "show.blocked": "Blocked members",
    "show.4k": "4K",
    "show.words": "Blocked words",
    "show.log": "Log channel",
    "show.none": "none",
    "show.more": "… and {count} more",
    "show.words_count": "{count} entries (see them with /settings words list)",
    "show.by": "{what} · by {by} <t:{at}:R>",
    "show.footer": "A member's own limit wins over their roles; the highest role limit wins over the default. "
    "The server's daily limit and the in-progress limit apply to everyone.",
    "no_limit": "no limit",
    "per_day": "{count} a day",
}
