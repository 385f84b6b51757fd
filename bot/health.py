"""The operator's view of a running bot: ``/healthz`` and ``/metrics`` on a small HTTP listener.

``/healthz`` answers 200 when the Discord gateway is connected and the database answers, 503
otherwise, with a JSON body naming each part's state. The image service's state is shown too
(reachable or not, last success, last error), but an upstream outage does not make the bot
unhealthy: restarting it would not help, and jobs keep waiting for the service to come back.

``/metrics`` serves :class:`bot.metrics.Metrics` in the Prometheus text format, after refreshing the
gauges read at scrape time (active jobs by state, the upstream's state).

    async with serve_health("127.0.0.1", 9108, gateway_ok=..., database_ok=..., upstream=client.health,
                            metrics=metrics, active_counts=store_counts) as server:
        ...  # server.port is the bound port (useful with port 0)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from bot.metrics import CONTENT_TYPE, Metrics
from bot.queue.health import UpstreamHealth

log = logging.getLogger(__name__)

#: How long a check (the database, the active-jobs count) may take before it counts as failed.
CHECK_TIMEOUT: Final = 5.0

GatewayCheck = Callable[[], bool]
DatabaseCheck = Callable[[], Awaitable[bool]]
ActiveCounts = Callable[[], Awaitable[Mapping[str, int]]]


@dataclass(frozen=True, slots=True)
class HealthServer:
    """A running listener: where it is bound."""

    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


class _Endpoints:
    def __init__(
        self,
        *,
        gateway_ok: GatewayCheck,
        database_ok: DatabaseCheck,
        upstream: UpstreamHealth,
        metrics: Metrics,
        active_counts: ActiveCounts,
        check_timeout: float,
    ) -> None:
        self._gateway_ok = gateway_ok
        self._database_ok = database_ok
        self._upstream = upstream
        self._metrics = metrics
        self._active_counts = active_counts
        self._timeout = check_timeout

    async def healthz(self, request: web.Request) -> web.Response:
        gateway = self._gateway()
        database = await self._database()
        healthy = gateway["ok"] and database["ok"]
        body = {
            "status": "ok" if healthy else "unhealthy",
            "gateway": gateway,
            "database": database,
            "upstream": self._upstream.snapshot(),
        }
        return web.json_response(body, status=200 if healthy else 503, headers={"Cache-Control": "no-store"})

    async def metrics(self, request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(self._timeout):
                counts = await self._active_counts()
        except Exception as exc:  # the scrape still shows everything else
            log.warning("metrics: counting active jobs failed: %s", _describe(exc))
        else:
            self._metrics.set_active_jobs(counts)
        self._metrics.set_upstream_state(reachable=self._upstream.reachable, last_success=self._upstream.last_success)
        return web.Response(
            body=self._metrics.render(), headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"}
        )

    def _gateway(self) -> dict[str, Any]:
        try:
            ok = bool(self._gateway_ok())
        except Exception as exc:
            return {"ok": False, "error": _describe(exc)}
        return {"ok": ok} if ok else {"ok": False, "error": "not connected to the Discord gateway"}

    async def _database(self) -> dict[str, Any]:
        try:
            async with asyncio.timeout(self._timeout):
                ok = bool(await self._database_ok())
        except TimeoutError:
            return {"ok": False, "error": f"no answer within {self._timeout:g} s"}
        except Exception as exc:
            return {"ok": False, "error": _describe(exc)}
        return {"ok": ok} if ok else {"ok": False, "error": "the database check failed"}


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def create_health_app(
    *,
    gateway_ok: GatewayCheck,
    database_ok: DatabaseCheck,
    upstream: UpstreamHealth,
    metrics: Metrics,
    active_counts: ActiveCounts,
    check_timeout: float = CHECK_TIMEOUT,
) -> web.Application:
    """The aiohttp application behind :func:`serve_health` (``GET /healthz``, ``GET /metrics``)."""
    endpoints = _Endpoints(
        gateway_ok=gateway_ok,
        database_ok=database_ok,
        upstream=upstream,
        metrics=metrics,
        active_counts=active_counts,
        check_timeout=check_timeout,
    )
    app = web.Application()
    app.router.add_get("/healthz", endpoints.healthz, allow_head=True)
    app.router.add_get("/metrics", endpoints.metrics)
    return app


@contextlib.asynccontextmanager
async def serve_health(
    host: str,
    port: int,
    *,
    gateway_ok: GatewayCheck,
    database_ok: DatabaseCheck,
    upstream: UpstreamHealth,
    metrics: Metrics,
    active_counts: ActiveCounts,
    check_timeout: float = CHECK_TIMEOUT,
) -> AsyncIterator[HealthServer]:
    """Serve ``/healthz`` and ``/metrics`` on ``host:port`` (0 = any free port) for the block's duration.

    ``gateway_ok()`` says whether the Discord gateway is connected; ``database_ok()`` runs a cheap
    query; ``active_counts()`` gives unfinished jobs by state. A check that raises or takes longer
    than ``check_timeout`` seconds counts as failed.
    """
    app = create_health_app(
        gateway_ok=gateway_ok,
        database_ok=database_ok,
        upstream=upstream,
        metrics=metrics,
        active_counts=active_counts,
        check_timeout=check_timeout,
    )
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0]
        server = HealthServer(host=host, port=int(bound[1]))
        log.info("health and metrics listening on %s", server.url)
        yield server
    finally:
        await runner.cleanup()
