"""Tests of the queue client (bot/queue) against real loopback servers: the simulator and small ad-hoc apps."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image

from bot.devtools.fakediscord import wait_until
from bot.metrics import Metrics
from bot.queue import (
    AuthenticationError,
    CancelOutcome,
    ErrorType,
    GenerationRequest,
    InsufficientBalanceError,
    InvalidRequestError,
    JobHandle,
    MalformedResponseError,
    NotFoundError,
    QueueClient,
    QueueResult,
    QueueState,
    QueueStatus,
    RateLimitedError,
    ResultTooLargeError,
    RetryPolicy,
    SubmitUncertainError,
    UpstreamHealth,
    UpstreamUnavailableError,
)
from bot.queue.models import parse_result, parse_status
from bot.simulator import TRUNCATED_JSON, Fault, Simulator, SimulatorOptions, run_simulator
from bot.simulator.app import Endpoint

# Random-looking from its first character, so even a partial leak of a prefix is detectable.
KEY = "Q7f3a9c1e5b2d4f6a8c0e2b4d6f8a0c1"
REQUEST = GenerationRequest("a lighthouse at dusk")
MAX_DOWNLOAD = 20 * 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
StartSim = Callable[..., Awaitable[Simulator]]
Serve = Callable[[Handler], Awaitable[str]]
MakeClient = Callable[..., QueueClient]


class FakeSleep:
    """Records every requested delay and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


class Recorder:
    """An ad-hoc upstream handler that records (method, path, Authorization) and delegates the answer."""

    def __init__(self, answer: Handler) -> None:
        self.seen: list[tuple[str, str, str | None]] = []
        self._answer = answer

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((request.method, request.path, request.headers.get("Authorization")))
        return await self._answer(request)


# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
async def start_sim() -> AsyncIterator[StartSim]:
    """Start a simulator (manual, one worker unless overridden); stopped at teardown."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**overrides: Any) -> Simulator:
            options = SimulatorOptions(api_key=KEY, **{"workers": 1, "manual": True, **overrides})
            return await stack.enter_async_context(run_simulator(options))

        yield start


@pytest.fixture
async def sim(start_sim: StartSim) -> Simulator:
    return await start_sim()


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Serve an ad-hoc catch-all handler on loopback; returns its base URL."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(handler: Handler) -> str:
            async def route(request: web.Request) -> web.StreamResponse:
                return await handler(request)

            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", route)
            server = await stack.enter_async_context(TestServer(app))
            return f"http://{server.host}:{server.port}"

        yield start


@pytest.fixture
def make_client(session: aiohttp.ClientSession, sleep: FakeSleep) -> MakeClient:
    def make(base_url: str, **kwargs: Any) -> QueueClient:
        kwargs.setdefault("api_key", KEY)
        kwargs.setdefault("sleep", sleep)
        return QueueClient(session, base_url=base_url, rng=random.Random(0), **kwargs)

    return make


@pytest.fixture
def client(sim: Simulator, make_client: MakeClient) -> QueueClient:
    return make_client(sim.base_url)


async def wait_state(sim: Simulator, handle: JobHandle, state: str) -> None:
    await sim.wait_for(lambda: sim.jobs[handle.request_id].state == state)


async def submit_running(sim: Simulator, client: QueueClient, request: GenerationRequest = REQUEST) -> JobHandle:
    handle = (await client.submit(request)).handle
    await wait_state(sim, handle, "IN_PROGRESS")
    return handle


async def finish(sim: Simulator, handle: JobHandle, error_type: str | None = None) -> None:
    sim.finish(handle.request_id, error_type)
    await wait_state(sim, handle, "COMPLETED")


async def finished_result(sim: Simulator, client: QueueClient, request: GenerationRequest = REQUEST) -> QueueResult:
    handle = await submit_running(sim, client, request)
    await finish(sim, handle)
    result = await client.result(handle)
    assert isinstance(result, QueueResult)
    return result


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def statuses(sim: Simulator, endpoint: Endpoint) -> list[int | None]:
    return [call.status for call in sim.calls_to(endpoint)]


# --------------------------------------------------------------------------- 1. full flow


@pytest.mark.parametrize(
    ("aspect_ratio", "tier", "size"),
    [
        ("16:9", "1K", (1376, 768)),
        ("16:9", "2K", (2752, 1536)),
        ("1:1", "1K", (1024, 1024)),
        ("1:1", "2K", (2048, 2048)),
        ("9:16", "1K", (768, 1376)),
        ("9:16", "2K", (1536, 2752)),
    ],
)
async def test_job_followed_from_queue_position_to_downloaded_image(
    sim: Simulator, client: QueueClient, aspect_ratio: str, tier: str, size: tuple[int, int]
) -> None:
    """A job with 3 jobs ahead is followed position by position to a downloaded PNG of the right size."""
    blockers = [(await client.submit(GenerationRequest(f"blocker {i}"))).handle for i in range(3)]
    await wait_state(sim, blockers[0], "IN_PROGRESS")
    submission = await client.submit(GenerationRequest("a fox", aspect_ratio=aspect_ratio, resolution=tier))
    handle = submission.handle
    assert submission.queue_position == 3

    positions = []
    for blocker in blockers:
        reading = await client.status(handle)
        assert reading.state is QueueState.QUEUED
        positions.append(reading.queue_position)
        await finish(sim, blocker)
    assert positions == [3, 2, 1]

    await wait_state(sim, handle, "IN_PROGRESS")
    assert (await client.status(handle)).state is QueueState.RUNNING
    await finish(sim, handle)
    final = await client.status(handle)
    assert final.state is QueueState.SUCCEEDED
    assert final.inference_time is not None

    result = await client.result(handle)
    assert isinstance(result, QueueResult)
    assert len(result.images) == 1
    image = result.images[0]
    assert (image.width, image.height) == size
    data = await client.download(image.url, max_bytes=MAX_DOWNLOAD)
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "PNG"
        assert img.size == size


# --------------------------------------------------------------------------- 2. statuses and results


async def test_status_queued_reports_real_position(sim: Simulator, client: QueueClient) -> None:
    """A job behind a running one and a queued one reads QUEUED at position 2."""
    await submit_running(sim, client)
    await client.submit(REQUEST)
    reading = await client.status((await client.submit(REQUEST)).handle)
    assert reading == QueueStatus(reading.request_id, QueueState.QUEUED, queue_position=2)


async def test_status_queued_with_position_stuck_at_zero(start_sim: StartSim, make_client: MakeClient) -> None:
    """In "zero" position mode a job deep in the queue reads QUEUED at position 0."""
    sim = await start_sim(position_mode="zero")
    client = make_client(sim.base_url)
    await submit_running(sim, client)
    await client.submit(REQUEST)
    reading = await client.status((await client.submit(REQUEST)).handle)
    assert reading.state is QueueState.QUEUED
    assert reading.queue_position == 0


async def test_status_running(sim: Simulator, client: QueueClient) -> None:
    """A started job reads RUNNING without a position."""
    reading = await client.status(await submit_running(sim, client))
    assert reading.state is QueueState.RUNNING
    assert reading.queue_position is None


async def test_status_answered_202_while_pending_is_accepted(start_sim: StartSim, make_client: MakeClient) -> None:
    """A status endpoint answering HTTP 202 while the job runs is read normally."""
    sim = await start_sim(pending_http_status=202)
    client = make_client(sim.base_url)
    handle = await submit_running(sim, client)
    assert (await client.status(handle)).state is QueueState.RUNNING
    assert statuses(sim, "status") == [202]


async def test_status_succeeded(sim: Simulator, client: QueueClient) -> None:
    """A finished job reads SUCCEEDED with no error."""
    handle = await submit_running(sim, client)
    await finish(sim, handle)
    reading = await client.status(handle)
    assert reading.state is QueueState.SUCCEEDED
    assert reading.error is None
    assert reading.error_type is None


FAILURE_TYPES = [
    "CONTENT_BLOCKED",
    "INFERENCE_FAILURE",
    "INFERENCE_TIMEOUT",
    "REQUEST_INVALID",
    "INTERNAL_SERVER_ERROR",
]


@pytest.mark.parametrize("error_type", FAILURE_TYPES)
async def test_status_failed_maps_error_type(sim: Simulator, client: QueueClient, error_type: str) -> None:
    """COMPLETED with an error_type reads FAILED with that ErrorType and the error text."""
    handle = await submit_running(sim, client)
    await finish(sim, handle, error_type)
    reading = await client.status(handle)
    assert reading.state is QueueState.FAILED
    assert reading.error_type is ErrorType(error_type)
    assert reading.error


@pytest.mark.parametrize("error_type", FAILURE_TYPES)
async def test_result_of_failed_job_carries_failure(sim: Simulator, client: QueueClient, error_type: str) -> None:
    """The result of a failed job is a QueueResult without images whose failure names the ErrorType."""
    handle = await submit_running(sim, client)
    await finish(sim, handle, error_type)
    result = await client.result(handle)
    assert isinstance(result, QueueResult)
    assert result.images == ()
    assert result.failure is not None
    assert result.failure.state is QueueState.FAILED
    assert result.failure.error_type is ErrorType(error_type)


async def test_forced_failure_from_fail_next_reads_failed(sim: Simulator, client: QueueClient) -> None:
    """A job the simulator was told to fail (fail_next) reads FAILED with that type."""
    sim.fail_next("CONTENT_BLOCKED")
    handle = await submit_running(sim, client)
    await finish(sim, handle)
    reading = await client.status(handle)
    assert (reading.state, reading.error_type) == (QueueState.FAILED, ErrorType.CONTENT_BLOCKED)


async def test_status_cancelled(sim: Simulator, client: QueueClient) -> None:
    """COMPLETED + CANCELED reads CANCELLED."""
    await submit_running(sim, client)
    handle = (await client.submit(REQUEST)).handle
    await client.cancel(handle)
    reading = await client.status(handle)
    assert reading.state is QueueState.CANCELLED
    assert reading.error_type is ErrorType.CANCELED


async def test_result_while_queued_returns_status(sim: Simulator, client: QueueClient) -> None:
    """The result endpoint's 202 for an unfinished job comes back as a QueueStatus, not an error."""
    await submit_running(sim, client)
    handle = (await client.submit(REQUEST)).handle
    reading = await client.result(handle)
    assert isinstance(reading, QueueStatus)
    assert reading.state is QueueState.QUEUED
    assert statuses(sim, "result") == [202]


