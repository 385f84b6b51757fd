"""Tests of bot.metrics: the per-instance registry, each metric, and Discord route templates."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import aiohttp
import prometheus_client
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import CONTENT_TYPE, Metrics, discord_route, package_version

TOKEN = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDEyMzQ1Njc4OTpTZWNyZXRUb2tlbg"


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_job_finished_by_state_and_reason() -> None:
    metrics = Metrics()
    metrics.job_finished("delivered")
    metrics.job_finished("failed", "content_blocked")
    metrics.job_finished("failed", "content_blocked")
    assert value(metrics, "imagine_jobs_finished_total", state="delivered", reason="none") == 1
    assert value(metrics, "imagine_jobs_finished_total", state="failed", reason="content_blocked") == 2


def test_active_jobs_gauge_zeroes_states_that_disappear() -> None:
    metrics = Metrics()
    metrics.set_active_jobs({"queued": 3, "running": 1})
    assert value(metrics, "imagine_active_jobs", state="queued") == 3
    metrics.set_active_jobs({"running": 2})
    assert value(metrics, "imagine_active_jobs", state="queued") == 0
    assert value(metrics, "imagine_active_jobs", state="running") == 2


def test_upstream_latency_errors_polls_and_state() -> None:
    metrics = Metrics()
    for operation in ("submit", "status", "result", "cancel", "download"):
        assert value(metrics, "imagine_upstream_request_seconds_count", operation=operation) == 0
    metrics.upstream_latency("status", 0.2)
    metrics.upstream_latency("status", 3.0)
    metrics.upstream_error("status", "timeout")
    metrics.status_poll()
    assert value(metrics, "imagine_upstream_request_seconds_count", operation="status") == 2
    assert value(metrics, "imagine_upstream_request_seconds_bucket", operation="status", le="0.25") == 1
    assert value(metrics, "imagine_upstream_errors_total", operation="status", kind="timeout") == 1
    assert value(metrics, "imagine_status_polls_total") == 1
    assert value(metrics, "imagine_upstream_up") == 1
    metrics.set_upstream_state(reachable=False, last_success=1_700_000_000.0)
    assert value(metrics, "imagine_upstream_up") == 0
    assert value(metrics, "imagine_upstream_last_success_timestamp_seconds") == 1_700_000_000.0


def test_delivery_lag_and_quota_refusals() -> None:
    metrics = Metrics()
    metrics.delivery_lag(1.5)
    metrics.delivery_lag(-0.1)  # clocks disagree: counted as 0, not as a negative lag
    assert value(metrics, "imagine_delivery_lag_seconds_count") == 2
    assert value(metrics, "imagine_delivery_lag_seconds_sum") == 1.5
    assert value(metrics, "imagine_delivery_lag_seconds_bucket", le="0.5") == 1
    metrics.quota_refused("user_daily")
    assert value(metrics, "imagine_quota_refusals_total", limit="user_daily") == 1


def test_build_info_carries_the_package_version() -> None:
    assert value(Metrics(), "imagine_build_info", version=package_version()) == 1
    assert package_version() != "unknown"  # the test run uses the installed project
    assert value(Metrics(version="9.9.9"), "imagine_build_info", version="9.9.9") == 1


def test_instances_share_nothing_and_leave_the_default_registry_alone() -> None:
    first, second = Metrics(), Metrics()
    first.status_poll()
    assert value(first, "imagine_status_polls_total") == 1
    assert value(second, "imagine_status_polls_total") == 0
    assert prometheus_client.REGISTRY.get_sample_value("imagine_status_polls_total") is None


def test_render_is_prometheus_text() -> None:
    metrics = Metrics()
    metrics.job_finished("cancelled", "requester")
    text = metrics.render().decode()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert {"imagine_jobs_finished", "imagine_build_info", "imagine_upstream_request_seconds"} <= set(families)
    assert 'imagine_jobs_finished_total{reason="requester",state="cancelled"} 1.0' in text
    assert CONTENT_TYPE.startswith("text/plain; version=")


@pytest.mark.parametrize(
    ("url", "route"),
    [
        (
            f"https://discord.com/api/v10/webhooks/1234567890123/{TOKEN}/messages/1234567890124?wait=true",
            "/webhooks/{application_id}/{token}/messages/{message_id}",
        ),
        (
            f"https://discord.com/api/v10/webhooks/1234567890123/{TOKEN}/messages/@original",
            "/webhooks/{application_id}/{token}/messages/@original",
        ),
        (f"https://discord.com/api/v10/webhooks/1234567890123/{TOKEN}", "/webhooks/{application_id}/{token}"),
        (
            f"http://127.0.0.1:8000/api/v10/interactions/1234567890125/{TOKEN}/callback",
            "/interactions/{interaction_id}/{token}/callback",
        ),
        ("https://discord.com/api/v10/channels/111/messages/222", "/channels/{channel_id}/messages/{message_id}"),
        (
            "https://discord.com/api/v10/channels/111/messages/222/reactions/%E2%9D%8C/@me",
            "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
        ),
        (
            "https://discord.com/api/v10/channels/111/messages/222/reactions/%E2%9D%8C/333",
            "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/{user_id}",
        ),
        (
            "https://discord.com/api/v10/applications/1/guilds/2/commands",
            "/applications/{application_id}/guilds/{guild_id}/commands",
        ),
        ("https://discord.com/api/v10/guilds/1/members/2", "/guilds/{guild_id}/members/{user_id}"),
        ("https://discord.com/api/v10/users/@me", "/users/@me"),
        ("https://discord.com/api/v10/gateway/bot", "/gateway/bot"),
        (
            "https://cdn.discordapp.com/attachments/111/222/My%20Cat.png?ex=1&is=2&hm=abc",
            "/attachments/{channel_id}/{attachment_id}/{filename}",
        ),
        ("http://127.0.0.1:8000/attachments/222/cat.png", "/attachments/{attachment_id}/{filename}"),
        ("https://discord.com/api/v10/somewhere/Zm9vYmFyYmF6MTIzNDU2", "/somewhere/{value}"),
        ("/api/v10/channels/5/messages", "/channels/{channel_id}/messages"),
    ],
)
def test_discord_route_templates(url: str, route: str) -> None:
    assert discord_route(url) == route


@pytest.fixture
async def fake_discord() -> AsyncIterator[str]:
    """A few Discord-shaped routes on loopback: one answers 429 with a scope."""

    async def edit(request: web.Request) -> web.Response:
        return web.json_response({"id": request.match_info["message_id"]})

    async def limited(request: web.Request) -> web.Response:
        return web.json_response(
            {"message": "You are being rate limited.", "retry_after": 0.1, "global": False},
            status=429,
            headers={"X-RateLimit-Scope": "user"},
        )

    app = web.Application()
    app.router.add_patch("/api/v10/webhooks/{app}/{token}/messages/{message_id}", edit)
    app.router.add_post("/api/v10/channels/{channel}/messages", limited)
    async with TestServer(app, host="127.0.0.1") as server:
        yield f"http://127.0.0.1:{server.port}/api/v10"


async def test_trace_config_counts_requests_and_429s_by_route(fake_discord: str) -> None:
    metrics = Metrics()
    async with aiohttp.ClientSession(trace_configs=[metrics.discord_trace_config()]) as session:
        for message_id in ("1234567890124", "1234567890125"):
            async with session.patch(f"{fake_discord}/webhooks/1234567890123/{TOKEN}/messages/{message_id}") as r:
                assert r.status == 200
        async with session.post(f"{fake_discord}/channels/111/messages", json={"content": "hi"}) as r:
            assert r.status == 429
    webhook = "/webhooks/{application_id}/{token}/messages/{message_id}"
    channel = "/channels/{channel_id}/messages"
    assert value(metrics, "imagine_discord_requests_total", method="PATCH", route=webhook, status="200") == 2
    assert value(metrics, "imagine_discord_requests_total", method="POST", route=channel, status="429") == 1
    assert value(metrics, "imagine_discord_rate_limited_total", method="POST", route=channel, scope="user") == 1
    assert value(metrics, "imagine_discord_rate_limited_total", method="PATCH", route=webhook, scope="user") is None
    text = metrics.render().decode()
    assert TOKEN not in text
    assert "1234567890124" not in text


async def test_trace_config_counts_requests_that_got_no_answer() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    metrics = Metrics()
    async with aiohttp.ClientSession(trace_configs=[metrics.discord_trace_config()]) as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(f"http://127.0.0.1:{port}/api/v10/users/@me"):
                pass
    assert value(metrics, "imagine_discord_requests_total", method="GET", route="/users/@me", status="error") == 1
