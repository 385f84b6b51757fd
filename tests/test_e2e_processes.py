"""Two bot processes, shards 0 and 1 of 2, as an operator runs them: real OS processes
(``python -m bot`` with SHARD_COUNT=2 and SHARD_IDS=0 or 1) against one fake Discord, which answers
each IDENTIFY with that shard's servers only, one upstream simulator and one database.

Each job is made, polled and delivered by the process of its server's shard only (told apart by the
User-Agent of the upstream calls, which names the shards); a process killed mid-job takes nothing of
the other's with it, and a new one for its shard takes its jobs back. A server-wide daily limit holds
exactly across both processes.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bot.devtools.fakediscord import FakeDiscord, FakeGuild, FakeInteraction, FakeMessage, FakeUser, wait_until
from bot.models import JobRecord, JobState
from bot.quota import utc_day
from bot.simulator import Simulator, SimulatorOptions, run_simulator
from bot.storage import Store, open_store
from tests.harness import SIM_KEY
from tests.processes import ShardProcesses, shard_processes, user_agent
from tests.test_e2e_imagine import private_answer
from tests.test_e2e_quota import is_refusal, settled

COUNT = 2
WAIT = 20.0  # for anything two loaded processes must do; a pass takes far less


def has_image(message: FakeMessage) -> bool:
    return bool(message.attachments) and not message.deleted


async def delivered_job(store: Store, interaction: FakeInteraction) -> JobRecord:
    """The interaction's job, once the database records it as delivered."""
    message = await interaction.wait_original(has_image, timeout=WAIT)
    found: list[JobRecord] = []

    async def is_delivered() -> bool:
        job = await store.job_by_message(int(message.id))
        found[:] = [job] if job is not None else []
        return job is not None and job.status is JobState.DELIVERED

    await wait_until(is_delivered, WAIT, what=f"the job of reply {message.id} to be recorded as delivered")
    return found[0]


def polled_by(sim: Simulator) -> dict[str, set[str]]:
    """The User-Agents of the status calls made for each upstream request id."""
    agents: dict[str, set[str]] = {}
    for call in sim.calls_to("status"):
        if call.request_id is not None:
            agents.setdefault(call.request_id, set()).add(call.headers.get("User-Agent", ""))
    return agents


def request_id(sim: Simulator, prompt: str) -> str:
    (found,) = [rid for rid, job in sim.jobs.items() if job.body.get("prompt") == prompt]
    return found


def owner_pid(job: JobRecord) -> int:
    """The process id in a job's owner name (``host-pid-random``)."""
    assert job.owner is not None
    return int(job.owner.rsplit("-", 2)[1])


