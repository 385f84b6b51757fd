"""Keeps each job's reply message in step with the job: the Discord side of the tracker.

- Progress edits are coalesced per message: only the latest state is sent, one edit at a time,
  at most one every ``min_edit_gap`` seconds, so a busy job never draws a 429.
- While the interaction token is valid, edits go through it; after it expires (or Discord says it
  is dead, 401/50027), they go through the channel-message endpoint with the bot token.
- A reply whose message id was never stored (the bot stopped between its "thinking…" answer and
  its first edit) is found through the interaction token (``@original``) while the token lives.
- If the reply is gone (or never existed), the job's end is posted as a new message that mentions
  the requester; a job that never had a reply gets one as soon as it shows progress.
- ``publish`` of a final state raises only when the member could not be told *yet*; when the
  channel can no longer be reached (deleted, or the bot lost access to it), there is nobody to tell
  and it returns (except for an image, which must never count as shown when it was not). Progress
  edits stop for a reply whose channel is unreachable; its final state is still tried on the reply.
- Discord calls are a budget (:mod:`cogs._budget`): through the bot token, a final state waits for
  its channel's turn while a progress refresh is skipped when the channel has no room; the bot's
  own ❌ is added (and later removed) only when the channel's reaction budget has room, never
  retried. The Cancel button travels in the same edits (no extra call) and goes with the final state.
- Where the bot may no longer embed (it lost Send Messages or Embed Links, so Discord drops the
  embed from an edit), a failure or a cancel is shown as plain text in the reply instead.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import io
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import discord

from bot.events import Cancelled, Delivery, Failure, JobEvent, Progress
from bot.i18n import Texts
from bot.imaging import fit_image
from bot.models import JobRecord
from cogs import _render
from cogs._budget import CHANNEL_EDITS, REACTIONS, TOKEN_EDITS, CallBudget

if TYPE_CHECKING:
    from bot.app import ImagineBot

log = logging.getLogger(__name__)

# Switch to the bot-token path this long before the 15-minute token actually dies.
TOKEN_MARGIN = 30.0
DEAD_TOKEN_CODES = {50027, 10015}
UNKNOWN_MESSAGE = 10008
# "Cannot send an empty message": what an edit of an embed-only reply answers when Discord dropped
# its embed (no Embed Links, or no Send Messages, which implicitly denies Embed Links).
EMPTY_MESSAGE = 50006
# Missing Access, Missing Permissions, Unknown Channel, Unknown Guild: retrying only earns 403s,
# which count towards Discord's invalid-request ban.
UNREACHABLE_CODES = {50001, 50013, 10003, 10004}
# One Discord call (with discord.py's own retries) may not hold a reply's lock longer than this.
CALL_TIMEOUT = 30.0
FINISHED_MEMORY = 10_000


class ReplyGoneError(Exception):
    """The job's reply message no longer exists."""


class ChannelUnreachableError(Exception):
    """The bot can no longer reach the reply's channel (removed from the server, or lost access)."""


class NoBudgetError(Exception):
    """A progress refresh through the bot token found its channel's edit budget spent: skipped."""


@contextlib.asynccontextmanager
async def _unreachable_on_refusal() -> AsyncIterator[None]:
    """Turn Discord's "you can't reach this channel" answers into :class:`ChannelUnreachableError`."""
    try:
        yield
    except discord.HTTPException as exc:
        if exc.status == 403 or exc.code in UNREACHABLE_CODES:
            raise ChannelUnreachableError from exc
        raise


def _plain_text(embed: discord.Embed) -> str:
    """The gist of a final embed in words, for a reply where the bot may no longer embed."""
    lines = [embed.title or ""]
    lines += [f"{field.value}" for field in embed.fields if not field.inline]
    lines.append(embed.footer.text or "")
    return "\n".join(line for line in lines if line)