async def test_result_while_running_returns_status(sim: Simulator, client: QueueClient) -> None:
    """A running job's result call returns a RUNNING QueueStatus."""
    reading = await client.result(await submit_running(sim, client))
    assert isinstance(reading, QueueStatus)
    assert reading.state is QueueState.RUNNING


async def test_look_reads_the_response_url_once_a_job_is_likely_done(sim: Simulator, make_client: MakeClient) -> None:
    """A poll of a job that may be done reads its response URL: 202 while it runs (counted as a
    status poll), the result in the same trip once it is finished; otherwise the status URL."""
    metrics = Metrics()
    client = make_client(sim.base_url, metrics=metrics)
    handle = await submit_running(sim, client)
    assert await client.look(handle, likely_done=False) == await client.look(handle, likely_done=True)
    reading = await client.look(handle, likely_done=True)
    assert isinstance(reading, QueueStatus) and reading.state is QueueState.RUNNING
    await finish(sim, handle)
    result = await client.look(handle, likely_done=True)
    assert isinstance(result, QueueResult) and len(result.images) == 1
    assert (statuses(sim, "status"), statuses(sim, "result")) == ([200], [202, 202, 200])
    assert metrics.registry.get_sample_value("imagine_status_polls_total") == 4  # the result read found it done


@pytest.mark.parametrize("answer", [400, 404, 422])
async def test_an_upstream_without_early_results_is_polled_by_status_from_then_on(
    sim: Simulator, client: QueueClient, answer: int
) -> None:
    """Should the response URL of an unfinished job answer an error instead of 202, the poll reads
    the status URL at once, and the client never reads a response URL early again."""
    handle = await submit_running(sim, client)
    sim.add_fault(Fault("result", status=answer, body='{"detail": "Request is still in progress"}'))
    reading = await client.look(handle, likely_done=True)
    assert isinstance(reading, QueueStatus) and reading.state is QueueState.RUNNING
    assert await client.look(handle, likely_done=True) == reading
    assert (statuses(sim, "result"), statuses(sim, "status")) == ([answer], [200, 200])
    await finish(sim, handle)
    assert isinstance(await client.result(handle), QueueResult)  # the result itself is still read there


async def test_a_failed_job_whose_response_url_errs_keeps_early_results(sim: Simulator, client: QueueClient) -> None:
    """An error from the response URL of a job that has ended is about that job, not the upstream:
    the status read tells how it ended, and the next job's poll reads its response URL again."""
    handle = await submit_running(sim, client)
    await finish(sim, handle, "CONTENT_BLOCKED")
    sim.add_fault(Fault("result", status=422, body='{"detail": "Content blocked"}'))
    reading = await client.look(handle, likely_done=True)
    assert isinstance(reading, QueueStatus) and reading.error_type is ErrorType.CONTENT_BLOCKED
    other = await submit_running(sim, client)
    assert isinstance(await client.look(other, likely_done=True), QueueStatus)
    assert statuses(sim, "result") == [422, 202]


async def test_result_outputs_shape_with_text(sim: Simulator, client: QueueClient) -> None:
    """with_text=True gives the image plus the model's text from the outputs[] shape."""
    result = await finished_result(sim, client, GenerationRequest("a red bicycle", with_text=True))
    assert len(result.images) == 1
    assert "a red bicycle" in result.text


async def test_result_outputs_shape_image_only(sim: Simulator, client: QueueClient) -> None:
    """with_text=False asks for images only and gets no text."""
    result = await finished_result(sim, client)
    assert sim.calls_to("submit")[0].json["response_modalities"] == ["Image"]
    assert len(result.images) == 1
    assert result.texts == ()


async def test_result_images_shape_with_description(start_sim: StartSim, make_client: MakeClient) -> None:
    """The images[] + description shape gives the image and the description as text."""
    sim = await start_sim(result_shape="images")
    client = make_client(sim.base_url)
    result = await finished_result(sim, client, GenerationRequest("a blue kite", with_text=True))
    assert len(result.images) == 1
    assert result.images[0].content_type == "image/png"
    assert "a blue kite" in result.text