async def test_each_shards_jobs_are_made_by_its_process_and_survive_a_kill_of_the_other(
    tmp_path: Path, database_url: str
) -> None:
    """Jobs in servers of both shards complete, each polled by its shard's process only; SIGKILL of
    shard 0's process while all jobs are in flight leaves shard 1's jobs to complete; a new process
    for shard 0 resumes shard 0's jobs, and every job is submitted once."""
    async with (
        FakeDiscord() as fake,
        # Manual: a job runs until the test finishes it, so every job is in flight at the kill.
        run_simulator(SimulatorOptions(api_key=SIM_KEY, manual=True, workers=4)) as sim,
    ):
        servers = [fake.add_guild(f"shard {i}", shard=(i, COUNT), members=[fake.alice, fake.bob]) for i in range(2)]
        async with (
            # Both start on the new database at once, as a deployment's processes do.
            shard_processes(fake, sim, database_url, tmp_path, count=COUNT) as bots,
            open_store(database_url) as store,  # the test's own view of the database
        ):
            asked: dict[int, list[FakeInteraction]] = {0: [], 1: []}
            for shard_id, server in enumerate(servers):
                for user in (fake.alice, fake.bob):
                    asked[shard_id].append(
                        await fake.invoke(
                            "imagine",
                            user,
                            channel=server.channel_named("general"),
                            options={"prompt": f"{user.name} on shard {shard_id}"},
                        )
                    )
            prompts = {
                shard_id: [f"{user.name} on shard {shard_id}" for user in (fake.alice, fake.bob)] for shard_id in asked
            }
            # Every job submitted, running upstream, and polled (the bot follows it) before the kill.
            await sim.wait_for(
                lambda: (
                    sum(j.state == "IN_PROGRESS" for j in sim.jobs.values()) == 4
                    and set(polled_by(sim)) >= set(sim.jobs)
                ),
                timeout=WAIT,
            )
            upstream = {shard_id: [request_id(sim, p) for p in prompts[shard_id]] for shard_id in prompts}

            bots.kill(0)
            for rid in upstream[1]:
                sim.finish(rid)
            for interaction in asked[1]:
                await interaction.wait_original(has_image, timeout=WAIT)
            assert not bots.process(0).running
            for interaction in asked[0]:
                reply = interaction.original()
                assert reply is not None and not reply.attachments, "a job of the killed process was delivered"

            await bots.start(0)
            for rid in upstream[0]:
                sim.finish(rid)
            for interaction in asked[0]:
                await interaction.wait_original(has_image, timeout=WAIT)

            for shard_id, interactions in asked.items():
                pid = bots.pid(shard_id)
                for interaction in interactions:
                    job = await delivered_job(store, interaction)
                    assert job.shard_id == shard_id
                    assert owner_pid(job) == pid, f"job {job.id} is not owned by shard {shard_id}'s current process"
            agents = polled_by(sim)
            for shard_id, rids in upstream.items():
                for rid in rids:
                    assert agents[rid] == {user_agent(shard_id, COUNT)}, (rid, agents[rid], bots.output())
            submitted = [call.json["prompt"] for call in sim.submits()]
            assert sorted(submitted) == sorted(prompts[0] + prompts[1]), submitted


async def test_a_server_wide_daily_limit_holds_across_both_processes(tmp_path: Path, database_url: str) -> None:
    """20 /imagine at once in one server whose daily limit is 5, half of them reaching each process
    (shard 1's process answers a shard 0 server's command, as during a reshard): exactly 5 are
    submitted upstream and made, the other 15 members are told the server's limit is reached."""
    async with (
        FakeDiscord() as fake,
        run_simulator(SimulatorOptions(api_key=SIM_KEY, job_duration=0.05, workers=5)) as sim,
    ):
        server = fake.add_guild("busy", shard=(0, COUNT))
        members = [fake.add_guild_member(server, f"member {i}") for i in range(20)]
        async with (
            shard_processes(fake, sim, database_url, tmp_path, count=COUNT) as bots,
            open_store(database_url) as store,
        ):
            await store.set_quota(int(server.id), {"guild_daily": 5}, user_id=int(server.owner_id), now=time.time())
            asked = await fire(bots, server, members)
            await fake.wait_until(lambda: all(settled(i) for i in asked), WAIT, "an answer to every /imagine")
            refused = [i for i in asked if is_refusal(i)]
            made = [i for i in asked if not is_refusal(i)]
            assert len(made) == 5, bots.output()
            for interaction in made:  # the other process's sweep submits those it did not answer
                await interaction.wait_original(has_image, timeout=WAIT)
            for interaction in refused:
                assert "this server's daily image limit" in await private_answer(interaction)
            assert len(sim.submits()) == 5
            for interaction in made:
                await delivered_job(store, interaction)
            usage = await store.usage(int(server.id), int(members[0].id), day=utc_day(time.time()))
            assert usage.guild_used == 5


async def fire(bots: ShardProcesses, server: FakeGuild, members: list[FakeUser]) -> list[FakeInteraction]:
    """Every member runs /imagine at the same moment, alternately through shard 0's and shard 1's
    gateway session."""
    sessions = [bots.session(0), bots.session(1)]
    return list(
        await asyncio.gather(
            *(
                bots.fake.invoke(
                    "imagine",
                    member,
                    channel=server.channel_named("general"),
                    options={"prompt": f"{member.name}'s lighthouse"},
                    session=sessions[n % 2],
                )
                for n, member in enumerate(members)
            )
        )
    )
