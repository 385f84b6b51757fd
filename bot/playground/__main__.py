"""``python -m bot.playground``: try the bot in a browser, with no Discord application and no API key.

Prints one URL (``http://127.0.0.1:PORT/``) once everything is ready, and runs until Ctrl+C. Nothing
is read from ``.env`` or the environment, and nothing is sent beyond 127.0.0.1: Discord and the image
service are local stand-ins, and the images are drawn locally.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Sequence

from bot.__main__ import stop_on_signals
from bot.log import setup_logging
from bot.playground.web import serve
from bot.playground.world import HOST, PlaygroundOptions, running_world


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    defaults = PlaygroundOptions()
    parser = argparse.ArgumentParser(
        prog="python -m bot.playground",
        description="Run the bot against a local Discord stand-in and a simulated image service, "
        "and try it in your browser.",
    )
    parser.add_argument("--port", type=int, default=0, help="port of the page (default: any free port)")
    parser.add_argument(
        "--job-duration",
        type=_non_negative,
        default=defaults.job_duration,
        metavar="SECONDS",
        help=f"how long the simulated service takes to draw one image (default {defaults.job_duration:g})",
    )
    parser.add_argument(
        "--fail-rate",
        type=_fraction,
        default=defaults.fail_rate,
        metavar="FRACTION",
        help="share of images the simulated service fails to make, 0 to 1 (default 0)",
    )
    parser.add_argument(
        "--queue-depth",
        type=_count,
        default=defaults.queue_depth,
        metavar="JOBS",
        help=f"other customers' jobs waiting ahead of each of yours (default {defaults.queue_depth})",
    )
    parser.add_argument("--verbose", action="store_true", help="log what the bot does (to standard error)")
    return parser


async def serve_until_stopped(options: PlaygroundOptions, port: int) -> None:
    stop = stop_on_signals()
    async with running_world(options) as world, serve(world, HOST, port) as url:
        print(url, flush=True)  # noqa: T201 - the one line this command is for
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = PlaygroundOptions(job_duration=args.job_duration, fail_rate=args.fail_rate, queue_depth=args.queue_depth)
    setup_logging("INFO" if args.verbose else "WARNING", ())
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_until_stopped(options, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
