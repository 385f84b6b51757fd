"""/healthz and /metrics with the real bot, the fake Discord and the simulator."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.devtools.fakediscord import FakeDiscord, wait_until
from bot.health import HealthServer, serve_health
from bot.metrics import Metrics
from bot.simulator import SimulatorOptions, run_simulator
from tests.harness import SIM_KEY, BotProcess, Rig, embed_text, running_bot, settings_env, settings_for


@contextlib.asynccontextmanager
async def health_of(rig: Rig, metrics: Metrics) -> AsyncIterator[HealthServer]:
    """The listener as ``python -m bot`` serves it, on a free port."""
    async with serve_health(
        "127.0.0.1",
        0,
        gateway_ok=lambda: rig.bot.gateway_connected,
        database_ok=rig.store.ping,
        upstream=rig.bot.queue.health,
        metrics=metrics,
        active_counts=rig.store.active_counts,
    ) as server:
        yield server


async def get(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        if resp.content_type == "application/json":
            return resp.status, await resp.json()
        return resp.status, await resp.text()


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


async def test_metrics_move_when_jobs_run_fail_and_are_cancelled(tmp_path: Path) -> None:
    metrics = Metrics()
    async with (
        FakeDiscord() as fake,
        run_simulator(SimulatorOptions(api_key=SIM_KEY, manual=True)) as sim,
        running_bot(fake, sim, tmp_path / "bot.sqlite3", metrics=metrics) as rig,
        health_of(rig, metrics) as server,
    ):

        async def finish(prompt: str, error_type: str | None = None) -> None:
            await sim.wait_for(
                lambda: any(j.body["prompt"] == prompt and j.state == "IN_PROGRESS" for j in sim.jobs.values())
            )
            job = next(j for j in sim.jobs.values() if j.body["prompt"] == prompt)
            sim.finish(job.request_id, error_type)

        status, body = await get(server.url + "/healthz")
        assert status == 200 and body["gateway"]["ok"] and body["database"]["ok"]
        _, before = await get(server.url + "/metrics")
        assert sample(before, "imagine_build_info") == 1.0

        done = await rig.imagine(fake.alice, prompt="one that works")
        await finish("one that works")
        await done.wait_original(lambda m: bool(m.attachments))
        blocked = await rig.imagine(fake.alice, prompt="one that is blocked")
        await finish("one that is blocked", "CONTENT_BLOCKED")
        await blocked.wait_original(lambda m: "blocked" in embed_text(m))

        cancelled = await rig.imagine(fake.bob, prompt="one that is cancelled")
        reply = await cancelled.wait_original(lambda m: "Generating" in embed_text(m) or "Queued" in embed_text(m))
        _, during = await get(server.url + "/metrics")
        assert sum(sample(during, "imagine_active_jobs", state=s) for s in ("queued", "running")) == 1.0
        await fake.react(reply, "❌", fake.bob)
        await cancelled.wait_original(lambda m: "Cancelled" in embed_text(m))

        async def counted() -> bool:
            _, text = await get(server.url + "/metrics")
            return sample(text, "imagine_jobs_finished_total", state="cancelled") == 1.0

        await wait_until(counted, 5.0, what="the cancel counted")
        _, after = await get(server.url + "/metrics")
    assert sample(after, "imagine_jobs_finished_total", state="delivered") == 1.0
    assert sample(after, "imagine_jobs_finished_total", state="failed", reason="content_blocked") == 1.0
    assert sample(after, "imagine_status_polls_total") > 0
    assert sample(after, "imagine_delivery_lag_seconds_count") == 1.0
    assert sample(after, "imagine_upstream_request_seconds_count", operation="submit") == 3.0
    assert sum(sample(after, "imagine_active_jobs", state=s) for s in ("queued", "running")) == 0.0
    assert any(
        s.name == "imagine_discord_requests_total" and s.value > 0
        for family in text_string_to_metric_families(after)
        for s in family.samples
    )


async def test_healthz_turns_503_while_the_gateway_is_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discord.backoff.ExponentialBackoff, "delay", lambda self: 0.01)
    metrics = Metrics()
    async with (
        FakeDiscord() as fake,
        run_simulator(SimulatorOptions(api_key=SIM_KEY, job_duration=0.05)) as sim,
        running_bot(fake, sim, tmp_path / "bot.sqlite3", metrics=metrics) as rig,
        health_of(rig, metrics) as server,
    ):
        assert (await get(server.url + "/healthz"))[0] == 200
        fake.gateway.refuse(True)
        await fake.drop_gateway()

        async def unhealthy() -> bool:
            status, body = await get(server.url + "/healthz")
            return status == 503 and not body["gateway"]["ok"] and body["database"]["ok"]

        await wait_until(unhealthy, 5.0, what="/healthz to report the gateway down")
        fake.gateway.refuse(False)

        async def healthy() -> bool:
            return (await get(server.url + "/healthz"))[0] == 200

        await wait_until(healthy, 10.0, what="/healthz to recover")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_python_m_bot_serves_health_and_metrics(tmp_path: Path) -> None:
    """The composition root wires the listener: METRICS_PORT set, /healthz and /metrics answer."""
    port = free_port()
    async with (
        FakeDiscord() as fake,
        run_simulator(SimulatorOptions(api_key=SIM_KEY, job_duration=0.05)) as sim,
    ):
        env = {**settings_env(settings_for(fake, sim, tmp_path / "bot.sqlite3")), "METRICS_PORT": str(port)}
        process = BotProcess(env, tmp_path)
        process.start()
        try:
            await fake.wait_identified(timeout=30.0)

            async def healthy() -> bool:
                with contextlib.suppress(aiohttp.ClientError):
                    return (await get(f"http://127.0.0.1:{port}/healthz"))[0] == 200
                return False

            await wait_until(healthy, 15.0, what="/healthz of python -m bot")
            status, text = await get(f"http://127.0.0.1:{port}/metrics")
            assert status == 200 and sample(text, "imagine_build_info") == 1.0
            assert await process.terminate() == 0
        finally:
            process.kill()
        assert "invite link" in process.output()