@pytest.mark.parametrize(
    ("body", "state", "error_type", "error"),
    [
        ({"status": "IN_QUEUE", "queue_position": 3}, QueueState.QUEUED, None, None),
        ({"status": "IN_QUEUE", "queue_position": "2"}, QueueState.QUEUED, None, None),
        ({"status": "IN_PROGRESS"}, QueueState.RUNNING, None, None),
        ({"status": "COMPLETED", "metrics": {"inference_time": 12.3}}, QueueState.SUCCEEDED, None, None),
        (
            {"status": "COMPLETED", "error": "Task execution failed", "error_type": "INFERENCE_FAILURE"},
            QueueState.FAILED,
            ErrorType.INFERENCE_FAILURE,
            "Task execution failed",
        ),
        (
            {"status": "COMPLETED", "error": {"message": "blocked by filter"}, "error_type": "CONTENT_BLOCKED"},
            QueueState.FAILED,
            ErrorType.CONTENT_BLOCKED,
            "blocked by filter",
        ),
        ({"status": "COMPLETED", "error_type": "SOMETHING_NEW"}, QueueState.FAILED, ErrorType.UNKNOWN, None),
        (
            {"status": "COMPLETED", "error": "x", "error_type": "CANCELED"},
            QueueState.CANCELLED,
            ErrorType.CANCELED,
            "x",
        ),
        ({"status": "FAILED", "error": "boom"}, QueueState.FAILED, ErrorType.UNKNOWN, "boom"),
        ({"status": "FAILED", "error_type": "INFERENCE_TIMEOUT"}, QueueState.FAILED, ErrorType.INFERENCE_TIMEOUT, None),
        ({"status": "CANCELED"}, QueueState.CANCELLED, ErrorType.CANCELED, None),
        ({"status": "CANCELLED"}, QueueState.CANCELLED, ErrorType.CANCELED, None),
        ({"status": "cancelled", "error_type": "CANCELLED"}, QueueState.CANCELLED, ErrorType.CANCELED, None),
    ],
)
def test_parse_status_table(
    body: dict[str, Any], state: QueueState, error_type: ErrorType | None, error: str | None
) -> None:
    """parse_status maps each documented and tolerated status shape."""
    reading = parse_status({"request_id": "r1", **body}, "r1")
    assert (reading.state, reading.error_type, reading.error) == (state, error_type, error)


def test_parse_status_keeps_position_and_inference_time() -> None:
    """parse_status reads queue_position while queued and metrics.inference_time when done."""
    assert parse_status({"status": "IN_QUEUE", "queue_position": 3}, "r1").queue_position == 3
    assert parse_status({"status": "COMPLETED", "metrics": {"inference_time": 12.3}}, "r1").inference_time == 12.3


@pytest.mark.parametrize("body", [{"status": "EXPLODED"}, {"status": ""}, {}, [], "COMPLETED", None])
def test_parse_status_rejects_unknown_shapes(body: object) -> None:
    """An unknown status word or a non-object body is a MalformedResponseError."""
    with pytest.raises(MalformedResponseError):
        parse_status(body, "r1")


def test_parse_result_outputs_shape() -> None:
    """outputs[] yields the image with its metadata and the text item."""
    result = parse_result(
        {
            "request_id": "r1",
            "outputs": [
                {"type": "image", "url": "http://x/a.png", "content_type": "image/png", "width": 1024, "height": 1024},
                {"type": "text", "text": "hello"},
            ],
            "metadata": {"prompt": "p"},
        },
        "r1",
    )
    assert [(i.url, i.width, i.height) for i in result.images] == [("http://x/a.png", 1024, 1024)]
    assert result.texts == ("hello",)
    assert result.failure is None


def test_parse_result_images_shape() -> None:
    """images[] + description yields the image and the description as text."""
    result = parse_result(
        {"images": [{"url": "http://x/a.png", "content_type": "image/png"}], "description": "d"}, "r1"
    )
    assert [i.url for i in result.images] == ["http://x/a.png"]
    assert result.texts == ("d",)
    assert result.request_id == "r1"


def test_parse_result_failure_body() -> None:
    """A status-shaped failure body yields a result with the failure set."""
    result = parse_result({"status": "COMPLETED", "error": "nope", "error_type": "REQUEST_INVALID"}, "r1")
    assert result.images == ()
    assert result.failure is not None
    assert (result.failure.state, result.failure.error_type) == (QueueState.FAILED, ErrorType.REQUEST_INVALID)


@pytest.mark.parametrize("body", [[], "x"])
def test_parse_result_not_an_object_is_malformed(body: object) -> None:
    with pytest.raises(MalformedResponseError):
        parse_result(body, "r1")


@pytest.mark.parametrize(
    "body",
    [
        {"outputs": []},
        {"outputs": [{"type": "text", "text": "t"}]},
        {"images": [{}]},
        {"images": [], "error": None},
        {"status": "COMPLETED", "error": None},
        {"status": "COMPLETED", "error_type": None},
        {"status": "COMPLETED", "error": None, "error_type": None},
    ],
)
def test_parse_result_without_image_or_error_is_a_no_image_failure(body: object) -> None:
    """Finished without an image and without saying why: a failure, never a success to deliver."""
    result = parse_result(body, "r1")
    assert result.images == ()
    assert result.failure is not None
    assert (result.failure.state, result.failure.error_type) == (QueueState.FAILED, ErrorType.NO_IMAGE)


# --------------------------------------------------------------------------- 3. bad input


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (GenerationRequest(""), "prompt"),
        (GenerationRequest("x" * 2501), "prompt"),
        (GenerationRequest("p", image_urls=tuple(f"http://127.0.0.1/ref{i}.png" for i in range(15))), "image_urls"),
        (GenerationRequest("p", aspect_ratio="7:3"), "aspect_ratio"),
        (GenerationRequest("p", resolution="8K"), "image_size"),
    ],
    ids=["empty-prompt", "prompt-2501", "15-image-urls", "aspect-7:3", "tier-8K"],
)
async def test_invalid_parameters_raise_invalid_request(
    sim: Simulator, client: QueueClient, request_: GenerationRequest, field: str
) -> None:
    """Each refused parameter is a 4xx from the simulator and an InvalidRequestError naming the field."""
    with pytest.raises(InvalidRequestError) as caught:
        await client.submit(request_)
    assert statuses(sim, "submit") == [422]
    assert caught.value.status == 422
    assert field in caught.value.message
    assert sim.jobs == {}


async def test_wrong_key_raises_authentication_error(sim: Simulator, make_client: MakeClient) -> None:
    """A wrong API key is a 401 and an AuthenticationError that mentions the key but not its value."""
    client = make_client(sim.base_url, api_key="wrong-key-123")
    with pytest.raises(AuthenticationError) as caught:
        await client.submit(REQUEST)
    assert statuses(sim, "submit") == [401]
    assert "API key" in caught.value.message
    assert "wrong-key-123" not in str(caught.value)
    assert sim.jobs == {}


# --------------------------------------------------------------------------- 4. error families


async def test_insufficient_balance(start_sim: StartSim, make_client: MakeClient) -> None:
    """A 403 "insufficient balance" is an InsufficientBalanceError, not an authentication error."""
    sim = await start_sim(balance=0)
    with pytest.raises(InsufficientBalanceError) as caught:
        await make_client(sim.base_url).submit(REQUEST)
    assert caught.value.status == 403
    assert "balance" in caught.value.message
    assert statuses(sim, "submit") == [403]


async def test_unknown_request_status_raises_not_found(sim: Simulator, client: QueueClient, sleep: FakeSleep) -> None:
    """Status of an unknown request id is a NotFoundError, not retried."""
    with pytest.raises(NotFoundError) as caught:
        await client.status(client.handle("mmsu_doesnotexist"))
    assert caught.value.request_id == "mmsu_doesnotexist"
    assert statuses(sim, "status") == [404]
    assert sleep.delays == []


