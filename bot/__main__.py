"""``python -m bot``: the composition root. Builds every service once and runs the bot."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import sys
from collections.abc import Awaitable, Callable

import aiohttp
import discord

from bot.app import ImagineBot, configure_discord_endpoints, create_bot
from bot.config import ConfigError, Settings, load_settings
from bot.health import serve_health
from bot.log import setup_logging
from bot.looplag import watch_loop_lag
from bot.metrics import Metrics, package_version
from bot.models import Ownership
from bot.queue import QueueClient
from bot.storage import StoreOpenError, open_store
from bot.tracker import JobTracker, TrackerSettings

log = logging.getLogger("bot")


def tracker_settings(settings: Settings) -> TrackerSettings:
    return TrackerSettings(
        poll_min_interval=settings.poll_min_interval,
        poll_max_interval=settings.poll_max_interval,
        job_timeout=settings.job_timeout,
        max_result_bytes=settings.max_result_bytes,
        max_reference_bytes=settings.max_reference_bytes,
        sweep_interval=settings.sweep_interval,
        position_interval=settings.queue_position_interval,
    )


def user_agent(settings: Settings) -> str:
    """What the bot calls itself upstream; a sharded process also says which shards it runs, so
    each process's calls can be told apart."""
    name = f"imagine-bot/{package_version()}"
    if not settings.sharded:
        return name
    count, ids = settings.shards
    return f"{name} (shards {','.join(map(str, ids))} of {count})"


def ownership_of(settings: Settings) -> Ownership:
    """The jobs this process may change: those of the servers on its shards, under a name unique to
    this start of this process (a restarted process takes its jobs back by claiming its shards)."""
    count, ids = settings.shards
    owner = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
    return Ownership(owner=owner, shard_count=count, shard_ids=frozenset(ids))


# Waits between login attempts while Discord cannot be reached (doubling, then every minute).
LOGIN_RETRY_FIRST = 5.0
LOGIN_RETRY_MAX = 60.0
Sleep = Callable[[float], Awaitable[None]]


async def run(
    settings: Settings,
    *,
    force_sync: bool = False,
    sleep: Sleep = asyncio.sleep,
    stop: asyncio.Event | None = None,
) -> None:
    """Run until ``stop`` is set (SIGTERM or SIGINT), then shut down cleanly: no new jobs, submits on
    the wire answered and recorded, running jobs left to resume at the next start, the gateway, the
    HTTP session and the database closed."""
    configure_discord_endpoints(settings)
    stop = stop or stop_on_signals()
    metrics = Metrics()
    current: list[ImagineBot] = []  # the bot of the current login attempt, for the health check
    async with contextlib.AsyncExitStack() as resources:
        await resources.enter_async_context(watch_loop_lag(metrics.loop_lag))
        session = await resources.enter_async_context(aiohttp.ClientSession())
        ownership = ownership_of(settings)
        store = await resources.enter_async_context(open_store(settings.database_url, ownership=ownership))
        taken = await store.claim_shards()  # before any job is resumed
        if settings.sharded:
            count, ids = settings.shards
            log.info(
                "running shard(s) %s of %d as %s; took over %d unfinished job(s)",
                ", ".join(map(str, ids)),
                count,
                ownership.owner,
                taken,
            )
        queue = QueueClient(
            session,
            base_url=settings.odirouter_base_url,
            api_key=settings.odirouter_api_key,
            model=settings.odirouter_model,
            size_fields=settings.size_fields,
            concurrency=settings.upstream_concurrency,
            reads_per_second=settings.upstream_reads_per_second,
            metrics=metrics,
            user_agent=user_agent(settings),
        )
        if settings.metrics_port is not None:
            await resources.enter_async_context(
                serve_health(
                    settings.metrics_host,
                    settings.metrics_port,
                    gateway_ok=lambda: bool(current) and current[-1].gateway_connected,
                    database_ok=store.ping,
                    upstream=queue.health,
                    metrics=metrics,
                    active_counts=store.active_counts,
                )
            )
        delay = LOGIN_RETRY_FIRST
        while not stop.is_set():
            tracker = JobTracker(store, queue, settings=tracker_settings(settings), metrics=metrics)
            bot = create_bot(
                settings,
                store=store,
                queue=queue,
                tracker=tracker,
                session=session,
                force_sync=force_sync,
                metrics=metrics,
            )
            current[:] = [bot]
            try:
                async with bot:
                    await _until_stopped(bot, settings.discord_token, stop)
                return
            except (aiohttp.ClientError, OSError, discord.DiscordServerError) as exc:
                if bot.logged_in:
                    raise  # past login, discord.py reconnects by itself; this is something else
                log.warning("cannot reach Discord to log in (%s); trying again in %.0f s", exc, delay)
                waits = (asyncio.ensure_future(sleep(delay)), asyncio.ensure_future(stop.wait()))
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for wait in waits:
                    wait.cancel()
                delay = min(LOGIN_RETRY_MAX, delay * 2)


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM (what Docker and systemd send) or SIGINT (Ctrl+C)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # not on every platform
            loop.add_signal_handler(signum, stop.set)
    return stop


async def _until_stopped(bot: ImagineBot, token: str, stop: asyncio.Event) -> None:
    runner = asyncio.create_task(bot.start(token), name="discord")
    stopper = asyncio.create_task(stop.wait(), name="stop")
    try:
        await asyncio.wait((runner, stopper), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if not runner.done():
        log.info("shutting down: no new jobs; unfinished jobs resume at the next start")
        await bot.close()
    await runner
    log.info("stopped cleanly")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Run the Discord image bot.")
    parser.add_argument(
        "--sync-commands", action="store_true", help="register the slash commands with Discord even if unchanged"
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(exc, file=sys.stderr)  # noqa: T201 - the one message an operator must see, logging is not set up yet
        return 2
    setup_logging(settings.log_level, settings.secrets, settings.log_format)
    try:
        asyncio.run(run(settings, force_sync=args.sync_commands))
    except KeyboardInterrupt:
        log.info("stopped")
    except discord.LoginFailure:
        log.critical("Discord refused the bot token: check DISCORD_TOKEN")
        return 1
    except StoreOpenError as exc:
        log.critical("%s", exc)  # names the file and the problem; a traceback would add nothing
        return 2
    except Exception as exc:
        log.critical("the bot stopped: %s", exc, exc_info=settings.log_level == "DEBUG")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
