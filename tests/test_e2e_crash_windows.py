"""Each crash window of docs/crash-windows.md, through the fake Discord and the simulator.

A "crash" here stops the bot at an exact point: the step after it is made to hang, the bot is
closed (its in-memory state is lost, as in a kill), and a second bot starts on the same database.
What the first bot wrote before that point is all the second one has, as after a real kill.
``tests/test_chaos.py`` kills the real process at random moments.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.devtools.fakediscord import FakeDiscord, FakeInteraction, FakeMessage, wait_until
from bot.models import JobRecord, JobState
from bot.queue import QueueClient
from bot.simulator import Simulator, SimulatorOptions, run_simulator
from bot.storage.sqlite import SqliteStore
from cogs._reply import ReplyPresenter
from cogs.imagine import Imagine
from tests.harness import SIM_KEY, Rig, embed_text, png_bytes, running_bot


async def hang(*args: Any, **kwargs: Any) -> Any:
    """Stands for the instant of the kill: this step never completes."""
    await asyncio.Event().wait()


@dataclass
class World:
    fake: FakeDiscord
    sim: Simulator
    db: Path

    def bot(self, **overrides: Any) -> Any:
        return running_bot(self.fake, self.sim, self.db, **overrides)


@pytest.fixture
async def crash_world(tmp_path: Path) -> AsyncIterator[World]:
    async with (
        FakeDiscord() as fake,
        run_simulator(SimulatorOptions(api_key=SIM_KEY, job_duration=0.05)) as sim,
    ):
        yield World(fake, sim, tmp_path / "bot.sqlite3")


async def only_job(rig: Rig) -> JobRecord:
    found: list[JobRecord] = []

    async def one() -> bool:
        found[:] = await rig.store.active_jobs()
        return len(found) == 1

    await wait_until(one, 5.0, what="the job's row")
    return found[0]


async def ended(rig: Rig, job_id: int, timeout: float = 10.0) -> JobRecord:
    """Wait until the job is terminal and its member has been told."""
    return await rig.wait_job(
        job_id, lambda j: j.status.is_terminal and j.told_at is not None, timeout, what="the job's end, told"
    )


def imagine_cog(rig: Rig) -> type[Imagine]:
    """The class of the loaded cog: discord.py loads an extension as a module object of its own,
    so ``cogs.imagine.Imagine`` as imported here is not the class the running bot uses."""
    cog = rig.bot.get_cog("Imagine")
    assert cog is not None
    return type(cog)  # type: ignore[return-value]


def images_shown(message: FakeMessage) -> int:
    """How many versions of a message carried an attachment (1 for an image posted once)."""
    return sum(1 for snapshot in message.history if snapshot.attachments)


async def test_window_2_between_the_row_and_the_defer(crash_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The interaction was never answered: the job is submitted at the next start and its result
    reaches the member in a new message that mentions them."""
    w = crash_world
    async with w.bot() as rig:
        monkeypatch.setattr(imagine_cog(rig), "_defer", hang)
        interaction = await rig.imagine(w.fake.alice, prompt="lost before the defer")
        job = await only_job(rig)
        assert job.submit_started_at is None and job.message_id is None
    monkeypatch.undo()
    async with w.bot(sync_commands=False) as rig:
        final = await ended(rig, job.id)
    assert final.status is JobState.DELIVERED and final.cost == 1
    assert len(w.sim.submits()) == 1
    assert interaction.original() is None  # never answered
    posted = [m for m in w.fake.find_messages(channel=w.fake.general) if w.fake.alice.id in m.pinged]
    assert len(posted) == 1 and posted[0].attachments and "Done" in embed_text(posted[0])
    assert final.message_id == int(posted[0].id)