async def test_rate_limit_retried_after_retry_after(sim: Simulator, client: QueueClient, sleep: FakeSleep) -> None:
    """A 429 with Retry-After is retried after exactly that many seconds, then succeeds."""
    handle = await submit_running(sim, client)
    sim.add_fault(Fault("status", status=429, retry_after=7))
    assert (await client.status(handle)).state is QueueState.RUNNING
    assert sleep.delays == [7.0]
    assert statuses(sim, "status") == [429, 200]


async def test_rate_limit_beyond_attempts_raises(sim: Simulator, client: QueueClient, sleep: FakeSleep) -> None:
    """More 429s than attempts end in a RateLimitedError carrying retry_after."""
    handle = await submit_running(sim, client)
    sim.add_fault(Fault("status", status=429, retry_after=2, times=10))
    with pytest.raises(RateLimitedError) as caught:
        await client.status(handle)
    assert caught.value.retry_after == 2.0
    attempts = RetryPolicy().attempts
    assert sleep.delays == [2.0] * (attempts - 1)
    assert len(sim.calls_to("status")) == attempts


async def test_retry_after_over_the_cap_is_not_waited(
    sim: Simulator, make_client: MakeClient, sleep: FakeSleep
) -> None:
    """A Retry-After longer than max_retry_after is reported at once instead of waited."""
    client = make_client(sim.base_url, retry=RetryPolicy(max_retry_after=30))
    handle = await submit_running(sim, client)
    sim.add_fault(Fault("status", status=429, retry_after=120))
    with pytest.raises(RateLimitedError) as caught:
        await client.status(handle)
    assert caught.value.retry_after == 120.0
    assert sleep.delays == []


async def test_server_errors_retried_with_growing_capped_backoff(
    sim: Simulator, make_client: MakeClient, sleep: FakeSleep
) -> None:
    """5xx on status is retried with jittered exponential backoff, capped at max_delay, then succeeds."""
    policy = RetryPolicy(attempts=6, base_delay=0.5, max_delay=2.0)
    client = make_client(sim.base_url, retry=policy)
    handle = await submit_running(sim, client)
    sim.add_fault(Fault("status", status=503, times=5))
    assert (await client.status(handle)).state is QueueState.RUNNING
    assert statuses(sim, "status") == [503] * 5 + [200]
    assert len(sleep.delays) == 5
    ceilings = [0.5, 1.0, 2.0, 2.0, 2.0]
    for delay, ceiling in zip(sleep.delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert sleep.delays[0] < sleep.delays[1] < sleep.delays[2]
    assert max(sleep.delays) <= policy.max_delay


async def test_persistent_server_errors_raise_unavailable(
    sim: Simulator, client: QueueClient, sleep: FakeSleep
) -> None:
    """A 5xx that never clears ends in UpstreamUnavailableError after RetryPolicy.attempts tries."""
    handle = await submit_running(sim, client)
    sim.add_fault(Fault("status", status=500, times=50))
    with pytest.raises(UpstreamUnavailableError) as caught:
        await client.status(handle)
    assert not isinstance(caught.value, SubmitUncertainError)
    assert caught.value.status == 500
    attempts = RetryPolicy().attempts
    assert len(sim.calls_to("status")) == attempts
    assert len(sleep.delays) == attempts - 1


@pytest.mark.parametrize(
    "response",
    [
        lambda: web.json_response([]),
        lambda: web.Response(text="<html>gateway says hi</html>", content_type="text/html"),
        lambda: web.json_response({"status": "WHO_KNOWS"}),
    ],
    ids=["json-list", "not-json", "unknown-status"],
)
async def test_malformed_status_body_raises(
    serve: Serve, make_client: MakeClient, sleep: FakeSleep, response: Callable[[], web.Response]
) -> None:
    """A 200 status answer that is not a readable status object is a MalformedResponseError, not retried."""

    async def answer(_: web.Request) -> web.StreamResponse:
        return response()

    upstream = Recorder(answer)
    client = make_client(await serve(upstream))
    with pytest.raises(MalformedResponseError):
        await client.status(client.handle("r1"))
    assert len(upstream.seen) == 1
    assert sleep.delays == []


@pytest.mark.parametrize(
    "response",
    [
        lambda: web.json_response([]),
        lambda: web.json_response({}),
        lambda: web.json_response({"request_id": "", "queue_position": 0}),
        lambda: web.json_response({"request_id": 12345}),
        lambda: web.Response(text="<html>accepted</html>", content_type="text/html"),
    ],
    ids=["json-list", "empty-object", "empty-id", "numeric-id", "not-json"],
)
async def test_2xx_submit_answer_without_request_id_is_uncertain(
    serve: Serve, make_client: MakeClient, sleep: FakeSleep, response: Callable[[], web.Response]
) -> None:
    """A 2xx submit answer that names no job is a SubmitUncertainError (the job may exist and be billed),
    sent once and never retried."""

    async def answer(_: web.Request) -> web.StreamResponse:
        return response()

    upstream = Recorder(answer)
    client = make_client(await serve(upstream))
    with pytest.raises(SubmitUncertainError) as caught:
        await client.submit(REQUEST)
    assert caught.value.status == 200
    assert caught.value.kind == "malformed"
    assert len(upstream.seen) == 1
    assert sleep.delays == []


async def test_slow_status_times_out_and_raises_unavailable(
    sim: Simulator, make_client: MakeClient, sleep: FakeSleep
) -> None:
    """An answer slower than the client timeout is retried, then reported as UpstreamUnavailableError."""
    client = make_client(sim.base_url, timeout=aiohttp.ClientTimeout(total=0.2), retry=RetryPolicy(attempts=3))
    handle = await submit_running(sim, client)
    sim.add_fault(Fault("status", delay=1, times=3))
    with pytest.raises(UpstreamUnavailableError, match="in time"):
        await client.status(handle)
    assert len(sim.calls_to("status")) == 3
    assert len(sleep.delays) == 2


# --------------------------------------------------------------------------- 5. submit is never retried blindly


async def test_submit_server_error_is_uncertain_and_not_retried(
    sim: Simulator, client: QueueClient, sleep: FakeSleep
) -> None:
    """A 5xx on submit raises SubmitUncertainError after exactly one submit."""
    sim.add_fault(Fault("submit", status=500, times=5))
    with pytest.raises(SubmitUncertainError) as caught:
        await client.submit(REQUEST)
    assert caught.value.status == 500
    assert len(sim.calls_to("submit")) == 1
    assert sleep.delays == []


async def test_submit_error_after_job_created_is_not_resubmitted(sim: Simulator, client: QueueClient) -> None:
    """A 5xx sent after the job was created raises SubmitUncertainError; the one job exists, no second submit."""
    sim.add_fault(Fault("submit", status=500, after_processing=True))
    with pytest.raises(SubmitUncertainError):
        await client.submit(REQUEST)
    assert len(sim.jobs) == 1
    assert len(sim.submits()) == 1
    assert len(sim.calls_to("submit")) == 1


async def test_submit_timeout_is_uncertain_and_not_retried(sim: Simulator, make_client: MakeClient) -> None:
    """A submit whose answer never comes in time raises SubmitUncertainError after one try (the job exists)."""
    client = make_client(sim.base_url, timeout=aiohttp.ClientTimeout(total=0.2))
    sim.add_fault(Fault("submit", delay=1, after_processing=True))
    with pytest.raises(SubmitUncertainError):
        await client.submit(REQUEST)
    assert len(sim.calls_to("submit")) == 1
    assert len(sim.jobs) == 1


async def test_submit_rate_limited_is_retried_once_created(
    sim: Simulator, client: QueueClient, sleep: FakeSleep
) -> None:
    """A 429 on submit provably did nothing, so it is retried and creates exactly one job."""
    sim.add_fault(Fault("submit", status=429, retry_after=3))
    submission = await client.submit(REQUEST)
    assert statuses(sim, "submit") == [429, 200]
    assert list(sim.jobs) == [submission.handle.request_id]
    assert sleep.delays == [3.0]


async def test_submit_connection_refused_is_retried_then_unavailable(make_client: MakeClient, sleep: FakeSleep) -> None:
    """A refused connection on submit is retried and ends in UpstreamUnavailableError, not SubmitUncertainError."""
    client = make_client(closed_port_url())
    with pytest.raises(UpstreamUnavailableError) as caught:
        await client.submit(REQUEST)
    assert not isinstance(caught.value, SubmitUncertainError)
    assert len(sleep.delays) == RetryPolicy().attempts - 1


# --------------------------------------------------------------------------- 6. re-attaching a stored request id


async def test_stored_request_id_followed_by_new_client(sim: Simulator, client: QueueClient) -> None:
    """A new client on a new session rebuilds the handle from the request id and follows the job to its image."""
    request_id = (await client.submit(REQUEST)).handle.request_id
    async with aiohttp.ClientSession() as other_session:
        fresh = QueueClient(other_session, base_url=sim.base_url, api_key=KEY, sleep=FakeSleep(), rng=random.Random(0))
        handle = fresh.handle(request_id)
        await wait_state(sim, handle, "IN_PROGRESS")
        assert (await fresh.status(handle)).state is QueueState.RUNNING
        await finish(sim, handle)
        assert (await fresh.status(handle)).state is QueueState.SUCCEEDED
        result = await fresh.result(handle)
        assert isinstance(result, QueueResult)
        data = await fresh.download(result.images[0].url, max_bytes=MAX_DOWNLOAD)
    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (1024, 1024)


async def _mini_upstream(request: web.Request, urls: Callable[[str], dict[str, str]]) -> web.StreamResponse:
    if request.method == "POST":
        return web.json_response({"request_id": "r1", "queue_position": 0, **urls("r1")})
    if request.method == "PUT":
        return web.json_response({"status": "CANCELLATION_REQUESTED"}, status=202)
    return web.json_response({"status": "IN_QUEUE", "request_id": "r1", "queue_position": 0}, status=202)


async def test_submit_ignores_returned_urls_on_another_origin(serve: Serve, make_client: MakeClient) -> None:
    """URLs returned on another origin are ignored: every call (and the key) goes to the upstream only."""

    async def anything(_: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "IN_QUEUE", "queue_position": 0})

    elsewhere = Recorder(anything)
    foreign = await serve(elsewhere)
    upstream = Recorder(
        lambda request: _mini_upstream(
            request,
            lambda rid: {
                "status_url": f"{foreign}/steal/{rid}/status",
                "response_url": f"{foreign}/steal/{rid}/response",
                "cancel_url": f"{foreign}/steal/{rid}/cancel",
            },
        )
    )
    base = await serve(upstream)
    client = make_client(base)
    handle = (await client.submit(REQUEST)).handle
    await client.status(handle)
    await client.result(handle)
    await client.cancel(handle)
    assert elsewhere.seen == []
    root = "/v1/queue/nano_banana_pro"
    assert [(m, p) for m, p, _ in upstream.seen] == [
        ("POST", root),
        ("GET", f"{root}/requests/r1/status"),
        ("GET", f"{root}/requests/r1/response"),
        ("PUT", f"{root}/requests/r1/cancel"),
    ]
    assert all(auth == f"Bearer {KEY}" for _, _, auth in upstream.seen)


