"""``python -m bot``: the composition root. Builds every service once and runs the bot."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable

import aiohttp
import discord

from bot.app import ImagineBot, configure_discord_endpoints
from bot.config import ConfigError, Settings, load_settings
from bot.log import setup_logging
from bot.queue import QueueClient
from bot.storage import open_store
from bot.tracker import JobTracker, TrackerSettings

log = logging.getLogger("bot")


def tracker_settings(settings: Settings) -> TrackerSettings:
    return TrackerSettings(
        poll_min_interval=settings.poll_min_interval,
        poll_max_interval=settings.poll_max_interval,
        job_timeout=settings.job_timeout,
        status_edit_interval=settings.status_edit_interval,
        max_result_bytes=settings.max_result_bytes,
    )


# Waits between login attempts while Discord cannot be reached (doubling, then every minute).
LOGIN_RETRY_FIRST = 5.0
LOGIN_RETRY_MAX = 60.0
Sleep = Callable[[float], Awaitable[None]]


async def run(settings: Settings, *, force_sync: bool = False, sleep: Sleep = asyncio.sleep) -> None:
    configure_discord_endpoints(settings)
    async with aiohttp.ClientSession() as session, open_store(settings.database_url) as store:
        queue = QueueClient(
            session,
            base_url=settings.odirouter_base_url,
            api_key=settings.odirouter_api_key,
            model=settings.odirouter_model,
            size_fields=settings.size_fields,
            concurrency=settings.upstream_concurrency,
        )
        delay = LOGIN_RETRY_FIRST
        while True:
            tracker = JobTracker(store, queue, settings=tracker_settings(settings))
            bot = ImagineBot(
                settings=settings, store=store, queue=queue, tracker=tracker, session=session, force_sync=force_sync
            )
            try:
                async with bot:
                    await bot.start(settings.discord_token)
                return
            except (aiohttp.ClientError, OSError, discord.DiscordServerError) as exc:
                if bot.logged_in:
                    raise  # past login, discord.py reconnects by itself; this is something else
                log.warning("cannot reach Discord to log in (%s); trying again in %.0f s", exc, delay)
                await sleep(delay)
                delay = min(LOGIN_RETRY_MAX, delay * 2)


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
    setup_logging(settings.log_level, settings.secrets)
    try:
        asyncio.run(run(settings, force_sync=args.sync_commands))
    except KeyboardInterrupt:
        log.info("stopped")
    except discord.LoginFailure:
        log.critical("Discord refused the bot token: check DISCORD_TOKEN")
        return 1
    except Exception as exc:
        log.critical("the bot stopped: %s", exc, exc_info=settings.log_level == "DEBUG")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
