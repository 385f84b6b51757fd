"""Prometheus metrics of one running bot, served as text on ``/metrics`` (see :mod:`bot.health`).

Everything lives in the :class:`Metrics` instance's own registry: nothing is global, so tests (or
two bots in one process) never see each other's numbers. Label values are short, bounded words
chosen by the code (states, reasons, operations, error kinds, route templates), never ids or
tokens: Discord URLs are reduced to templates such as
``PATCH /webhooks/{application_id}/{token}/messages/{message_id}`` before they become labels.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import metadata
from types import SimpleNamespace
from typing import Final

import aiohttp
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from yarl import URL

__all__ = ["CONTENT_TYPE", "Metrics", "discord_route", "package_version"]

#: The ``Content-Type`` of :meth:`Metrics.render`'s output.
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST

UPSTREAM_OPERATIONS: Final = ("submit", "status", "result", "cancel", "download")
# Upstream API calls take milliseconds to a few seconds; downloads of 4K files longer.
_UPSTREAM_BUCKETS: Final = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 180.0)
# From the upstream finishing a job to its image being in Discord.
_LAG_BUCKETS: Final = (0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 900.0)
# How late the event loop runs a timer (see bot.looplag): fine steps around 100 ms, the point past
# which every reply, poll and heartbeat is visibly late.
_LOOP_LAG_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


def package_version() -> str:
    """The installed version of this project, or ``unknown`` when it runs from an uninstalled tree."""
    try:
        return metadata.version("imagine-bot")
    except metadata.PackageNotFoundError:
        return "unknown"


class Metrics:
    """The bot's metrics, with one method per thing worth counting."""

    def __init__(self, *, version: str | None = None) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self._jobs_finished = Counter(
            "imagine_jobs_finished",
            "Jobs that reached a terminal state, by state and reason.",
            ["state", "reason"],
            registry=reg,
        )
        self._active_jobs = Gauge(
            "imagine_active_jobs", "Jobs not finished yet, by state (read at scrape time).", ["state"], registry=reg
        )
        self._upstream_seconds = Histogram(
            "imagine_upstream_request_seconds",
            "Duration of each upstream HTTP attempt, by operation (failed attempts included).",
            ["operation"],
            buckets=_UPSTREAM_BUCKETS,
            registry=reg,
        )
        # The labelled child per operation, looked up once (``labels`` costs as much as ``observe``).
        self._latency_children: dict[str, Histogram] = {}
        self._upstream_errors = Counter(
            "imagine_upstream_errors",
            "Failed upstream attempts, by operation and error kind.",
            ["operation", "kind"],
            registry=reg,
        )
        self._status_polls = Counter(
            "imagine_status_polls",
            "Job status polls sent upstream (status URL, or result URL read early).",
            registry=reg,
        )
        self._upstream_up = Gauge(
            "imagine_upstream_up", "1 unless the image service is in an outage (read at scrape time).", registry=reg
        )
        self._upstream_last_success = Gauge(
            "imagine_upstream_last_success_timestamp_seconds",
            "Unix time of the last call the image service answered (0 = none yet).",
            registry=reg,
        )
        self._delivery_lag = Histogram(
            "imagine_delivery_lag_seconds",
            "Seconds from the upstream finishing a job (halfway between the last status read that saw it unfinished and the one that saw it done) to its image being in Discord.",
            buckets=_LAG_BUCKETS,
            registry=reg,
        )
        self._discord_requests = Counter(
            "imagine_discord_requests",
            "Discord HTTP requests, by method, route template and HTTP status (error = no answer).",
            ["method", "route", "status"],
            registry=reg,
        )
        self._discord_rate_limited = Counter(
            "imagine_discord_rate_limited",
            "Discord 429 answers, by method, route template and rate limit scope.",
            ["method", "route", "scope"],
            registry=reg,
        )
        self._loop_lag = Histogram(
            "imagine_event_loop_lag_seconds",
            "How late the event loop woke a timer (seconds past its due time, sampled at a fixed interval).",
            buckets=_LOOP_LAG_BUCKETS,
            registry=reg,
        )
        self._quota_refused = Counter(
            "imagine_quota_refusals", "Requests refused by a quota, by limit.", ["limit"], registry=reg
        )
        Info("imagine_build", "Version of the running bot.", registry=reg).info(
            {"version": version or package_version()}
        )
        for operation in UPSTREAM_OPERATIONS:
            self._upstream_seconds.labels(operation)  # every operation shows up, at 0, from the start
        self._upstream_up.set(1)
        self._active_states: set[str] = set()

    def __repr__(self) -> str:
        return "Metrics()"

    # -- jobs -------------------------------------------------------------------------------

    def job_finished(self, state: str, reason: str | None = None) -> None:
        """A job reached ``state`` (delivered, failed, cancelled…), with an optional ``reason``."""
        self._jobs_finished.labels(state, reason or "none").inc()

    def set_active_jobs(self, counts: Mapping[str, int]) -> None:
        """Active jobs by state; a state seen before and missing now reads 0 (not a stale number)."""
        for state in self._active_states - set(counts):
            self._active_jobs.labels(state).set(0)
        for state, count in counts.items():
            self._active_jobs.labels(state).set(count)
        self._active_states |= set(counts)

    def delivery_lag(self, seconds: float) -> None:
        """Time from the upstream's completion to the image being in Discord."""
        self._delivery_lag.observe(max(0.0, seconds))

    def quota_refused(self, limit: str) -> None:
        """A request refused by the quota named ``limit`` (e.g. ``user_daily``, ``max_concurrent``)."""
        self._quota_refused.labels(limit).inc()

    # -- upstream ---------------------------------------------------------------------------

    def upstream_latency(self, operation: str, seconds: float) -> None:
        """One HTTP attempt to the upstream (``submit``, ``status``, ``result``, ``cancel``, ``download``)."""
        if (child := self._latency_children.get(operation)) is None:
            child = self._latency_children[operation] = self._upstream_seconds.labels(operation)
        child.observe(max(0.0, seconds))

    def upstream_error(self, operation: str, kind: str) -> None:
        """One failed upstream attempt; ``kind`` is :attr:`bot.queue.QueueError.kind`."""
        self._upstream_errors.labels(operation, kind).inc()

    def status_poll(self) -> None:
        self._status_polls.inc()

    def set_upstream_state(self, *, reachable: bool, last_success: float | None) -> None:
        """The image service's health as :class:`bot.queue.UpstreamHealth` sees it (Unix time)."""
        self._upstream_up.set(1 if reachable else 0)
        self._upstream_last_success.set(last_success or 0)

    # -- Discord ----------------------------------------------------------------------------

    def discord_request(self, method: str, url: str | URL, status: int | None, scope: str | None = None) -> None:
        """One Discord HTTP request answered ``status`` (None: no answer, e.g. a connection error);
        ``url`` is reduced to its route template."""
        route = discord_route(url.path if isinstance(url, URL) else url)
        method = method.upper()
        self._discord_requests.labels(method, route, "error" if status is None else str(status)).inc()
        if status == 429:
            self._discord_rate_limited.labels(method, route, _scope(scope)).inc()

    def discord_trace_config(self) -> aiohttp.TraceConfig:
        """A trace config for discord.py's HTTP session (``discord.Client(http_trace=...)``) that counts
        every request (answered or not) and every 429 by route template."""

        async def on_request_end(
            session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestEndParams
        ) -> None:
            response = params.response
            self.discord_request(params.method, params.url, response.status, response.headers.get("X-RateLimit-Scope"))

        async def on_request_exception(
            session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestExceptionParams
        ) -> None:
            self.discord_request(params.method, params.url, None)

        trace = aiohttp.TraceConfig()
        trace.on_request_end.append(on_request_end)
        trace.on_request_exception.append(on_request_exception)
        return trace

    # -- the process -------------------------------------------------------------------------

    def loop_lag(self, seconds: float) -> None:
        """One sample of event-loop lag: how much later than asked a sleep ended."""
        self._loop_lag.observe(max(0.0, seconds))

    # -- output -----------------------------------------------------------------------------

    def render(self) -> bytes:
        """Every metric in the Prometheus text format (``Content-Type`` :data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)


# -- Discord route templates -----------------------------------------------------------------

_API_PREFIX = re.compile(r"^/api(?:/v\d+)?(?=/|$)")
_SNOWFLAKE = re.compile(r"^\d+$")
# A literal route word: letters, '-', '_', optionally after '@' (``@me``, ``@original``). Tokens,
# file names, emoji and anything else that could vary (or be secret) never match.
_WORD = re.compile(r"^@?[a-z][a-z_-]{0,31}$")
_ID_NAMES: Final = {
    "applications": "application_id",
    "channels": "channel_id",
    "commands": "command_id",
    "emojis": "emoji_id",
    "guilds": "guild_id",
    "interactions": "interaction_id",
    "members": "user_id",
    "messages": "message_id",
    "roles": "role_id",
    "stickers": "sticker_id",
    "threads": "thread_id",
    "users": "user_id",
    # The bot's webhooks are interaction webhooks, whose id is the application's.
    "webhooks": "application_id",
}
_TOKEN_AFTER: Final = frozenset({"webhooks", "interactions"})
_ATTACHMENTS: Final = frozenset({"attachments", "ephemeral-attachments"})
_SCOPES: Final = frozenset({"user", "global", "shared"})


def discord_route(url: str) -> str:
    """``https://discord.com/api/v10/channels/1/messages/2?x=y`` → ``/channels/{channel_id}/messages/{message_id}``.

    Ids become named placeholders, interaction and webhook tokens ``{token}``, reaction emoji
    ``{emoji}``, attachment file names ``{filename}``, and any other segment that is not a plain
    route word ``{value}``: a label never carries a token or anything a member chose.
    """
    path = URL(url).path if "://" in url else url.split("?", 1)[0]
    path = _API_PREFIX.sub("", path)
    segments = [s for s in path.split("/") if s]
    if segments and segments[0] in _ATTACHMENTS:
        return _attachment_route(segments)
    out: list[str] = []
    for i, segment in enumerate(segments):
        before = segments[i - 1] if i >= 1 else ""
        if i >= 2 and segments[i - 2] in _TOKEN_AFTER and _SNOWFLAKE.match(before):
            out.append("{token}")
        elif before == "reactions":
            out.append("{emoji}")
        elif i >= 2 and segments[i - 2] == "reactions" and _SNOWFLAKE.match(segment):
            out.append("{user_id}")
        elif _SNOWFLAKE.match(segment):
            out.append("{" + _ID_NAMES.get(before, "id") + "}")
        elif _WORD.match(segment):
            out.append(segment)
        else:
            out.append("{value}")
    return "/" + "/".join(out)


def _attachment_route(segments: list[str]) -> str:
    """CDN files: ``/attachments/{channel_id}/{attachment_id}/{filename}`` (or without the channel)."""
    ids = ["{attachment_id}"] if len(segments) <= 3 else ["{channel_id}", "{attachment_id}"]
    return "/" + "/".join([segments[0], *ids, "{filename}"][: max(1, len(segments))])


def _scope(value: str | None) -> str:
    value = (value or "").lower()
    return value if value in _SCOPES else "unknown"