async def test_submit_uses_returned_same_origin_urls(serve: Serve, make_client: MakeClient) -> None:
    """URLs returned on the upstream's own origin are used as given."""
    holder: dict[str, str] = {}
    upstream = Recorder(
        lambda request: _mini_upstream(
            request,
            lambda rid: {
                "status_url": f"{holder['base']}/alt/{rid}/status",
                "response_url": f"{holder['base']}/alt/{rid}/response",
                "cancel_url": f"{holder['base']}/alt/{rid}/cancel",
            },
        )
    )
    holder["base"] = base = await serve(upstream)
    client = make_client(base)
    handle = (await client.submit(REQUEST)).handle
    assert handle == JobHandle("r1", f"{base}/alt/r1/status", f"{base}/alt/r1/response", f"{base}/alt/r1/cancel")
    await client.status(handle)
    await client.result(handle)
    await client.cancel(handle)
    assert [p for _, p, _ in upstream.seen][1:] == ["/alt/r1/status", "/alt/r1/response", "/alt/r1/cancel"]


@pytest.mark.parametrize(
    "url",
    [
        "http://evil.example/v1/queue/nano_banana_pro/requests/r1/status",
        "https://127.0.0.1:{port}/x",
        "http://127.0.0.1:{other}/x",
        "http://127.0.0.1:{port}@evil.example/x",
        "//evil.example/x",
        "/relative/x",
        "",
    ],
)
def test_handle_falls_back_for_untrusted_urls(session: aiohttp.ClientSession, url: str) -> None:
    """handle() replaces any URL not on the upstream's exact origin with the default one."""
    client = QueueClient(session, base_url="http://127.0.0.1:8123/model", api_key=KEY)
    bad = url.format(port=8123, other=8124)
    handle = client.handle("r1", status_url=bad, response_url=bad, cancel_url=bad)
    root = "http://127.0.0.1:8123/model/v1/queue/nano_banana_pro/requests/r1"
    assert handle == JobHandle("r1", f"{root}/status", f"{root}/response", f"{root}/cancel")


# --------------------------------------------------------------------------- 7. cancellation


async def test_cancel_queued_job(sim: Simulator, client: QueueClient) -> None:
    """Cancelling a queued job is REQUESTED and the job ends CANCELLED."""
    await submit_running(sim, client)
    handle = (await client.submit(REQUEST)).handle
    assert await client.cancel(handle) is CancelOutcome.REQUESTED
    assert (await client.status(handle)).state is QueueState.CANCELLED


async def test_cancel_running_job(sim: Simulator, client: QueueClient) -> None:
    """Cancelling a running job is REQUESTED and the job then ends CANCELLED."""
    handle = await submit_running(sim, client)
    assert await client.cancel(handle) is CancelOutcome.REQUESTED
    await wait_state(sim, handle, "COMPLETED")
    reading = await client.status(handle)
    assert (reading.state, reading.error_type) == (QueueState.CANCELLED, ErrorType.CANCELED)


async def test_cancel_after_completion(sim: Simulator, client: QueueClient) -> None:
    """Cancelling a finished job is ALREADY_COMPLETED and leaves it SUCCEEDED."""
    handle = await submit_running(sim, client)
    await finish(sim, handle)
    assert await client.cancel(handle) is CancelOutcome.ALREADY_COMPLETED
    assert statuses(sim, "cancel") == [400]
    assert (await client.status(handle)).state is QueueState.SUCCEEDED


async def test_cancel_unknown_request(sim: Simulator, client: QueueClient) -> None:
    """Cancelling an unknown id is NOT_FOUND."""
    assert await client.cancel(client.handle("mmsu_doesnotexist")) is CancelOutcome.NOT_FOUND
    assert statuses(sim, "cancel") == [404]