@pytest.mark.parametrize("lose_message_id", [True, False])
async def test_window_3_between_the_defer_and_the_first_edit(
    crash_world: World, monkeypatch: pytest.MonkeyPatch, lose_message_id: bool
) -> None:
    """Killed on "thinking…" (with or without the reply's id stored): the next start submits the job
    and replaces the loading reply through the interaction token."""
    w = crash_world

    async def defer_then_die(self: Imagine, interaction: Any, job: JobRecord) -> JobRecord:
        await interaction.response.defer(thinking=True)
        if not lose_message_id:
            message_id = (await interaction.original_response()).id
            await self.bot.store.set_reply(job.id, message_id=message_id, token_dead=False, now=self.bot.clock())
        await hang()
        return job

    async with w.bot() as rig:
        monkeypatch.setattr(imagine_cog(rig), "_defer", defer_then_die)
        interaction = await rig.imagine(w.fake.alice, prompt="thinking forever?")
        await interaction.wait_response()
        job = await only_job(rig)
        if not lose_message_id:
            job = await rig.wait_job(job.id, lambda j: j.message_id is not None, what="the reply's id")
        assert (job.message_id is None) is lose_message_id
        reply = interaction.original()
        assert reply is not None and reply.loading
    monkeypatch.undo()
    async with w.bot(sync_commands=False) as rig:
        final = await ended(rig, job.id)
    assert final.status is JobState.DELIVERED and final.message_id == int(reply.id)
    assert not reply.loading and reply.attachments and images_shown(reply) == 1
    assert len(w.sim.submits()) == 1
    assert [m.id for m in w.fake.find_messages(channel=w.fake.general)] == [reply.id]


