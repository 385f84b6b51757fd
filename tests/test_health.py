"""Tests of bot.health (the /healthz and /metrics listener) and of bot.queue.health.UpstreamHealth."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from bot.health import HealthServer, serve_health
from bot.metrics import Metrics
from bot.queue import (
    AuthenticationError,
    InsufficientBalanceError,
    NotFoundError,
    RateLimitedError,
    UpstreamHealth,
    UpstreamUnavailableError,
)

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


class WallClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Parts:
    """Fake callbacks for serve_health, each settable by a test."""

    gateway: bool = True
    database: bool = True
    database_error: Exception | None = None
    database_hangs: bool = False
    counts: dict[str, int] = field(default_factory=lambda: {"queued": 2, "running": 1})
    counts_error: Exception | None = None
    database_calls: int = 0

    def gateway_ok(self) -> bool:
        return self.gateway

    async def database_ok(self) -> bool:
        self.database_calls += 1
        if self.database_hangs:
            await asyncio.Event().wait()
        if self.database_error is not None:
            raise self.database_error
        return self.database

    async def active_counts(self) -> Mapping[str, int]:
        if self.counts_error is not None:
            raise self.counts_error
        return dict(self.counts)


Serve = Callable[..., Awaitable[tuple[HealthServer, Parts, UpstreamHealth, Metrics]]]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    async with contextlib.AsyncExitStack() as stack:

        async def start(
            clock: WallClock | None = None, **kwargs: Any
        ) -> tuple[HealthServer, Parts, UpstreamHealth, Metrics]:
            parts = Parts()
            upstream = UpstreamHealth(clock=clock or WallClock())
            metrics = Metrics()
            server = await stack.enter_async_context(
                serve_health(
                    "127.0.0.1",
                    0,
                    gateway_ok=parts.gateway_ok,
                    database_ok=parts.database_ok,
                    upstream=upstream,
                    metrics=metrics,
                    active_counts=parts.active_counts,
                    **kwargs,
                )
            )
            return server, parts, upstream, metrics

        yield start


async def get_json(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    async with http.get(url) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json()


async def get_text(http: aiohttp.ClientSession, url: str) -> tuple[int, str, str]:
    async with http.get(url) as response:
        return response.status, response.headers["Content-Type"], await response.text()


# --------------------------------------------------------------------------- /healthz


async def test_healthz_ok_names_every_part(http: aiohttp.ClientSession, serve: Serve) -> None:
    server, _, upstream, _ = await serve()
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}"
    upstream.succeeded("status")
    status, body = await get_json(http, f"{server.url}/healthz")
    assert status == 200
    assert body == {
        "status": "ok",
        "gateway": {"ok": True},
        "database": {"ok": True},
        "upstream": {
            "reachable": True,
            "key_refused": False,
            "last_success": "2023-11-14T22:13:20+00:00",
            "last_error": None,
            "outage_since": None,
            "outage_seconds": None,
        },
    }


async def test_healthz_503_when_the_gateway_is_down(http: aiohttp.ClientSession, serve: Serve) -> None:
    server, parts, _, _ = await serve()
    parts.gateway = False
    status, body = await get_json(http, f"{server.url}/healthz")
    assert status == 503
    assert body["status"] == "unhealthy"
    assert body["gateway"] == {"ok": False, "error": "not connected to the Discord gateway"}
    assert body["database"] == {"ok": True}


@pytest.mark.parametrize(
    ("setup", "error"),
    [
        (lambda parts: setattr(parts, "database", False), "the database check failed"),
        (lambda parts: setattr(parts, "database_error", OSError("disk I/O error")), "OSError: disk I/O error"),
        (lambda parts: setattr(parts, "database_hangs", True), "no answer within 0.05 s"),
    ],
    ids=["false", "raises", "hangs"],
)
async def test_healthz_503_when_the_database_does_not_answer(
    http: aiohttp.ClientSession, serve: Serve, setup: Callable[[Parts], None], error: str
) -> None:
    server, parts, _, _ = await serve(check_timeout=0.05)
    setup(parts)
    status, body = await get_json(http, f"{server.url}/healthz")
    assert status == 503
    assert body["database"] == {"ok": False, "error": error}
    assert body["gateway"] == {"ok": True}


async def test_healthz_stays_200_during_an_upstream_outage(http: aiohttp.ClientSession, serve: Serve) -> None:
    """An outage of the image service is shown, with the last success and the last error, but is not a 503."""
    clock = WallClock()
    server, _, upstream, _ = await serve(clock=clock)
    upstream.succeeded("status")
    clock.now += 60
    upstream.failed(UpstreamUnavailableError("the upstream did not answer in time", kind="timeout"), "status")
    clock.now += 30
    status, body = await get_json(http, f"{server.url}/healthz")
    assert status == 200
    assert body["status"] == "ok"
    assert body["upstream"] == {
        "reachable": False,
        "key_refused": False,
        "last_success": "2023-11-14T22:13:20+00:00",
        "last_error": {
            "at": "2023-11-14T22:14:20+00:00",
            "operation": "status",
            "kind": "timeout",
            "message": "the upstream did not answer in time",
        },
        "outage_since": "2023-11-14T22:14:20+00:00",
        "outage_seconds": 30.0,
    }


async def test_healthz_head_and_unknown_paths(http: aiohttp.ClientSession, serve: Serve) -> None:
    server, _, _, _ = await serve()
    async with http.head(f"{server.url}/healthz") as response:
        assert response.status == 200
    async with http.get(f"{server.url}/nothing") as response:
        assert response.status == 404


# --------------------------------------------------------------------------- /metrics


async def test_metrics_refreshes_active_jobs_at_each_scrape(http: aiohttp.ClientSession, serve: Serve) -> None:
    server, parts, _, metrics = await serve()
    metrics.job_finished("delivered")
    status, content_type, text = await get_text(http, f"{server.url}/metrics")
    assert status == 200
    assert content_type.startswith("text/plain; version=")
    assert 'imagine_active_jobs{state="queued"} 2.0' in text
    assert 'imagine_active_jobs{state="running"} 1.0' in text
    assert 'imagine_jobs_finished_total{reason="none",state="delivered"} 1.0' in text
    assert "imagine_upstream_up 1.0" in text

    parts.counts = {"running": 4}
    _, _, text = await get_text(http, f"{server.url}/metrics")
    assert 'imagine_active_jobs{state="queued"} 0.0' in text
    assert 'imagine_active_jobs{state="running"} 4.0' in text


async def test_metrics_show_the_upstream_state(http: aiohttp.ClientSession, serve: Serve) -> None:
    server, _, upstream, _ = await serve()
    upstream.succeeded("submit")
    upstream.failed(UpstreamUnavailableError("HTTP 503"), "status")
    _, _, text = await get_text(http, f"{server.url}/metrics")
    assert "imagine_upstream_up 0.0" in text
    assert "imagine_upstream_last_success_timestamp_seconds 1.7e+09" in text


async def test_metrics_still_served_when_counting_fails(
    http: aiohttp.ClientSession, serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    server, parts, _, _ = await serve()
    parts.counts_error = RuntimeError("database is locked")
    status, _, text = await get_text(http, f"{server.url}/metrics")
    assert status == 200
    assert "imagine_build_info" in text
    assert any("database is locked" in record.getMessage() for record in caplog.records)


async def test_listener_stops_with_the_block(http: aiohttp.ClientSession) -> None:
    parts = Parts()
    async with serve_health(
        "127.0.0.1",
        0,
        gateway_ok=parts.gateway_ok,
        database_ok=parts.database_ok,
        upstream=UpstreamHealth(),
        metrics=Metrics(),
        active_counts=parts.active_counts,
    ) as server:
        assert (await get_json(http, f"{server.url}/healthz"))[0] == 200
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.get(f"{server.url}/healthz"):
            pass


# --------------------------------------------------------------------------- UpstreamHealth


def records(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "bot.queue.health"]


def test_outage_starts_on_a_final_failure_and_ends_on_a_success(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    clock = WallClock()
    health = UpstreamHealth(clock=clock)
    down = UpstreamUnavailableError("could not reach the upstream (ClientConnectorError)", kind="connection")
    health.failed(down, "status", final=False, started=clock.now)
    assert health.reachable  # retries are still going on
    clock.now += 3
    health.failed(down, "status", final=True, started=clock.now - 3)
    assert not health.reachable
    assert health.outage_since == T0  # from the first failure, not the final one
    for _ in range(5):
        clock.now += 10
        health.failed(down, "status", final=True, started=clock.now)
    clock.now += 7
    health.succeeded("status")
    assert health.reachable
    assert records(caplog) == [
        (
            logging.WARNING,
            "the image service is unreachable: could not reach the upstream (ClientConnectorError); jobs keep waiting",
        ),
        (logging.INFO, "the image service answered again after 60 s"),
    ]


def test_answers_that_are_not_the_services_fault_count_as_success(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    health = UpstreamHealth(clock=WallClock())
    health.failed(UpstreamUnavailableError("HTTP 502"), "status")
    assert not health.reachable
    health.failed(NotFoundError("Request not found", status=404), "status")
    assert health.reachable
    assert health.last_error is not None and health.last_error.kind == "http_5xx"


def test_rate_limits_and_malformed_answers_neither_start_nor_end_an_outage() -> None:
    health = UpstreamHealth(clock=WallClock())
    health.failed(RateLimitedError("RATE_LIMIT_EXCEEDED", retry_after=5), "status")
    assert health.reachable
    health.failed(UpstreamUnavailableError("HTTP 503"), "status")
    health.failed(RateLimitedError("RATE_LIMIT_EXCEEDED"), "status")
    assert not health.reachable
    assert health.last_error is not None and health.last_error.kind == "http_429"


def test_refusals_are_logged_once_each_until_a_success(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    health = UpstreamHealth(clock=WallClock())
    for _ in range(4):
        health.failed(AuthenticationError("UNAUTHORIZED: Invalid or missing API key", status=401), "status")
    assert health.key_refused and health.reachable
    health.failed(InsufficientBalanceError("insufficient balance", status=403), "submit")
    health.failed(InsufficientBalanceError("insufficient balance", status=403), "submit")
    health.succeeded("status")
    assert not health.key_refused
    health.failed(AuthenticationError("UNAUTHORIZED", status=401), "status")
    levels = [level for level, _ in records(caplog)]
    assert levels == [logging.ERROR, logging.ERROR, logging.INFO, logging.ERROR]
    messages = [message for _, message in records(caplog)]
    assert "refused the API key" in messages[0]
    assert "refused the account" in messages[1]


def test_snapshot_before_anything_happened() -> None:
    assert UpstreamHealth().snapshot() == {
        "reachable": True,
        "key_refused": False,
        "last_success": None,
        "last_error": None,
        "outage_since": None,
        "outage_seconds": None,
    }