async def test_cancel_accepted_while_running_can_still_succeed(start_sim: StartSim, make_client: MakeClient) -> None:
    """With cancel_running_finishes, an accepted cancel of a running job still ends SUCCEEDED."""
    sim = await start_sim(cancel_running_finishes=True)
    client = make_client(sim.base_url)
    handle = await submit_running(sim, client)
    assert await client.cancel(handle) is CancelOutcome.REQUESTED
    assert (await client.status(handle)).state is QueueState.RUNNING
    await finish(sim, handle)
    assert (await client.status(handle)).state is QueueState.SUCCEEDED
    assert isinstance(await client.result(handle), QueueResult)


async def test_concurrent_cancels_of_queued_job(sim: Simulator, client: QueueClient) -> None:
    """Two simultaneous cancels of one queued job both return an outcome and the job ends CANCELLED."""
    await submit_running(sim, client)
    handle = (await client.submit(REQUEST)).handle
    outcomes = await asyncio.gather(client.cancel(handle), client.cancel(handle))
    assert CancelOutcome.REQUESTED in outcomes
    assert set(outcomes) <= {CancelOutcome.REQUESTED, CancelOutcome.ALREADY_COMPLETED}
    assert (await client.status(handle)).state is QueueState.CANCELLED


# --------------------------------------------------------------------------- 8. the key never leaks


def _echo_json(request: web.Request) -> web.Response:
    return web.json_response({"detail": f"bad header: {request.headers.get('Authorization')}"}, status=400)


def _echo_gateway(request: web.Request) -> web.Response:
    auth = request.headers.get("Authorization")
    return web.json_response({"error": {"code": "BAD_AUTH", "message": f"got {auth}"}, "request_id": None}, status=400)


def _echo_text(request: web.Request) -> web.Response:
    return web.Response(text=f"400 Bad Request\nAuthorization: {request.headers.get('Authorization')}", status=400)


