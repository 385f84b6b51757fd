"""Command line: serve the upstream simulator until Ctrl-C.

    python -m bot.simulator --port 8765 --api-key KEY [--workers N] [--job-duration S [--job-duration-max S]] ...

The accepted key comes from ``--api-key`` or the ``ODIROUTER_API_KEY`` environment variable. Point the
bot's ``ODIROUTER_BASE_URL`` at ``http://HOST:PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence

from bot.simulator.app import SimulatorOptions, run_simulator

log = logging.getLogger("bot.simulator")


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot.simulator", description="Local simulator of OdiRouter's queue API."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port to listen on (0 = any free port)")
    parser.add_argument("--api-key", help="the accepted API key (default: env ODIROUTER_API_KEY)")
    parser.add_argument("--model", default="nano_banana_pro", help="model id served")
    parser.add_argument("--workers", type=_positive_int, default=1, help="jobs processed at once")
    parser.add_argument("--job-duration", type=_non_negative, default=0.5, help="seconds a job runs")
    parser.add_argument(
        "--job-duration-max",
        type=_non_negative,
        metavar="SECONDS",
        help="spread durations uniformly from --job-duration up to this (seeded by --seed)",
    )
    parser.add_argument("--zero-position", action="store_true", help="queue_position is always 0")
    parser.add_argument("--result-shape", choices=("outputs", "images"), default="outputs")
    parser.add_argument("--pending-http-status", type=int, choices=(200, 202), default=200)
    parser.add_argument("--noisy-images", action="store_true", help="noisy PNGs (~30 MB at 4K)")
    parser.add_argument(
        "--reuse-images", action="store_true", help="render one image per aspect ratio and tier, serve it to all"
    )
    parser.add_argument("--fail-with", metavar="ERROR_TYPE", help="every job completes with this error_type")
    parser.add_argument("--balance", type=int, help="submits allowed before 403 insufficient balance")
    parser.add_argument("--cancel-running-finishes", action="store_true")
    parser.add_argument("--error-rate", type=_fraction, default=0.0, help="fraction of API calls answered 503")
    parser.add_argument("--rate-limit-rate", type=_fraction, default=0.0, help="fraction of API calls answered 429")
    parser.add_argument("--slow", type=_non_negative, default=0.0, help="seconds added before every answer")
    parser.add_argument("--seed", type=int, help="seed of the random faults and job durations")
    parser.add_argument("--fetch-remote", action="store_true", help="also fetch non-loopback image_urls")
    return parser


def options_from_args(args: argparse.Namespace, api_key: str) -> SimulatorOptions:
    return SimulatorOptions(
        api_key=api_key,
        model=args.model,
        workers=args.workers,
        job_duration=args.job_duration,
        job_duration_max=args.job_duration_max,
        position_mode="zero" if args.zero_position else "real",
        result_shape=args.result_shape,
        pending_http_status=args.pending_http_status,
        noisy_images=args.noisy_images,
        reuse_images=args.reuse_images,
        balance=args.balance,
        cancel_running_finishes=args.cancel_running_finishes,
        fail_with=args.fail_with,
        error_rate=args.error_rate,
        rate_limit_rate=args.rate_limit_rate,
        slow=args.slow,
        seed=args.seed,
        fetch_remote=args.fetch_remote,
    )


async def serve(options: SimulatorOptions, host: str, port: int) -> None:
    async with run_simulator(options, host=host, port=port) as sim:
        log.info("simulator for %s listening on %s", options.model, sim.base_url)
        stop = asyncio.Event()
        if sys.platform != "win32":  # Windows event loops have no signal handlers
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    env = os.environ if environ is None else environ
    api_key = args.api_key or env.get("ODIROUTER_API_KEY")
    if not api_key:
        sys.stderr.write("bot.simulator: no API key: pass --api-key or set ODIROUTER_API_KEY\n")
        return 2
    try:
        options = options_from_args(args, api_key)
    except ValueError as exc:  # options that contradict each other (e.g. a maximum below the minimum)
        sys.stderr.write(f"bot.simulator: {exc}\n")
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(options, args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