class ReplyPresenter:
    """Implements :class:`bot.tracker.JobPresenter` for Discord."""

    def __init__(self, bot: ImagineBot, *, min_edit_gap: float = 1.0) -> None:
        self._bot = bot
        self._min_edit_gap = min_edit_gap
        self._latest: dict[int, tuple[JobRecord, Progress]] = {}
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        # Jobs whose final state is shown: late progress for them is dropped. Bounded, oldest first out.
        self._finished: dict[int, None] = {}
        # Replies deleted mid-job: the job's end is posted anew.
        self._gone: set[int] = set()
        # Replies whose channel could not be reached: no more progress edits (each would be another 403).
        self._unreachable: set[int] = set()
        # When each reply was last edited, as many as Discord allows per token in its window.
        self._recent_edits: dict[int, collections.deque[float]] = {}
        self._last_embed: dict[int, dict[str, Any]] = {}
        self.budget = CallBudget()
        # Replies the bot put its own ❌ on (so it knows which to take back).
        self._reacted: set[int] = set()
        # New replies whose first edit is still to come (see show_first).
        self._fresh: set[int] = set()
        # "Edit of <link>" lines of running jobs made from another image (looked up once per job).
        self._origins: dict[int, str | None] = {}

    async def publish(self, job: JobRecord, event: JobEvent) -> None:
        if isinstance(event, Progress):
            if job.id in self._finished:
                return
            self._latest[job.id] = (job, event)
            if job.id not in self._workers:
                self._workers[job.id] = asyncio.create_task(self._progress_worker(job.id), name=f"reply-{job.id}")
            return
        self._finished[job.id] = None
        while len(self._finished) > FINISHED_MEMORY:
            del self._finished[next(iter(self._finished))]
        self._latest.pop(job.id, None)
        if (worker := self._workers.pop(job.id, None)) is not None:
            worker.cancel()  # a stale progress edit must not hold up the final state
        try:
            async with self._lock(job.id):
                await self._token_room(job.id)
                await self._final(job, event)
        finally:
            self._locks.pop(job.id, None)
            self._gone.discard(job.id)
            self._unreachable.discard(job.id)
            self._recent_edits.pop(job.id, None)
            self._last_embed.pop(job.id, None)
            self._reacted.discard(job.id)
            self._fresh.discard(job.id)
            self._origins.pop(job.id, None)

    async def shows_image(self, job: JobRecord) -> bool:
        """Whether the job's reply already carries an image (a delivery whose answer was lost)."""
        try:
            async with asyncio.timeout(CALL_TIMEOUT):
                if self._token_alive(job):
                    assert job.application_id is not None and job.interaction_token is not None
                    message_id = job.message_id or await self._original_id(job)
                    hook = discord.Webhook.partial(job.application_id, job.interaction_token, client=self._bot)
                    message: discord.Message = await hook.fetch_message(message_id)
                elif job.message_id is not None:
                    message = await self._bot.get_partial_messageable(job.channel_id).fetch_message(job.message_id)
                else:
                    return False
        except (discord.NotFound, ReplyGoneError):
            return False
        return bool(message.attachments)

    async def show_first(self, job: JobRecord, progress: Progress, *, after: float) -> None:
        """A new reply: show ``progress`` in place of "thinking…" if, ``after`` seconds on, nothing
        else was shown yet. Usually the job's next state (queued, once the submit is answered) comes
        first, and this costs no edit; the bot's own ❌ goes on with whichever edit is first."""
        self._fresh.add(job.id)
        await asyncio.sleep(after)
        if job.id not in self._fresh or job.id in self._finished or job.id in self._gone | self._unreachable:
            return
        await self.show_now(job, progress)

    async def show_now(self, job: JobRecord, progress: Progress) -> None:
        """Replace the "thinking…" state at once (the first edit of a new reply), inside the pacing."""
        async with self._lock(job.id):
            if job.id in self._finished:
                return
            self._fresh.discard(job.id)
            t = self._bot.job_texts(job)
            embed = _render.progress_embed(t, job, progress, await self._origin(job))
            try:
                await self._edit(job, embed=embed, view=_render.controls(t, job))
                self._last_embed[job.id] = embed.to_dict()  # type: ignore[assignment]
            finally:
                self._edited(job.id)
        await self._add_cancel_control(job)

    async def close(self) -> None:
        workers = list(self._workers.values())
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    async def _origin(self, job: JobRecord) -> str | None:
        if job.parent_job_id is None:
            return None
        if job.id not in self._origins:
            parent = await self._bot.store.get_job(job.parent_job_id)
            self._origins[job.id] = _render.origin_line(self._bot.job_texts(job), job, parent)
        return self._origins[job.id]

    def _lock(self, job_id: int) -> asyncio.Lock:
        return self._locks.setdefault(job_id, asyncio.Lock())

    async def _pace(self, job_id: int) -> None:
        """Wait until this reply's last edit is at least ``min_edit_gap`` seconds old, and there is
        room in Discord's limit on its edits."""
        recent = self._recent_edits.get(job_id)
        if recent:
            wait = self._min_edit_gap - (asyncio.get_running_loop().time() - recent[-1])
            if wait > 0:
                await asyncio.sleep(wait)
        await self._token_room(job_id)

    async def _token_room(self, job_id: int) -> None:
        """Wait, when this reply was edited as often as Discord allows per interaction token lately,
        for the oldest of those edits to age out (the final state waits for this only, not for
        ``min_edit_gap``)."""
        recent = self._recent_edits.get(job_id)
        if recent is not None and len(recent) >= TOKEN_EDITS.calls:
            wait = recent[0] + TOKEN_EDITS.per - asyncio.get_running_loop().time()
            if wait > 0:
                await asyncio.sleep(wait)

    def _edited(self, job_id: int) -> None:
        recent = self._recent_edits.setdefault(job_id, collections.deque(maxlen=TOKEN_EDITS.calls))
        recent.append(asyncio.get_running_loop().time())

    async def _progress_worker(self, job_id: int) -> None:
        try:
            while (item := self._latest.pop(job_id, None)) is not None:
                await self._pace(job_id)
                job, progress = self._latest.pop(job_id, item)  # a newer state may have arrived meanwhile
                async with self._lock(job_id):
                    if job_id in self._finished or job_id in self._gone or job_id in self._unreachable:
                        return
                    await self._edit_progress(job, progress)
        finally:
            # Synchronously with the loop's last check of _latest: a publish can't slip in between.
            self._workers.pop(job_id, None)

    async def _edit_progress(self, job: JobRecord, progress: Progress) -> None:
        t = self._bot.job_texts(job)
        embed = _render.progress_embed(t, job, progress, await self._origin(job))
        if self._last_embed.get(job.id) == embed.to_dict():
            return  # nothing visible changed
        try:
            await self._edit(job, embed=embed, view=_render.controls(t, job), progress=True)
            self._last_embed[job.id] = embed.to_dict()  # type: ignore[assignment]
            if job.id in self._fresh:  # the first edit of a new reply
                self._fresh.discard(job.id)
                await self._add_cancel_control(job)
        except NoBudgetError:
            self._latest.setdefault(job.id, (job, progress))  # try again after the next pause
        except ReplyGoneError:
            if job.message_id is None:
                # It never had a reply (the bot stopped before answering): give it one now.
                try:
                    # A message no interaction started speaks the server's language.
                    server = self._bot.job_texts(job, server=True)
                    embed = _render.progress_embed(server, job, progress, await self._origin(job))
                    content = server("job-on-its-way", member=f"<@{job.user_id}>")
                    await self._post_new(job, embed, None, content=content, view=_render.controls(server, job))
                    self._last_embed[job.id] = embed.to_dict()  # type: ignore[assignment]
                except Exception as exc:
                    log.warning("job %d: could not post a reply: %s", job.id, exc)
                return
            self._gone.add(job.id)
            log.info("job %d: its reply was deleted; the result will be posted anew", job.id)
        except ChannelUnreachableError:
            self._unreachable.add(job.id)
            log.warning("job %d: the bot can no longer reach the reply's channel", job.id)
        except discord.HTTPException as exc:
            if exc.code == EMPTY_MESSAGE:  # Discord drops the embed here: every further edit would fail alike
                self._unreachable.add(job.id)
            log.warning("job %d: status edit failed: %s", job.id, exc)
        except Exception as exc:  # a status refresh is never worth more than a log line
            log.warning("job %d: status edit failed: %s", job.id, exc)
        finally:
            self._edited(job.id)

    async def _final_embed(self, t: Texts, job: JobRecord, event: JobEvent) -> discord.Embed:
        origin = await self._origin(job)
        if isinstance(event, Delivery):
            return _render.delivered_embed(t, job, event, origin)
        if isinstance(event, Failure):
            return _render.failed_embed(t, job, event, origin)
        assert isinstance(event, Cancelled)
        return _render.cancelled_embed(t, job, event, origin)

    async def _final(self, job: JobRecord, event: JobEvent) -> None:
        if isinstance(event, Progress):  # pragma: no cover - progress never reaches here
            return
        t = self._bot.job_texts(job)
        embed = await self._final_embed(t, job, event)
        file: discord.File | None = None
        if isinstance(event, Delivery):
            file = discord.File(io.BytesIO(event.image.data), filename=event.image.filename)
        try:
            try:
                if job.id in self._gone:
                    raise ReplyGoneError
                await self._edit_fitting(job, embed, event, file)
            except ReplyGoneError:
                if not isinstance(event, Delivery | Failure):
                    return  # a cancel nobody needs pinging for
                # A message no interaction started speaks the server's language. Posting it may
                # raise ChannelUnreachableError too (the channel went with the reply): see below.
                server = self._bot.job_texts(job, server=True)
                what = "job-here-is-your-image" if isinstance(event, Delivery) else "job-about-your-image"
                content = server(what, member=f"<@{job.user_id}>")
                view = _render.result_controls(server, job) if isinstance(event, Delivery) else None
                await self._post_new(job, await self._final_embed(server, job, event), file, content=content, view=view)
                return
            except discord.HTTPException as exc:
                if exc.code != EMPTY_MESSAGE or isinstance(event, Delivery):
                    raise
                # Discord dropped the embed (the bot may no longer embed here): say it in words.
                await self._edit(job, embed=None, content=_plain_text(embed), view=None)
        except ChannelUnreachableError:
            if isinstance(event, Delivery):
                raise  # an image that was not shown must not count as delivered
            log.warning("job %d: the reply's channel can't be reached; the member can't be told", job.id)
            return
        await self._clear_cancel_control(job)

    async def _edit_fitting(
        self, job: JobRecord, embed: discord.Embed, event: JobEvent, file: discord.File | None
    ) -> None:
        """The final edit (an image gets its buttons: re-roll, edit, vary, upscale); if Discord still
        finds the image too large (413), shrink it once more."""
        t = self._bot.job_texts(job)
        view = _render.result_controls(t, job) if isinstance(event, Delivery) else None
        try:
            await self._edit(job, embed=embed, file=file, view=view)
        except discord.HTTPException as exc:
            if exc.status != 413 or not isinstance(event, Delivery):
                raise
            limit = min(len(event.image.data) // 2, discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES)
            log.warning(
                "job %d: Discord refused a %d-byte image; retrying under %d", job.id, len(event.image.data), limit
            )
            smaller = await asyncio.to_thread(fit_image, event.image.data, limit, base_name="image")
            embed = _render.delivered_embed(t, job, replace(event, image=smaller), await self._origin(job))
            smaller_file = discord.File(io.BytesIO(smaller.data), filename=smaller.filename)
            await self._edit(job, embed=embed, file=smaller_file, view=view)

    async def _edit(
        self,
        job: JobRecord,
        *,
        embed: discord.Embed | None,
        view: discord.ui.View | None,
        file: discord.File | None = None,
        content: str | None = None,
        progress: bool = False,
    ) -> None:
        """Edit the reply. ``view``: its buttons (``None`` removes them); ``progress``: a refresh,
        skipped (:class:`NoBudgetError`) rather than queued when the bot-token budget is spent."""
        if job.message_id is None:  # a reply may have been found or posted since this record was read
            job = await self._bot.store.get_job(job.id) or job
        async with _unreachable_on_refusal():
            async with asyncio.timeout(CALL_TIMEOUT):
                await self._edit_once(job, embed=embed, view=view, file=file, content=content, progress=progress)

    def _token_alive(self, job: JobRecord) -> bool:
        return (
            job.interaction_token is not None
            and job.application_id is not None
            and job.token_expires_at is not None
            and self._bot.clock() < job.token_expires_at - TOKEN_MARGIN
        )

    async def _original_id(self, job: JobRecord) -> int:
        """The id of the interaction's original response (``@original``), recorded for later edits."""
        assert job.application_id is not None and job.interaction_token is not None
        route = discord.http.Route(
            "GET",
            "/webhooks/{application_id}/{token}/messages/@original",
            application_id=job.application_id,
            token=job.interaction_token,
        )
        try:
            data = await self._bot.http.request(route)
        except discord.NotFound as exc:  # never answered (10015), or deleted
            raise ReplyGoneError from exc
        message_id = int(data["id"])
        await self._set_reply(job, message_id=message_id, token_dead=False)
        log.info("job %d: found its reply through the interaction token", job.id)
        return message_id

    async def _edit_once(
        self,
        job: JobRecord,
        *,
        embed: discord.Embed | None,
        view: discord.ui.View | None,
        file: discord.File | None = None,
        content: str | None = None,
        progress: bool = False,
    ) -> None:
        attachments = [file] if file is not None else discord.utils.MISSING
        text = content if content is not None else discord.utils.MISSING
        none = discord.AllowedMentions.none()
        if job.message_id is None and not self._token_alive(job):
            raise ReplyGoneError
        if self._token_alive(job):
            assert job.application_id is not None and job.interaction_token is not None
            hook = discord.Webhook.partial(job.application_id, job.interaction_token, client=self._bot)
            try:
                message_id = job.message_id or await self._original_id(job)
                job = replace(job, message_id=message_id)
                await hook.edit_message(
                    message_id, content=text, embed=embed, attachments=attachments, view=view, allowed_mentions=none
                )
                return
            except discord.HTTPException as exc:
                if exc.code == UNKNOWN_MESSAGE:
                    raise ReplyGoneError from exc
                if exc.status not in (401, 404) and exc.code not in DEAD_TOKEN_CODES:
                    raise
                log.info("job %d: interaction token is no longer valid; editing with the bot token", job.id)
                await self._set_reply(job, message_id=None, token_dead=True)
                if file is not None:
                    file.reset()
        if job.message_id is None:
            raise ReplyGoneError
        key = ("edit", job.channel_id)
        if progress and not self.budget.try_take(key, CHANNEL_EDITS):
            raise NoBudgetError
        if not progress:
            await self.budget.take(key, CHANNEL_EDITS)
        message = self._bot.get_partial_messageable(job.channel_id).get_partial_message(job.message_id)
        try:
            await message.edit(content=text, embed=embed, attachments=attachments, view=view, allowed_mentions=none)
        except discord.NotFound as exc:
            if exc.code in UNREACHABLE_CODES:
                raise  # the channel is gone, not only the reply: ``_edit`` says so
            raise ReplyGoneError from exc

    async def _post_new(
        self,
        job: JobRecord,
        embed: discord.Embed,
        file: discord.File | None,
        *,
        content: str,
        view: discord.ui.View | None = None,
    ) -> None:
        """Post the job's reply anew in its channel, mentioning (and so notifying) the requester."""
        channel = self._bot.get_partial_messageable(job.channel_id)
        if file is not None:
            file.reset()
        async with _unreachable_on_refusal():
            message = await channel.send(
                content=content,
                embed=embed,
                file=file if file is not None else discord.utils.MISSING,
                view=view if view is not None else discord.utils.MISSING,
                allowed_mentions=discord.AllowedMentions(
                    users=[discord.Object(job.user_id)], everyone=False, roles=False
                ),
            )
        await self._set_reply(job, message_id=message.id, token_dead=True)

    async def _set_reply(self, job: JobRecord, *, message_id: int | None, token_dead: bool) -> None:
        """Record a new reply message and/or a dead token, and have the job's run read its row again."""
        await self._bot.store.set_reply(job.id, message_id=message_id, token_dead=token_dead, now=self._bot.clock())
        self._bot.tracker.changed(job.id)

    async def _add_cancel_control(self, job: JobRecord) -> None:
        """Put the bot's own ❌ on a new reply, so one click cancels; only when the channel's reaction
        budget has room (the Cancel button and members' own ❌ work without it), never retried."""
        if job.message_id is None:  # found through the interaction token since this record was read
            job = await self._bot.store.get_job(job.id) or job
        if job.message_id is None or job.status.is_terminal or job.id in self._finished:
            return
        if not self.budget.try_take(("react", job.channel_id), REACTIONS):
            log.debug("job %d: no reaction budget in the channel; no ❌ of the bot's own", job.id)
            return
        message = self._bot.get_partial_messageable(job.channel_id).get_partial_message(job.message_id)
        try:
            async with asyncio.timeout(CALL_TIMEOUT):
                await message.add_reaction(_render.CANCEL_EMOJI)
            self._reacted.add(job.id)
        except Exception as exc:
            log.debug("job %d: could not add the ❌: %s", job.id, exc)

    async def _clear_cancel_control(self, job: JobRecord) -> None:
        """Take the bot's ❌ back from a finished reply, when it is there and the budget has room."""
        if job.message_id is None or self._bot.user is None or job.id not in self._reacted:
            return
        if not self.budget.try_take(("react", job.channel_id), REACTIONS):
            return  # cosmetic: the embed already says ❌ no longer applies
        message = self._bot.get_partial_messageable(job.channel_id).get_partial_message(job.message_id)
        try:
            async with asyncio.timeout(CALL_TIMEOUT):
                await message.remove_reaction(_render.CANCEL_EMOJI, self._bot.user)
        except Exception as exc:
            log.debug("job %d: could not clear the cancel control: %s", job.id, exc)
