"""Shutting down on SIGTERM: quick, exit status 0, and nothing lost for the next start."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

from bot.devtools.fakediscord import FakeDiscord, FakeInteraction, wait_until
from bot.i18n import Catalog
from bot.simulator import Fault, SimulatorOptions, run_simulator
from tests.conftest import StartWorld
from tests.harness import SIM_KEY, BotProcess, decoded_size, embed_text, settings_env, settings_for

EPHEMERAL = 64
JOBS = 10
# Docker waits 10 s after SIGTERM before it sends SIGKILL.
EXIT_DEADLINE = 10.0


def job_rows(db: Path) -> list[sqlite3.Row]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=rw", uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM jobs ORDER BY id").fetchall()


def in_progress(text: str) -> bool:
    return "Queued" in text or "Generating" in text


async def test_sigterm_during_ten_active_jobs_exits_0_quickly_and_the_next_start_delivers_all(
    tmp_path: Path,
) -> None:
    """Ten jobs in the upstream's queue; SIGTERM: a clean exit (status 0) well before Docker's
    SIGKILL, the jobs left as they were; the next start delivers every one to its original reply."""
    async with (
        FakeDiscord() as fake,
        run_simulator(SimulatorOptions(api_key=SIM_KEY, manual=True)) as sim,
    ):
        db = tmp_path / "bot.sqlite3"
        env = settings_env(settings_for(fake, sim, db))
        first = BotProcess(env, tmp_path)
        first.start()
        interactions: list[FakeInteraction] = []
        try:
            await fake.wait_synced(timeout=30.0)
            await fake.wait_identified(timeout=30.0)
            for n in range(JOBS):
                user = fake.alice if n % 2 == 0 else fake.bob
                interactions.append(await fake.invoke("imagine", user, options={"prompt": f"stay with me {n}"}))
            for interaction in interactions:
                assert (await interaction.wait_response(timeout=5.0))["type"] == 5
            # Every job is acknowledged and in the upstream's queue (one generating, nine waiting).
            await sim.wait_for(lambda: len(sim.submits()) == JOBS, timeout=15.0)
            replies = [await i.wait_original(lambda m: in_progress(embed_text(m)), timeout=15.0) for i in interactions]
            loop = asyncio.get_running_loop()
            asked = loop.time()
            code = await first.terminate(timeout=EXIT_DEADLINE)
            took = loop.time() - asked
        finally:
            first.kill()
        assert code == 0, f"exit status {code} after SIGTERM ({took:.1f} s):\n{first.output()[-3000:]}"
        assert took < EXIT_DEADLINE
        rows = job_rows(db)
        # Left as they were for the next start: none failed, every request id recorded.
        assert sorted(r["status"] for r in rows) == ["queued"] * (JOBS - 1) + ["running"], [dict(r) for r in rows]
        assert all(r["request_id"] for r in rows)

        second = BotProcess(env, tmp_path)
        second.start()
        try:
            await fake.wait_identified(timeout=30.0, count=2)
            for _ in range(JOBS):
                await sim.wait_for(
                    lambda: any(j.state == "IN_PROGRESS" and not j.finish_requested for j in sim.jobs.values()),
                    timeout=10.0,
                )
                running = next(j for j in sim.jobs.values() if j.state == "IN_PROGRESS" and not j.finish_requested)
                sim.finish(running.request_id)
            await fake.wait_until(
                lambda: all(r.attachments for r in replies), 15.0, "the images in the original replies"
            )
            await wait_until(
                lambda: [r["status"] for r in job_rows(db)] == ["delivered"] * JOBS,
                10.0,
                interval=0.05,
                what="every job recorded as delivered",
            )
            code = await second.terminate(timeout=EXIT_DEADLINE)
        finally:
            second.kill()
        assert code == 0, second.output()[-3000:]

    assert sorted(c.json["prompt"] for c in sim.submits()) == sorted(f"stay with me {n}" for n in range(JOBS))
    for interaction, reply in zip(interactions, replies, strict=True):
        assert interaction.original() is reply and not reply.deleted and not reply.loading
        assert "Done" in embed_text(reply)
        assert decoded_size(fake.attachment_bytes(reply.attachments[0].id)) == (1024, 1024)
        assert sum(1 for snapshot in reply.history if snapshot.attachments) == 1
    assert [m.id for m in fake.find_messages(channel=fake.general)] == [r.id for r in replies]
    assert sum(r["cost"] for r in job_rows(db)) == JOBS


async def test_sigterm_while_a_submit_is_on_the_wire_records_its_answer(tmp_path: Path) -> None:
    """The upstream is slow to answer a submit; a SIGTERM meanwhile waits for the answer and records
    the request id, so the next start follows the job instead of closing it as interrupted."""
    async with (
        FakeDiscord() as fake,
        run_simulator(SimulatorOptions(api_key=SIM_KEY, manual=True)) as sim,
    ):
        sim.add_fault(Fault("submit", delay=1.5, after_processing=True))
        db = tmp_path / "bot.sqlite3"
        env = settings_env(settings_for(fake, sim, db))
        first = BotProcess(env, tmp_path)
        first.start()
        try:
            await fake.wait_synced(timeout=30.0)
            await fake.wait_identified(timeout=30.0)
            interaction = await fake.invoke("imagine", fake.alice, options={"prompt": "answer me slowly"})
            await sim.wait_for(lambda: bool(sim.calls_to("submit")), timeout=5.0)
            code = await first.terminate(timeout=EXIT_DEADLINE)
        finally:
            first.kill()
        assert code == 0, first.output()[-3000:]
        [row] = job_rows(db)
        [ours] = sim.jobs.values()
        assert row["request_id"] == ours.request_id and row["status"] in ("queued", "running"), dict(row)

        second = BotProcess(env, tmp_path)
        second.start()
        try:
            await fake.wait_identified(timeout=30.0, count=2)
            await sim.wait_for(lambda: ours.state == "IN_PROGRESS", timeout=10.0)
            sim.finish(ours.request_id)
            reply = await interaction.wait_original(lambda m: bool(m.attachments), timeout=15.0)
        finally:
            second.kill()
    assert "Done" in embed_text(reply)
    assert len(sim.submits()) == 1


async def test_imagine_during_shutdown_is_told_the_bot_is_restarting(world: StartWorld) -> None:
    """Once shutdown began, /imagine reserves nothing and sends nothing: the member is told why."""
    rig = await world()
    await rig.bot.tracker.close()
    interaction = await rig.imagine(rig.fake.alice, prompt="one more before you go")
    response = await interaction.wait_response()
    assert response["type"] == 4 and response["data"]["flags"] & EPHEMERAL
    assert response["data"]["content"] == Catalog().text("en", "imagine-restarting")
    assert await rig.store.history(int(rig.fake.guild.id), int(rig.fake.alice.id), limit=10) == []  # no job recorded
    assert rig.sim.submits() == []