async def test_window_4_while_the_references_are_checked(crash_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The references are checked again at the next start, then the job is submitted once."""
    w = crash_world
    async with w.bot() as rig:
        monkeypatch.setattr(imagine_cog(rig), "_verify_references", hang)
        reference = w.fake.upload("ref.png", png_bytes(), content_type="image/png")
        interaction = await rig.imagine(w.fake.alice, prompt="checked twice", image1=reference)
        await interaction.wait_response()
        job = await only_job(rig)
    monkeypatch.undo()
    async with w.bot(sync_commands=False) as rig:
        final = await ended(rig, job.id)
    reply = interaction.original()
    assert final.status is JobState.DELIVERED and reply is not None and reply.attachments
    assert len(w.sim.submits()) == 1


async def test_window_4_a_reference_gone_bad_ends_the_job_refunded(
    crash_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = crash_world
    async with w.bot() as rig:
        monkeypatch.setattr(imagine_cog(rig), "_verify_references", hang)
        reference = w.fake.upload("ref.png", png_bytes(), content_type="image/png")
        interaction = await rig.imagine(w.fake.alice, prompt="a broken reference", image1=reference)
        await interaction.wait_response()
        job = await only_job(rig)
    monkeypatch.undo()
    stored = w.fake.attachments[reference.id]
    w.fake.attachments[reference.id] = dataclasses.replace(stored, data=b"not an image any more")
    async with w.bot(sync_commands=False) as rig:
        final = await ended(rig, job.id)
    assert final.status is JobState.FAILED and final.error_type == "invalid_reference" and final.cost == 0
    assert w.sim.submits() == []
    reply = interaction.original()
    assert reply is not None and "could no longer be read" in embed_text(reply)


async def test_window_5_between_the_submit_start_and_the_request_id(
    crash_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The submit was on the wire: never sent again; closed as interrupted, refunded, the member told."""
    w = crash_world
    monkeypatch.setattr(QueueClient, "submit", hang)
    async with w.bot() as rig:
        interaction = await rig.imagine(w.fake.alice, prompt="on the wire")
        job = await only_job(rig)
        await rig.wait_job(job.id, lambda j: j.submit_started_at is not None, what="the submit to start")
        # A kill, not a graceful stop: the graceful one would wait for the submit's answer.
        for task in list(rig.bot.tracker._submits):
            task.cancel()
    monkeypatch.undo()
    async with w.bot(sync_commands=False) as rig:
        final = await ended(rig, job.id)
    assert final.status is JobState.FAILED and final.error_type == "interrupted" and final.cost == 0
    assert w.sim.submits() == []
    reply = interaction.original()
    assert reply is not None and "second charge" in embed_text(reply)


async def test_window_7_while_the_result_is_downloaded(crash_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    w = crash_world
    monkeypatch.setattr(QueueClient, "download", hang)
    async with w.bot() as rig:
        interaction = await rig.imagine(w.fake.alice, prompt="downloading")
        job = await only_job(rig)
        await rig.wait_job(job.id, lambda j: j.status is JobState.DELIVERING, what="the result to be ready")
    monkeypatch.undo()
    async with w.bot(sync_commands=False) as rig:
        final = await ended(rig, job.id)
    reply = interaction.original()
    assert final.status is JobState.DELIVERED and reply is not None and images_shown(reply) == 1
    assert len(w.sim.submits()) == 1


async def test_window_8_during_the_upload(crash_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The upload never reached Discord: the next start finds no image in the reply and posts it."""
    w = crash_world
    original = ReplyPresenter.publish

    async def upload_dies(self: ReplyPresenter, job: JobRecord, event: Any) -> None:
        if type(event).__name__ == "Delivery":
            await hang()
        await original(self, job, event)

    monkeypatch.setattr(ReplyPresenter, "publish", upload_dies)
    async with w.bot() as rig:
        interaction = await rig.imagine(w.fake.alice, prompt="uploading")
        job = await only_job(rig)
        await rig.wait_job(job.id, lambda j: j.delivery_attempted_at is not None, what="the upload to start")
    monkeypatch.undo()
    async with w.bot(sync_commands=False) as rig:
        final = await ended(rig, job.id)
    reply = interaction.original()
    assert final.status is JobState.DELIVERED and final.cost == 1
    assert reply is not None and images_shown(reply) == 1


async def test_window_9_between_the_upload_and_the_delivered_row(
    crash_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Discord has the image but the row still says DELIVERING: found in the reply, not posted again."""
    w = crash_world
    original = SqliteStore.finish

    async def dies_before_delivered(self: SqliteStore, job_id: int, state: JobState, **kwargs: Any) -> Any:
        if state is JobState.DELIVERED:
            await hang()
        return await original(self, job_id, state, **kwargs)

    monkeypatch.setattr(SqliteStore, "finish", dies_before_delivered)
    async with w.bot() as rig:
        interaction = await rig.imagine(w.fake.alice, prompt="uploaded")
        reply = await interaction.wait_original(lambda m: bool(m.attachments))
        job = await only_job(rig)
    monkeypatch.undo()
    async with w.bot(sync_commands=False) as rig:
        final = await ended(rig, job.id)
    assert final.status is JobState.DELIVERED and final.cost == 1
    assert images_shown(reply) == 1
    assert len(w.sim.calls_to("result")) == 1  # not even fetched again
    assert [m.id for m in w.fake.find_messages(channel=w.fake.general)] == [reply.id]


async def test_window_10_between_the_end_and_telling_the_member(
    crash_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = crash_world
    original = ReplyPresenter.publish

    async def dies_before_telling(self: ReplyPresenter, job: JobRecord, event: Any) -> None:
        if type(event).__name__ == "Failure":
            await hang()
        await original(self, job, event)

    monkeypatch.setattr(ReplyPresenter, "publish", dies_before_telling)
    w.sim.fail_next("CONTENT_BLOCKED")
    async with w.bot() as rig:
        interaction = await rig.imagine(w.fake.alice, prompt="blocked")
        job = await only_job(rig)
        await rig.wait_job(job.id, lambda j: j.status is JobState.FAILED, what="the failure")
    monkeypatch.undo()
    async with w.bot(sync_commands=False) as rig:
        final = await ended(rig, job.id)
    assert final.cost == 0
    reply = interaction.original()
    assert reply is not None and "blocked" in embed_text(reply)


async def test_a_cancel_while_the_references_are_checked_stops_the_submit(
    crash_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/cancel lands while the new job's references are still being checked: never submitted."""
    w = crash_world
    release = asyncio.Event()
    async with w.bot() as rig:
        original = imagine_cog(rig)._verify_references

        async def slow_check(self: Imagine, t: Any, request: Any) -> None:
            await release.wait()
            await original(self, t, request)

        monkeypatch.setattr(imagine_cog(rig), "_verify_references", slow_check)
        reference = w.fake.upload("ref.png", png_bytes(), content_type="image/png")
        interaction: FakeInteraction = await rig.imagine(w.fake.alice, prompt="never mind", image1=reference)
        await interaction.wait_response()
        job = await only_job(rig)
        answer = await rig.fake.invoke("cancel", w.fake.alice)
        await answer.wait_response()
        await rig.wait_job(job.id, lambda j: j.cancel_requested_at is not None, what="the cancel recorded")
        release.set()
        final = await ended(rig, job.id)
    assert final.status is JobState.CANCELLED and final.cost == 0
    assert w.sim.submits() == []
    reply = interaction.original()
    assert reply is not None and "Cancelled" in embed_text(reply)
