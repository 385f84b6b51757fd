"""Tests of the upstream simulator (bot/simulator) through real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import io
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from PIL import Image

from bot.simulator import TRUNCATED_JSON, Fault, Simulator, SimulatorOptions, run_simulator

KEY = "sim-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
ROOT = Path(__file__).resolve().parent.parent


def opts(**kwargs: Any) -> SimulatorOptions:
    return SimulatorOptions(api_key=KEY, **kwargs)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    json: Any = None,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, aiohttp.ClientResponse]:
    async with http.request(method, url, json=json, data=data, headers=AUTH if headers is None else headers) as r:
        assert r.content_type == "application/json"
        return r.status, await r.json(), r


async def submit(http: aiohttp.ClientSession, sim: Simulator, body: Any) -> dict[str, Any]:
    status, payload, _ = await call(http, "POST", sim.queue_url, json=body)
    assert status == 200, payload
    assert isinstance(payload, dict)
    return payload


async def status_of(http: aiohttp.ClientSession, sim: Simulator, request_id: str) -> tuple[int, dict[str, Any]]:
    status, payload, _ = await call(http, "GET", f"{sim.queue_url}/requests/{request_id}/status")
    return status, payload


async def result_of(http: aiohttp.ClientSession, sim: Simulator, request_id: str) -> tuple[int, dict[str, Any]]:
    status, payload, _ = await call(http, "GET", f"{sim.queue_url}/requests/{request_id}/response")
    return status, payload


async def cancel(http: aiohttp.ClientSession, sim: Simulator, request_id: str) -> tuple[int, dict[str, Any]]:
    status, payload, _ = await call(http, "PUT", f"{sim.queue_url}/requests/{request_id}/cancel")
    return status, payload


async def wait_state(sim: Simulator, request_id: str, state: str) -> None:
    await sim.wait_for(lambda: sim.jobs[request_id].state == state)


# --------------------------------------------------------------------------- auth, routing, validation


async def test_auth_required_on_every_endpoint(http: aiohttp.ClientSession) -> None:
    expected = {"error": {"code": "UNAUTHORIZED", "message": "Invalid or missing API key"}, "request_id": None}
    async with run_simulator(opts()) as sim:
        base = f"{sim.queue_url}/requests/mmsu_x"
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
            for method, url in (
                ("POST", sim.queue_url),
                ("GET", f"{base}/status"),
                ("GET", f"{base}/response"),
                ("PUT", f"{base}/cancel"),
            ):
                status, body, _ = await call(http, method, url, json={"prompt": "x"}, headers=headers)
                assert (status, body) == (401, expected)
        assert not sim.jobs
        assert len(sim.calls) == 12
        assert all(c.status == 401 and not c.authorized for c in sim.calls)
        assert all("Authorization" not in c.headers for c in sim.calls)
        assert [c.endpoint for c in sim.calls[:4]] == ["submit", "status", "result", "cancel"]


async def test_unknown_model_and_request(http: aiohttp.ClientSession) -> None:
    async with run_simulator(opts()) as sim:
        status, body, _ = await call(http, "POST", f"{sim.base_url}/v1/queue/other_model", json={"prompt": "x"})
        assert (status, body) == (404, {"detail": "App not found: other_model"})
        assert await status_of(http, sim, "mmsu_nope") == (404, {"detail": "Request not found"})
        assert await result_of(http, sim, "mmsu_nope") == (404, {"detail": "Request not found"})
        assert await cancel(http, sim, "mmsu_nope") == (404, {"status": "NOT_FOUND"})
        status, body, _ = await call(http, "GET", f"{sim.base_url}/nowhere")
        assert status == 404 and "detail" in body
        status, body, _ = await call(http, "DELETE", sim.queue_url)
        assert status == 405 and "detail" in body
        status, body, _ = await call(http, "POST", sim.queue_url, json={"prompt": "x" * 2_000_000})
        assert status == 413 and "detail" in body
        assert [c.status for c in sim.calls] == [404, 404, 404, 404, 404, 405, 413]


@pytest.mark.parametrize(
    ("body", "expected_status", "names"),
    [
        ({"prompt": ""}, 422, ["prompt", "1-2500"]),
        ({"prompt": "x" * 2501}, 422, ["prompt", "2501"]),
        ({}, 422, ["prompt", "required"]),
        ({"prompt": 5}, 422, ["prompt", "string"]),
        ({"prompt": "x", "image_urls": [f"http://127.0.0.1/{i}.png" for i in range(15)]}, 422, ["image_urls", "14"]),
        ({"prompt": "x", "image_urls": ["ftp://127.0.0.1/a.png"]}, 422, ["image_urls[0]", "http"]),
        ({"prompt": "x", "image_urls": "http://127.0.0.1/a.png"}, 422, ["image_urls", "list"]),
        ({"prompt": "x", "aspect_ratio": "7:3"}, 422, ["aspect_ratio", "7:3", "16:9"]),
        ({"prompt": "x", "image_size": "8K"}, 422, ["image_size", "8K", "4K"]),
        ({"prompt": "x", "resolution": "4k"}, 422, ["resolution", "4k"]),
        ({"prompt": "x", "image_size": "1K", "resolution": "2K"}, 422, ["image_size", "resolution", "agree"]),
        ({"prompt": "x", "response_modalities": ["Audio"]}, 422, ["response_modalities"]),
        (["prompt"], 422, ["body", "object"]),
        (b"{not json", 400, ["JSON"]),
    ],
)
async def test_bad_submit_bodies(
    http: aiohttp.ClientSession, body: Any, expected_status: int, names: list[str]
) -> None:
    async with run_simulator(opts()) as sim:
        if isinstance(body, bytes):
            status, payload, _ = await call(http, "POST", sim.queue_url, data=body)
        else:
            status, payload, _ = await call(http, "POST", sim.queue_url, json=body)
        assert status == expected_status
        for name in names:
            assert name in payload["detail"]
        assert not sim.jobs and not sim.submits()


async def test_submit_answer_and_recorded_call(http: aiohttp.ClientSession) -> None:
    async with run_simulator(opts(manual=True)) as sim:
        body = {"prompt": "a red apple", "extra_field": 1}
        answer = await submit(http, sim, body)
        rid = answer["request_id"]
        assert re.fullmatch(r"mmsu_[0-9a-f]+", rid)
        base = f"{sim.queue_url}/requests/{rid}"
        assert answer == {
            "request_id": rid,
            "response_url": f"{base}/response",
            "status_url": f"{base}/status",
            "cancel_url": f"{base}/cancel",
            "queue_position": 0,
        }
        (recorded,) = sim.submits()
        assert recorded.json == body and recorded.request_id == rid and recorded.created_job
        assert recorded.status == 200 and recorded.authorized and recorded.method == "POST"
        assert recorded.headers["Content-Type"] == "application/json"
        assert "authorization" not in recorded.headers
        assert sim.jobs[rid].body == body


# --------------------------------------------------------------------------- queue


async def test_fifo_positions_count_down(http: aiohttp.ClientSession) -> None:
    async with run_simulator(opts(manual=True, workers=1)) as sim:
        first = (await submit(http, sim, {"prompt": "job 0"}))["request_id"]
        await wait_state(sim, first, "IN_PROGRESS")
        ids = [first]
        for i in range(1, 5):
            answer = await submit(http, sim, {"prompt": f"job {i}"})
            assert answer["queue_position"] == i  # the running job counts as ahead
            ids.append(answer["request_id"])
        last = ids[-1]
        for expected, running in zip((4, 3, 2, 1), ids, strict=False):
            status, body = await status_of(http, sim, last)
            assert status == 200
            assert body["status"] == "IN_QUEUE" and body["queue_position"] == expected
            assert body["response_url"].endswith(f"/requests/{last}/response")
            sim.finish(running)
            await wait_state(sim, running, "COMPLETED")
        await wait_state(sim, last, "IN_PROGRESS")
        status, body = await status_of(http, sim, last)
        assert body == {"status": "IN_PROGRESS", "request_id": last, "response_url": body["response_url"]}
        sim.finish(last)
        await wait_state(sim, last, "COMPLETED")
        status, body = await status_of(http, sim, last)
        assert status == 200 and body["status"] == "COMPLETED"
        assert isinstance(body["metrics"]["inference_time"], float)
        starts = [sim.jobs[i].started_at or 0.0 for i in ids]
        assert starts == sorted(starts)


async def test_workers_run_jobs_in_parallel() -> None:
    async with run_simulator(opts(manual=True, workers=2)) as sim, aiohttp.ClientSession() as http:
        ids = [(await submit(http, sim, {"prompt": f"p{i}"}))["request_id"] for i in range(3)]
        await sim.wait_for(lambda: [sim.jobs[i].state for i in ids] == ["IN_PROGRESS", "IN_PROGRESS", "IN_QUEUE"])
        assert sim.queue_position(ids[2]) == 1  # one of the two running jobs must finish first


async def test_zero_position_mode_and_pending_202(http: aiohttp.ClientSession) -> None:
    async with run_simulator(opts(manual=True, position_mode="zero", pending_http_status=202)) as sim:
        ids = [(await submit(http, sim, {"prompt": f"p{i}"})) for i in range(3)]
        assert [a["queue_position"] for a in ids] == [0, 0, 0]
        status, body = await status_of(http, sim, ids[2]["request_id"])
        assert status == 202 and body["status"] == "IN_QUEUE" and body["queue_position"] == 0
        status, body = await result_of(http, sim, ids[2]["request_id"])
        assert status == 202 and body["status"] == "IN_QUEUE"


async def test_wait_for_times_out() -> None:
    async with run_simulator(opts()) as sim:
        with pytest.raises(TimeoutError):
            await sim.wait_for(lambda: False, timeout=0.1)


# --------------------------------------------------------------------------- results and images


async def fetch_png(http: aiohttp.ClientSession, url: str) -> bytes:
    async with http.get(url) as r:  # no Authorization: result files are public, like a CDN
        assert r.status == 200 and r.content_type == "image/png"
        return await r.read()


async def test_pixel_sizes_follow_ratio_and_tier(http: aiohttp.ClientSession) -> None:
    cases = [
        ({"aspect_ratio": "16:9", "image_size": "1K"}, (1376, 768)),
        ({"aspect_ratio": "16:9", "resolution": "2K"}, (2752, 1536)),
        ({"aspect_ratio": "16:9", "image_size": "4K", "resolution": "4K"}, (5504, 3072)),
        ({"aspect_ratio": "9:16", "image_size": "2K"}, (1536, 2752)),
        ({"aspect_ratio": "21:9"}, (1584, 672)),
        ({}, (1024, 1024)),
    ]
    async with run_simulator(opts(workers=2, job_duration=0)) as sim:
        ids = [(await submit(http, sim, {"prompt": "size test", **extra}))["request_id"] for extra, _ in cases]
        await sim.wait_for(lambda: all(sim.jobs[i].state == "COMPLETED" for i in ids), timeout=15)
        for rid, (_, (width, height)) in zip(ids, cases, strict=True):
            status, body = await result_of(http, sim, rid)
            assert status == 200
            image = body["outputs"][0]
            assert image["type"] == "image" and image["content_type"] == "image/png"
            assert (image["width"], image["height"]) == (width, height)
            assert image["url"] == f"{sim.base_url}/files/{rid}/image.png"
            png = await fetch_png(http, image["url"])
            assert image["file_size"] == len(png)
            with Image.open(io.BytesIO(png)) as img:
                assert img.format == "PNG" and img.size == (width, height)


async def test_text_output_and_metadata(http: aiohttp.ClientSession) -> None:
    async with run_simulator(opts(job_duration=0)) as sim:
        with_text = (await submit(http, sim, {"prompt": "A lighthouse at dusk, oil painting"}))["request_id"]
        image_only = (await submit(http, sim, {"prompt": "plain", "response_modalities": ["Image"]}))["request_id"]
        await sim.wait_for(lambda: all(sim.jobs[i].state == "COMPLETED" for i in (with_text, image_only)))
        _, body = await result_of(http, sim, with_text)
        assert body["request_id"] == with_text
        assert body["metadata"] == {"prompt": "A lighthouse at dusk, oil painting"}
        assert [o["type"] for o in body["outputs"]] == ["image", "text"]
        assert "A lighthouse at dusk" in body["outputs"][1]["text"]
        _, body = await result_of(http, sim, image_only)
        assert [o["type"] for o in body["outputs"]] == ["image"]


async def test_images_result_shape(http: aiohttp.ClientSession) -> None:
    async with run_simulator(opts(job_duration=0, result_shape="images")) as sim:
        rid = (await submit(http, sim, {"prompt": "tiny robot", "aspect_ratio": "3:4"}))["request_id"]
        await wait_state(sim, rid, "COMPLETED")
        status, body = await result_of(http, sim, rid)
        assert status == 200 and set(body) == {"images", "description"}
        (image,) = body["images"]
        assert set(image) == {"url", "content_type", "width", "height", "file_name", "file_size"}
        assert (image["width"], image["height"], image["file_name"]) == (896, 1200, "image.png")
        assert "tiny robot" in body["description"]
        assert len(await fetch_png(http, image["url"])) == image["file_size"]


async def test_noisy_4k_image_is_about_30_mb(http: aiohttp.ClientSession) -> None:
    async with run_simulator(opts(job_duration=0, noisy_images=True)) as sim:
        body = {"prompt": "noise", "aspect_ratio": "16:9", "image_size": "4K", "response_modalities": ["Image"]}
        rid = (await submit(http, sim, body))["request_id"]
        await wait_state(sim, rid, "COMPLETED")
        _, result = await result_of(http, sim, rid)
        png = await fetch_png(http, result["outputs"][0]["url"])
        assert 25_000_000 <= len(png) <= 35_000_000
        with Image.open(io.BytesIO(png)) as img:
            assert img.size == (5504, 3072)


# --------------------------------------------------------------------------- cancel and errors


async def test_cancel_queued_running_and_completed(http: aiohttp.ClientSession) -> None:
    async with run_simulator(opts(manual=True)) as sim:
        running, queued, behind = [(await submit(http, sim, {"prompt": f"p{i}"}))["request_id"] for i in range(3)]
        await wait_state(sim, running, "IN_PROGRESS")
        assert sim.queue_position(behind) == 2
        assert await cancel(http, sim, queued) == (202, {"status": "CANCELLATION_REQUESTED"})
        expected_failure = {
            "status": "COMPLETED",
            "request_id": queued,
            "error": "Request was cancelled",
            "error_type": "CANCELED",
        }
        assert await status_of(http, sim, queued) == (200, expected_failure)
        assert await result_of(http, sim, queued) == (200, expected_failure)
        assert sim.jobs[queued].cancel_requested
        assert sim.queued() == [behind]
        _, body = await status_of(http, sim, behind)
        assert body["queue_position"] == 1  # only the running job is ahead now
        assert await cancel(http, sim, queued) == (400, {"status": "ALREADY_COMPLETED"})
        assert await cancel(http, sim, "mmsu_unknown") == (404, {"status": "NOT_FOUND"})

        assert await cancel(http, sim, running) == (202, {"status": "CANCELLATION_REQUESTED"})
        await wait_state(sim, running, "COMPLETED")
        assert sim.jobs[running].error_type == "CANCELED"
        await wait_state(sim, behind, "IN_PROGRESS")  # the slot is free again


async def test_cancel_running_can_still_finish(http: aiohttp.ClientSession) -> None:
    async with run_simulator(opts(manual=True, cancel_running_finishes=True)) as sim:
        rid = (await submit(http, sim, {"prompt": "stubborn"}))["request_id"]
        await wait_state(sim, rid, "IN_PROGRESS")
        assert await cancel(http, sim, rid) == (202, {"status": "CANCELLATION_REQUESTED"})
        assert sim.jobs[rid].state == "IN_PROGRESS"
        sim.finish(rid)
        await wait_state(sim, rid, "COMPLETED")
        assert sim.jobs[rid].error_type is None and sim.jobs[rid].cancel_requested
        status, body = await result_of(http, sim, rid)
        assert status == 200 and body["outputs"][0]["type"] == "image"


async def test_fail_with_fail_next_and_finish_error(http: aiohttp.ClientSession) -> None:
    async with run_simulator(opts(job_duration=0, fail_with="CONTENT_BLOCKED")) as sim:
        rid = (await submit(http, sim, {"prompt": "blocked"}))["request_id"]
        await wait_state(sim, rid, "COMPLETED")
        status, body = await status_of(http, sim, rid)
        assert status == 200 and body["error_type"] == "CONTENT_BLOCKED" and isinstance(body["error"], str)
        assert "response_url" not in body and "metrics" not in body

    async with run_simulator(opts(job_duration=0)) as sim:
        sim.fail_next("INFERENCE_FAILURE")
        failed = (await submit(http, sim, {"prompt": "first"}))["request_id"]
        fine = (await submit(http, sim, {"prompt": "second"}))["request_id"]
        await sim.wait_for(lambda: sim.jobs[failed].state == sim.jobs[fine].state == "COMPLETED")
        assert await result_of(http, sim, failed) == (
            200,
            {
                "status": "COMPLETED",
                "request_id": failed,
                "error": "Task execution failed",
                "error_type": "INFERENCE_FAILURE",
            },
        )
        assert sim.jobs[fine].error_type is None

    async with run_simulator(opts(manual=True)) as sim:
        rid = (await submit(http, sim, {"prompt": "slow"}))["request_id"]
        await wait_state(sim, rid, "IN_PROGRESS")
        waiting = (await submit(http, sim, {"prompt": "waiting"}))["request_id"]
        with pytest.raises(RuntimeError, match="IN_QUEUE"):
            sim.finish(waiting)
        with pytest.raises(KeyError):
            sim.finish("mmsu_missing")
        sim.finish(rid, "INFERENCE_TIMEOUT")
        await wait_state(sim, rid, "COMPLETED")
        assert sim.jobs[rid].error_type == "INFERENCE_TIMEOUT"


# --------------------------------------------------------------------------- faults and balance


async def test_faults_5xx_times_and_any(http: aiohttp.ClientSession) -> None:
    async with run_simulator(opts(manual=True)) as sim:
        rid = (await submit(http, sim, {"prompt": "p"}))["request_id"]
        sim.add_fault(Fault("status", status=503, times=2))
        for _ in range(2):
            assert await status_of(http, sim, rid) == (503, {"detail": "Runtime execution failed"})
        status, _ = await status_of(http, sim, rid)
        assert status == 200
        sim.add_fault(Fault("any", status=502))
        assert await cancel(http, sim, rid) == (502, {"detail": "Runtime execution failed"})
        assert sim.jobs[rid].cancel_requested is False
        assert [c.status for c in sim.calls_to("status")] == [503, 503, 200]
        assert sim.calls_to("status")[0].fault == Fault("status", status=503, times=2)
        assert not sim.pending_faults()


async def test_fault_429_retry_after(http: aiohttp.ClientSession) -> None:
    async with run_simulator(opts(manual=True)) as sim:
        sim.add_fault(Fault("submit", status=429, retry_after=2))
        sim.add_fault(Fault("submit", status=429, retry_after=1.5))
        for expected in ("2", "1.5"):
            status, body, response = await call(http, "POST", sim.queue_url, json={"prompt": "p"})
            assert status == 429 and response.headers["Retry-After"] == expected
            assert body["error"]["code"] == "RATE_LIMIT_EXCEEDED" and body["request_id"] is None
        assert not sim.jobs
        await submit(http, sim, {"prompt": "p"})
        assert len(sim.submits()) == 1


async def test_fault_delay(http: aiohttp.ClientSession) -> None:
    async with run_simulator(opts(manual=True)) as sim:
        rid = (await submit(http, sim, {"prompt": "p"}))["request_id"]
        sim.add_fault(Fault("status", delay=0.3))
        started = time.monotonic()
        status, _ = await status_of(http, sim, rid)
        assert status == 200 and time.monotonic() - started >= 0.3
        assert not sim.pending_faults()
        sim.add_fault(Fault("cancel", status=504, delay=0.2, after_processing=True))
        started = time.monotonic()
        assert await cancel(http, sim, rid) == (504, {"detail": "Runtime execution failed"})
        assert time.monotonic() - started >= 0.2
        assert sim.jobs[rid].cancel_requested  # the cancel took effect, only its answer was lost


async def test_submit_fault_after_processing_creates_job(http: aiohttp.ClientSession) -> None:
    async with run_simulator(opts(manual=True)) as sim:
        sim.add_fault(Fault("submit", status=502, after_processing=True))
        status, body, _ = await call(http, "POST", sim.queue_url, json={"prompt": "lost answer"})
        assert (status, body) == (502, {"detail": "Runtime execution failed"})
        (recorded,) = sim.submits()
        assert recorded.status == 502 and recorded.fault is not None
        assert recorded.request_id in sim.jobs
        assert sim.jobs[recorded.request_id].body == {"prompt": "lost answer"}


async def test_random_faults_from_rates(http: aiohttp.ClientSession) -> None:
    async with run_simulator(opts(error_rate=1.0)) as sim:
        status, body, _ = await call(http, "POST", sim.queue_url, json={"prompt": "p"})
        assert (status, body) == (503, {"detail": "Runtime execution failed"})
    async with run_simulator(opts(rate_limit_rate=1.0)) as sim:
        status, body, response = await call(http, "POST", sim.queue_url, json={"prompt": "p"})
        assert status == 429 and response.headers["Retry-After"] == "1"


async def test_fault_body_replaces_the_answer(http: aiohttp.ClientSession) -> None:
    async with run_simulator(opts(manual=True)) as sim:
        rid = (await submit(http, sim, {"prompt": "p"}))["request_id"]
        sim.add_fault(Fault("status", body=TRUNCATED_JSON))
        async with http.get(f"{sim.queue_url}/requests/{rid}/status", headers=AUTH) as response:
            assert response.status == 200
            assert response.content_type == "application/json"
            assert await response.text() == TRUNCATED_JSON
        status, _ = await status_of(http, sim, rid)
        assert status == 200
        assert sim.calls_to("status")[0].fault == Fault("status", body=TRUNCATED_JSON)

        sim.add_fault(Fault("submit", body='{"queue_position": 0}', status=202, after_processing=True))
        async with http.post(sim.queue_url, json={"prompt": "unnamed"}, headers=AUTH) as response:
            assert (response.status, await response.json()) == (202, {"queue_position": 0})
        assert len(sim.submits()) == 2  # the job exists although its answer did not name it


async def test_revoked_key(http: aiohttp.ClientSession) -> None:
    async with run_simulator(opts(manual=True)) as sim:
        rid = (await submit(http, sim, {"prompt": "p"}))["request_id"]
        sim.revoke_key()
        assert sim.key_revoked
        unauthorized = {"error": {"code": "UNAUTHORIZED", "message": "Invalid or missing API key"}, "request_id": None}
        assert await status_of(http, sim, rid) == (401, unauthorized)
        assert await cancel(http, sim, rid) == (401, unauthorized)
        status, body, _ = await call(http, "POST", sim.queue_url, json={"prompt": "p"})
        assert (status, body) == (401, unauthorized)
        assert len(sim.jobs) == 1 and not sim.jobs[rid].cancel_requested
        assert sim.calls[-1].authorized  # the right key was sent; it is just not accepted any more
        sim.restore_key()
        assert (await status_of(http, sim, rid))[0] == 200


async def test_balance_exhausted(http: aiohttp.ClientSession) -> None:
    async with run_simulator(opts(manual=True, balance=2)) as sim:
        for _ in range(2):
            await submit(http, sim, {"prompt": "p"})
        status, body, _ = await call(http, "POST", sim.queue_url, json={"prompt": "p"})
        assert (status, body) == (403, {"error": "insufficient balance"})
        assert len(sim.jobs) == 2 and len(sim.submits()) == 2


# --------------------------------------------------------------------------- reference images


@pytest.fixture
async def reference_server() -> AsyncIterator[str]:
    """A second tiny server on 127.0.0.1 that hosts reference images."""
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), (10, 200, 30)).save(buffer, "PNG")
    png = buffer.getvalue()

    async def ref(request: web.Request) -> web.Response:
        return web.Response(body=png, content_type="image/png")

    async def text(request: web.Request) -> web.Response:
        return web.Response(body=b"not an image")

    app = web.Application()
    app.router.add_get("/ref.png", ref)
    app.router.add_get("/blob.bin", text)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_image_urls_are_fetched(http: aiohttp.ClientSession, reference_server: str) -> None:
    async with run_simulator(opts(job_duration=0)) as sim:
        urls = [f"{reference_server}/ref.png", f"{reference_server}/blob.bin"]
        rid = (await submit(http, sim, {"prompt": "like this", "image_urls": urls}))["request_id"]
        await wait_state(sim, rid, "COMPLETED")
        job = sim.jobs[rid]
        assert job.error_type is None
        assert len(job.fetched_images) == 2 and job.fetched_images[1] == b"not an image"
        with Image.open(io.BytesIO(job.fetched_images[0])) as img:
            assert img.size == (300, 200)
        _, body = await result_of(http, sim, rid)
        assert (body["outputs"][0]["width"], body["outputs"][0]["height"]) == (1264, 848)  # 3:2 like the input


async def test_failed_fetch_is_request_invalid(http: aiohttp.ClientSession, reference_server: str) -> None:
    async with run_simulator(opts(job_duration=0)) as sim:
        missing = [f"{reference_server}/ref.png", f"{reference_server}/missing.png"]
        first = (await submit(http, sim, {"prompt": "x", "image_urls": missing}))["request_id"]
        remote = await submit(http, sim, {"prompt": "x", "image_urls": ["https://example.invalid/a.png"]})
        second = remote["request_id"]
        await sim.wait_for(lambda: sim.jobs[first].state == sim.jobs[second].state == "COMPLETED")
        assert await status_of(http, sim, first) == (
            200,
            {
                "status": "COMPLETED",
                "request_id": first,
                "error": "Could not fetch image_urls[1]",
                "error_type": "REQUEST_INVALID",
            },
        )
        assert sim.jobs[second].error == "Could not fetch image_urls[0]"  # not loopback: never fetched


# --------------------------------------------------------------------------- CLI


def _cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ODIROUTER_API_KEY"}
    env["PYTHONPATH"] = str(ROOT)
    return env


async def test_cli_without_key_exits_2() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.simulator",
        "--port",
        "0",
        cwd=ROOT,
        env=_cli_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(15):
        out, err = await proc.communicate()
    assert proc.returncode == 2
    assert out == b"" and len(err.decode().strip().splitlines()) == 1 and b"API key" in err


async def test_cli_serves_until_interrupted(http: aiohttp.ClientSession) -> None:
    secret = "cli-secret-key"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.simulator",
        "--port",
        "0",
        "--job-duration",
        "0",
        "--zero-position",
        cwd=ROOT,
        env={**_cli_env(), "ODIROUTER_API_KEY": secret},
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    lines: list[bytes] = []
    try:
        async with asyncio.timeout(15):
            while not (match := re.search(rb"listening on (http://\S+)", lines[-1] if lines else b"")):
                lines.append(await proc.stderr.readline())
                assert lines[-1], b"".join(lines)
            base_url = match.group(1).decode()
            async with http.post(
                f"{base_url}/v1/queue/nano_banana_pro",
                json={"prompt": "from the cli"},
                headers={"Authorization": f"Bearer {secret}"},
            ) as response:
                assert response.status == 200
                assert (await response.json())["queue_position"] == 0
            proc.send_signal(signal.SIGINT)
            rest = await proc.stderr.read()
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = b"".join(lines) + rest
    assert proc.returncode == 0
    assert b"POST /v1/queue/nano_banana_pro -> 200" in log
    assert secret.encode() not in log


# --------------------------------------------------------------------------- spread job durations


def test_durations_spread_uniformly_and_repeat_with_the_seed() -> None:
    def durations(seed: int) -> list[float]:
        sim = Simulator(opts(job_duration=5.0, job_duration_max=20.0, seed=seed))
        return [sim._create_job({"prompt": f"job {i}"}).duration for i in range(400)]

    first = durations(7)
    assert first == durations(7)
    assert first != durations(8)
    assert all(5.0 <= d <= 20.0 for d in first)
    assert min(first) < 6.0 and max(first) > 19.0  # spread over the whole range
    assert 11.5 < sum(first) / len(first) < 13.5  # uniform: mean 12.5


def test_fixed_duration_without_a_maximum() -> None:
    sim = Simulator(opts(job_duration=3.0, seed=1))
    assert {sim._create_job({"prompt": "x"}).duration for _ in range(5)} == {3.0}
    same = Simulator(opts(job_duration=3.0, job_duration_max=3.0))
    assert same._create_job({"prompt": "x"}).duration == 3.0


def test_duration_maximum_below_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match="job_duration_max"):
        opts(job_duration=5.0, job_duration_max=4.0)


def test_random_faults_do_not_shift_durations() -> None:
    calm = Simulator(opts(job_duration=1.0, job_duration_max=2.0, seed=3))
    faulty = Simulator(opts(job_duration=1.0, job_duration_max=2.0, seed=3, error_rate=0.5))
    expected = [calm._create_job({"prompt": "x"}).duration for _ in range(20)]
    got = []
    for _ in range(20):
        faulty._take_fault("status")  # draws from the fault generator
        got.append(faulty._create_job({"prompt": "x"}).duration)
    assert got == expected


async def test_each_job_runs_its_own_duration(http: aiohttp.ClientSession) -> None:
    async with run_simulator(opts(workers=4, job_duration=0.1, job_duration_max=0.6, seed=11)) as sim:
        ids = [(await submit(http, sim, {"prompt": f"p{i}"}))["request_id"] for i in range(4)]
        await sim.wait_for(lambda: all(sim.jobs[r].state == "COMPLETED" for r in ids), timeout=5)
        for request_id in ids:
            job = sim.jobs[request_id]
            assert job.started_at is not None and job.finished_at is not None
            ran = job.finished_at - job.started_at
            assert job.duration - 0.01 <= ran <= job.duration + 0.25
        assert len({round(sim.jobs[r].duration, 3) for r in ids}) == 4


def test_cli_duration_maximum() -> None:
    from bot.simulator.__main__ import build_parser, options_from_args

    args = build_parser().parse_args(["--job-duration", "5", "--job-duration-max", "20", "--seed", "4"])
    options = options_from_args(args, "key")
    assert (options.job_duration, options.job_duration_max, options.seed) == (5.0, 20.0, 4)
    assert options_from_args(build_parser().parse_args([]), "key").job_duration_max is None


async def test_cli_duration_maximum_below_minimum_exits_2() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.simulator",
        "--job-duration",
        "5",
        "--job-duration-max",
        "1",
        cwd=ROOT,
        env={**_cli_env(), "ODIROUTER_API_KEY": "k"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(15):
        out, err = await proc.communicate()
    assert proc.returncode == 2
    assert out == b"" and b"job_duration_max" in err and b"Traceback" not in err


# --------------------------------------------------------------------------- reused images


async def test_reused_images_are_rendered_once_per_ratio_and_tier(http: aiohttp.ClientSession) -> None:
    async with run_simulator(opts(workers=4, job_duration=0, reuse_images=True)) as sim:
        bodies = [
            {"prompt": "one", "aspect_ratio": "16:9"},
            {"prompt": "two", "aspect_ratio": "16:9"},
            {"prompt": "three", "aspect_ratio": "1:1"},
            {"prompt": "four", "aspect_ratio": "16:9", "resolution": "2K"},
        ]
        ids = [(await submit(http, sim, body))["request_id"] for body in bodies]
        await sim.wait_for(lambda: all(sim.jobs[r].state == "COMPLETED" for r in ids))
        one, two, three, four = (sim.jobs[r] for r in ids)
        assert one.image is not None and one.image == two.image  # the same bytes, whatever the prompt
        assert (one.width, one.height) == (1376, 768)
        assert three.image != one.image and (three.width, three.height) == (1024, 1024)
        assert four.image != one.image and (four.width, four.height) == (2752, 1536)


async def test_images_differ_by_prompt_without_reuse(http: aiohttp.ClientSession) -> None:
    async with run_simulator(opts(workers=2, job_duration=0)) as sim:
        ids = [(await submit(http, sim, {"prompt": p}))["request_id"] for p in ("one", "two")]
        await sim.wait_for(lambda: all(sim.jobs[r].state == "COMPLETED" for r in ids))
        assert sim.jobs[ids[0]].image != sim.jobs[ids[1]].image


def test_cli_reuse_images() -> None:
    from bot.simulator.__main__ import build_parser, options_from_args

    assert options_from_args(build_parser().parse_args(["--reuse-images"]), "key").reuse_images
    assert not options_from_args(build_parser().parse_args([]), "key").reuse_images


# --------------------------------------------------------------------------- fail rate and queue depth


def test_fail_rate_fails_that_share_of_jobs_reproducibly() -> None:
    def outcomes(seed: int) -> list[str | None]:
        sim = Simulator(opts(fail_rate=0.5, seed=seed))
        return [sim._create_job({"prompt": "x"}).forced_error_type for _ in range(40)]

    first = outcomes(7)
    assert set(first) == {None, "INFERENCE_FAILURE"}
    assert 10 <= first.count("INFERENCE_FAILURE") <= 30
    assert outcomes(7) == first  # seeded: the same submits fail
    never = Simulator(opts(fail_rate=0.0))
    assert {never._create_job({"prompt": "x"}).forced_error_type for _ in range(20)} == {None}


async def test_a_failed_job_answers_its_error(http: aiohttp.ClientSession) -> None:
    async with run_simulator(opts(fail_rate=1.0, job_duration=0.0)) as sim:
        request_id = (await submit(http, sim, {"prompt": "x"}))["request_id"]
        await wait_state(sim, request_id, "COMPLETED")
        status, body = await status_of(http, sim, request_id)
        assert status == 200 and body["error_type"] == "INFERENCE_FAILURE"


async def test_queue_depth_keeps_other_customers_jobs_ahead(http: aiohttp.ClientSession) -> None:
    async with run_simulator(opts(queue_depth=2, job_duration=0.05)) as sim:
        others = [j for j in sim.jobs.values() if j.background]
        await sim.wait_for(lambda: any(j.state == "IN_PROGRESS" for j in sim.jobs.values()))
        answer = await submit(http, sim, {"prompt": "mine", "response_modalities": ["Text"]})
        mine = answer["request_id"]
        assert answer["queue_position"] == 3  # two waiting and one running ahead of it
        await wait_state(sim, mine, "IN_PROGRESS")
        # Each other job that started was replaced behind mine: two are waiting again.
        assert sum(1 for rid in sim.queued() if sim.jobs[rid].background) == 2
        await wait_state(sim, mine, "COMPLETED")
        status, body = await status_of(http, sim, mine)
        assert status == 200 and body["status"] == "COMPLETED" and "error_type" not in body
        # The other customers' jobs are not reachable through the API, and leave no trace when done.
        status, _ = await status_of(http, sim, sim.queued()[0])
        assert status == 404
        assert others[0].request_id not in sim.jobs  # it ran before mine, and is forgotten
        assert [c.request_id for c in sim.submits()] == [mine]


def test_fail_rate_and_queue_depth_are_checked() -> None:
    with pytest.raises(ValueError, match="fail_rate"):
        opts(fail_rate=1.5)
    with pytest.raises(ValueError, match="queue_depth"):
        opts(queue_depth=-1)