def _echo_straddling_cut(request: web.Request) -> web.Response:
    # The key starts just before the 300th character of the message, where error text is cut.
    pad = "x" * (300 - len("Bearer ") - len(KEY) // 2)
    return web.json_response({"detail": f"{pad}{request.headers.get('Authorization')}"}, status=400)


@pytest.mark.parametrize(
    "echo", [_echo_json, _echo_gateway, _echo_text, _echo_straddling_cut], ids=["json", "gateway", "text", "at-cut"]
)
async def test_key_echoed_in_error_body_is_redacted(
    serve: Serve, make_client: MakeClient, echo: Callable[[web.Request], web.Response]
) -> None:
    """An upstream that echoes the Authorization header in a 400 body does not get the key into the error."""

    async def answer(request: web.Request) -> web.StreamResponse:
        return echo(request)

    client = make_client(await serve(answer))
    with pytest.raises(InvalidRequestError) as caught:
        await client.submit(REQUEST)
    for text in (str(caught.value), repr(caught.value), caught.value.message):
        assert KEY[: len(KEY) // 4] not in text
    assert "[redacted]" in caught.value.message


async def test_key_echoed_in_retried_server_errors_is_redacted(
    serve: Serve, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """An echoed key in retried 5xx bodies appears neither in the retry log lines nor in the final error."""

    async def answer(request: web.Request) -> web.StreamResponse:
        return web.json_response({"detail": f"upstream saw {request.headers.get('Authorization')}"}, status=503)

    caplog.set_level(logging.DEBUG)
    client = make_client(await serve(answer))
    with pytest.raises(UpstreamUnavailableError) as caught:
        await client.status(client.handle("r1"))
    assert KEY not in str(caught.value)
    assert any("retrying" in record.getMessage() for record in caplog.records)
    assert KEY not in caplog.text


async def test_key_absent_from_logs_across_retries_and_errors(
    start_sim: StartSim, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A run with rate limits, server errors, timeouts, 4xx answers and downloads never logs the key."""
    caplog.set_level(logging.DEBUG)
    sim = await start_sim(manual=False, job_duration=0)
    client = make_client(sim.base_url, timeout=aiohttp.ClientTimeout(total=0.2))
    sim.add_fault(Fault("submit", status=429, retry_after=1))
    sim.add_fault(Fault("status", status=503, times=2))
    sim.add_fault(Fault("result", delay=0.5))
    handle = (await client.submit(REQUEST)).handle
    await wait_state(sim, handle, "COMPLETED")
    await client.status(handle)
    result = await client.result(handle)
    assert isinstance(result, QueueResult)
    await client.download(result.images[0].url, max_bytes=MAX_DOWNLOAD)
    with pytest.raises(NotFoundError):
        await client.status(client.handle("mmsu_missing"))
    with pytest.raises(InvalidRequestError):
        await client.submit(GenerationRequest(""))
    assert await client.cancel(handle) is CancelOutcome.ALREADY_COMPLETED
    assert sum("retrying" in record.getMessage() for record in caplog.records) >= 4
    assert KEY not in caplog.text
    for record in caplog.records:
        assert KEY not in record.getMessage()
        assert KEY not in repr(record.args)


def test_key_absent_from_client_repr(session: aiohttp.ClientSession) -> None:
    """repr() and str() of a client show the base URL and model, never the key."""
    client = QueueClient(session, base_url="http://127.0.0.1:1", api_key=KEY)
    assert KEY not in repr(client)
    assert KEY not in str(client)
    assert "127.0.0.1:1" in repr(client)


# --------------------------------------------------------------------------- 9. downloads


async def test_download_over_cap_raises(sim: Simulator, client: QueueClient) -> None:
    """A result file larger than max_bytes (declared Content-Length) is a ResultTooLargeError."""
    result = await finished_result(sim, client)
    with pytest.raises(ResultTooLargeError):
        await client.download(result.images[0].url, max_bytes=1000)


async def test_streamed_download_over_cap_raises(serve: Serve, make_client: MakeClient) -> None:
    """A chunked download without Content-Length is cut off once it passes max_bytes."""

    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(8):
            await response.write(b"\0" * 4096)
        await response.write_eof()
        return response

    base = await serve(answer)
    with pytest.raises(ResultTooLargeError):
        await make_client(base).download(f"{base}/files/r1/image.png", max_bytes=10_000)


async def test_download_retries_server_error(sim: Simulator, client: QueueClient, sleep: FakeSleep) -> None:
    """A 5xx on a result file download is transient: retried, then the file arrives."""
    result = await finished_result(sim, client)
    sim.add_fault(Fault("file", status=503))
    data = await client.download(result.images[0].url, max_bytes=MAX_DOWNLOAD)
    assert data.startswith(b"\x89PNG")
    assert statuses(sim, "file") == [503, 200]
    assert len(sleep.delays) == 1


# --------------------------------------------------------------------------- 10. outages, refusals and metrics


class WallClock:
    """A settable Unix-time clock for UpstreamHealth."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Ticker:
    """A monotonic clock with a sleep that advances it instead of waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.delays: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.delays.append(delay)
        self.now += delay


def operator_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    """What the queue package logged at INFO and above: the lines an operator reads."""
    return [
        (record.levelno, record.getMessage())
        for record in caplog.records
        if record.name.startswith("bot.queue") and record.levelno >= logging.INFO
    ]


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_connection_refused_is_one_outage_then_one_recovery_line(
    make_client: MakeClient, sleep: FakeSleep, caplog: pytest.LogCaptureFixture
) -> None:
    """Polls of several jobs to a port nobody listens on log one warning in all, each call bounded in
    tries with backoff; when the service answers again, one info line says after how long."""
    caplog.set_level(logging.DEBUG)
    url = closed_port_url()
    wall = WallClock()
    client = make_client(url, health=UpstreamHealth(clock=wall))
    handles = [client.handle(f"r{i}") for i in range(3)]
    for _ in range(2):
        for handle in handles:
            with pytest.raises(UpstreamUnavailableError) as caught:
                await client.status(handle)
            assert caught.value.kind == "connection"
        wall.now += 30
    policy = RetryPolicy()
    assert len(sleep.delays) == 6 * (policy.attempts - 1)
    assert min(sleep.delays) >= policy.min_delay
    assert not client.health.reachable
    assert client.health.outage_since == wall.now - 60
    assert client.health.last_error is not None and client.health.last_error.kind == "connection"
    assert operator_lines(caplog) == [
        (
            logging.WARNING,
            "the image service is unreachable: could not reach the upstream (ClientConnectorError); jobs keep waiting",
        )
    ]

    port = int(url.rsplit(":", 1)[1])
    async with run_simulator(SimulatorOptions(api_key=KEY, manual=True), port=port):
        await client.submit(REQUEST)
    assert client.health.reachable
    assert client.health.last_success == wall.now
    assert operator_lines(caplog)[1:] == [(logging.INFO, "the image service answered again after 60 s")]


async def test_burst_of_5xx_across_jobs_is_one_outage(
    sim: Simulator, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A burst of 503s that outlasts every concurrent poll's retries is one outage: one warning, one
    recovery line, and the health object knows the state in between."""
    caplog.set_level(logging.INFO, logger="bot.queue")
    wall = WallClock()
    client = make_client(sim.base_url, health=UpstreamHealth(clock=wall))
    handles = [(await client.submit(GenerationRequest(f"job {i}"))).handle for i in range(3)]
    wall.now += 5
    sim.add_fault(Fault("status", status=503, times=3 * RetryPolicy().attempts))
    outcomes = await asyncio.gather(*(client.status(h) for h in handles), return_exceptions=True)
    assert all(isinstance(o, UpstreamUnavailableError) and o.kind == "http_5xx" for o in outcomes)
    assert not client.health.reachable
    assert client.health.last_error is not None
    assert (client.health.last_error.operation, client.health.last_error.kind) == ("status", "http_5xx")
    assert [level for level, _ in operator_lines(caplog)] == [logging.WARNING]
    assert "Runtime execution failed" in operator_lines(caplog)[0][1]

    wall.now += 12
    assert (await client.status(handles[0])).state is QueueState.RUNNING
    assert client.health.reachable
    assert operator_lines(caplog)[1:] == [(logging.INFO, "the image service answered again after 12 s")]


async def test_transient_5xx_recovered_by_a_retry_is_no_outage(
    sim: Simulator, client: QueueClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A 503 that a retry gets past is remembered as the last error but logs nothing at INFO or above."""
    caplog.set_level(logging.DEBUG)
    handle = await submit_running(sim, client)
    sim.add_fault(Fault("status", status=503, times=2))
    assert (await client.status(handle)).state is QueueState.RUNNING
    assert client.health.reachable
    assert client.health.last_error is not None and client.health.last_error.kind == "http_5xx"
    assert client.health.last_success is not None and client.health.last_success >= client.health.last_error.at
    assert operator_lines(caplog) == []


async def test_one_failed_call_among_working_ones_is_no_outage(
    sim: Simulator, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A call that used up its retries while another call got through meanwhile does not announce an
    outage: the service works, that call was unlucky."""
    caplog.set_level(logging.INFO, logger="bot.queue")
    wall = WallClock()
    client = make_client(sim.base_url, health=UpstreamHealth(clock=wall))
    handle = await submit_running(sim, client)
    wall.now += 1
    first = client.health.now()
    health = client.health
    health.failed(UpstreamUnavailableError("HTTP 503", kind="http_5xx"), "status", final=False, started=first)
    wall.now += 1
    assert (await client.status(handle)).state is QueueState.RUNNING  # another job's poll works
    health.failed(UpstreamUnavailableError("HTTP 503", kind="http_5xx"), "status", final=True, started=first)
    assert health.reachable
    assert operator_lines(caplog) == []


async def test_timeouts_are_an_outage(
    sim: Simulator, make_client: MakeClient, sleep: FakeSleep, caplog: pytest.LogCaptureFixture
) -> None:
    """Answers slower than the client's timeout, on every try, are one outage of kind "timeout"."""
    caplog.set_level(logging.INFO, logger="bot.queue")
    client = make_client(sim.base_url, timeout=aiohttp.ClientTimeout(total=0.2), retry=RetryPolicy(attempts=2))
    handle = await submit_running(sim, client)
    sim.add_fault(Fault("status", delay=1, times=2))
    with pytest.raises(UpstreamUnavailableError) as caught:
        await client.status(handle)
    assert caught.value.kind == "timeout"
    assert len(sim.calls_to("status")) == 2
    assert len(sleep.delays) == 1
    assert not client.health.reachable
    assert operator_lines(caplog) == [
        (logging.WARNING, "the image service is unreachable: the upstream did not answer in time; jobs keep waiting")
    ]


async def test_retry_after_is_honoured_and_floored(sim: Simulator, client: QueueClient, sleep: FakeSleep) -> None:
    """Retry-After is waited as given, but "Retry-After: 0" still waits RetryPolicy.min_delay: no tight loop."""
    handle = await submit_running(sim, client)
    sim.add_fault(Fault("status", status=429, retry_after=0, times=2))
    assert (await client.status(handle)).state is QueueState.RUNNING
    assert sleep.delays == [RetryPolicy().min_delay] * 2
    assert statuses(sim, "status") == [429, 429, 200]


async def test_retry_after_holds_back_every_call_capped(sim: Simulator, session: aiohttp.ClientSession) -> None:
    """A Retry-After over the cap is reported at once, and every later call of the client waits out the
    capped hold before it is sent; after that, calls go straight through."""
    ticker = Ticker()
    client = QueueClient(
        session,
        base_url=sim.base_url,
        api_key=KEY,
        retry=RetryPolicy(max_retry_after=30),
        sleep=ticker.sleep,
        clock=ticker,
        rng=random.Random(0),
    )
    running = await submit_running(sim, client)
    queued = (await client.submit(REQUEST)).handle
    sim.add_fault(Fault("status", status=429, retry_after=600))
    with pytest.raises(RateLimitedError) as caught:
        await client.status(running)
    assert caught.value.retry_after == 600.0
    assert ticker.delays == []

    assert (await client.status(queued)).state is QueueState.QUEUED  # another job's poll
    assert ticker.delays == [30.0]
    assert await client.cancel(queued) is CancelOutcome.REQUESTED
    assert ticker.delays == [30.0]
    assert statuses(sim, "status") == [429, 200]
    assert client.health.reachable


async def test_retry_after_of_one_call_holds_back_the_others(sim: Simulator, session: aiohttp.ClientSession) -> None:
    """While one poll waits out a Retry-After, another job's poll waits for the same moment instead of
    drawing another 429."""
    now = [1000.0]
    delays: list[float] = []
    second: list[asyncio.Task[QueueStatus]] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)
        if second:
            now[0] += delay
            return
        waited_from = now[0]
        now[0] += 2  # two seconds into this wait, another job polls
        second.append(asyncio.create_task(client.status(handle)))
        await second[0]
        now[0] = max(now[0], waited_from + delay)

    client = QueueClient(session, base_url=sim.base_url, api_key=KEY, sleep=sleep, clock=lambda: now[0])
    handle = await submit_running(sim, client)
    sim.add_fault(Fault("status", status=429, retry_after=5))
    assert (await client.status(handle)).state is QueueState.RUNNING
    assert (await second[0]).state is QueueState.RUNNING
    assert delays == [5.0, 3.0]
    assert statuses(sim, "status") == [429, 200, 200]


async def test_key_revoked_mid_run_is_one_error_until_it_works_again(
    sim: Simulator, client: QueueClient, sleep: FakeSleep, caplog: pytest.LogCaptureFixture
) -> None:
    """A key revoked while jobs run: every call is an AuthenticationError, never retried, logged once as an
    error (not once per job per poll) until a call succeeds again."""
    caplog.set_level(logging.DEBUG)
    handles = [await submit_running(sim, client), (await client.submit(REQUEST)).handle]
    sim.revoke_key()
    for _ in range(3):
        for handle in handles:
            with pytest.raises(AuthenticationError):
                await client.status(handle)
    with pytest.raises(AuthenticationError):
        await client.submit(REQUEST)
    assert sleep.delays == []
    assert statuses(sim, "status") == [401] * 6
    assert client.health.key_refused
    assert client.health.reachable
    lines = operator_lines(caplog)
    assert [level for level, _ in lines] == [logging.ERROR]
    assert "refused the API key" in lines[0][1]
    assert KEY not in caplog.text

    sim.restore_key()
    assert (await client.status(handles[0])).state is QueueState.RUNNING
    assert not client.health.key_refused
    assert operator_lines(caplog)[1:] == [(logging.INFO, "the image service accepts the API key again")]


async def test_unknown_request_id_is_an_answer_not_an_outage(
    sim: Simulator, make_client: MakeClient, sleep: FakeSleep
) -> None:
    """A 404 for an unknown request id is a NotFoundError at once; the service answered, so it counts
    as reachable and is not shown as the upstream's last error."""
    metrics = Metrics()
    client = make_client(sim.base_url, metrics=metrics)
    with pytest.raises(NotFoundError) as caught:
        await client.status(client.handle("mmsu_unknown"))
    assert caught.value.kind == "not_found"
    assert sleep.delays == []
    assert client.health.reachable
    assert client.health.last_success is not None
    assert client.health.last_error is None
    assert sample(metrics, "imagine_upstream_errors_total", operation="status", kind="not_found") == 1


async def test_malformed_json_status_answer(sim: Simulator, client: QueueClient, sleep: FakeSleep) -> None:
    """A status answer cut off mid-JSON is a MalformedResponseError, not retried; the next poll works."""
    handle = await submit_running(sim, client)
    sim.add_fault(Fault("status", body=TRUNCATED_JSON))
    with pytest.raises(MalformedResponseError) as caught:
        await client.status(handle)
    assert caught.value.kind == "malformed"
    assert statuses(sim, "status") == [200]
    assert sleep.delays == []
    assert client.health.last_error is not None and client.health.last_error.kind == "malformed"
    assert client.health.reachable
    assert (await client.status(handle)).state is QueueState.RUNNING


@pytest.mark.parametrize("body", [TRUNCATED_JSON, '{"queue_position": 0}'], ids=["truncated", "no-request-id"])
async def test_submit_answered_2xx_without_a_readable_id_is_uncertain(
    sim: Simulator, client: QueueClient, sleep: FakeSleep, body: str
) -> None:
    """The job was created upstream but the 200 answer does not name it: SubmitUncertainError after one
    submit, and the job exists (it may be billed), so nothing is sent again."""
    sim.add_fault(Fault("submit", body=body, after_processing=True))
    with pytest.raises(SubmitUncertainError) as caught:
        await client.submit(REQUEST)
    assert caught.value.kind == "malformed"
    assert len(sim.calls_to("submit")) == 1
    assert len(sim.jobs) == 1
    assert sleep.delays == []


async def test_client_records_latency_errors_and_polls(sim: Simulator, make_client: MakeClient) -> None:
    """Each attempt's latency is observed by operation, each failed attempt counted by kind, each poll once."""
    metrics = Metrics()
    client = make_client(sim.base_url, metrics=metrics)
    handle = await submit_running(sim, client)
    sim.add_fault(Fault("status", status=503))
    await client.status(handle)
    await client.status(handle)
    await finish(sim, handle)
    result = await client.result(handle)
    assert isinstance(result, QueueResult)
    await client.download(result.images[0].url, max_bytes=MAX_DOWNLOAD)
    assert await client.cancel(client.handle("mmsu_unknown")) is CancelOutcome.NOT_FOUND

    assert sample(metrics, "imagine_status_polls_total") == 2
    counts = {
        op: sample(metrics, "imagine_upstream_request_seconds_count", operation=op)
        for op in ("submit", "status", "result", "download", "cancel")
    }
    assert counts == {"submit": 1, "status": 3, "result": 1, "download": 1, "cancel": 1}
    assert sample(metrics, "imagine_upstream_errors_total", operation="status", kind="http_5xx") == 1
    assert sample(metrics, "imagine_upstream_errors_total", operation="cancel", kind="not_found") == 1
    assert sample(metrics, "imagine_upstream_request_seconds_sum", operation="status") > 0


async def test_a_submit_does_not_queue_behind_reads_waiting_for_their_turn(sim: Simulator) -> None:
    """Reads waiting for their paced turn hold call slots, but never all of them: a submit goes at once."""
    turns: list[asyncio.Future[None]] = []

    async def sleep(_: float) -> None:  # a read's turn comes only when the test says so
        turn = asyncio.get_running_loop().create_future()
        turns.append(turn)
        await turn

    async with aiohttp.ClientSession() as session:
        client = QueueClient(
            session, base_url=sim.base_url, api_key=KEY, sleep=sleep, concurrency=4, reads_per_second=1.0
        )
        handle = await submit_running(sim, client)
        reads = [asyncio.ensure_future(client.status(handle)) for _ in range(10)]
        # The first read leaves at once; three more then hold the read slots, waiting for their turns.
        await wait_until(lambda: len(turns) == 3, what="the reads to wait for their turns")
        await asyncio.wait_for(client.submit(GenerationRequest(prompt="not behind the reads")), 5.0)
        assert sum(read.done() for read in reads) <= 1
        while not all(read.done() for read in reads):
            for turn in turns:
                if not turn.done():
                    turn.set_result(None)
            await asyncio.sleep(0)
        assert all(read.exception() is None for read in reads)


async def test_status_and_result_reads_are_paced_as_they_leave(sim: Simulator) -> None:
    """With a read rate set, status and result reads (not submits) each wait for their turn, given
    out tick by tick, after taking a slot among the calls in flight: what leaves never bunches up."""
    now = [0.0]
    waits: list[float] = []

    async def sleep(delay: float) -> None:
        waits.append(delay)

    async with aiohttp.ClientSession() as session:
        client = QueueClient(
            session, base_url=sim.base_url, api_key=KEY, sleep=sleep, clock=lambda: now[0], reads_per_second=10.0
        )
        handle = await submit_running(sim, client)
        assert waits == []  # the submit is not a read
        await asyncio.gather(*(client.status(handle) for _ in range(4)))
        await client.result(handle)
    # 10 a second with the 10% margin, in ticks of 0.1 s: one a tick
    assert waits == pytest.approx([0.1, 0.2, 0.3, 0.4])
