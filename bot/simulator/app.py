"""A local imitation of OdiRouter's queue API for one model (``nano_banana_pro`` by default).

It follows ``shared/reference/queue-api.md``: submit / status / result / cancel under
``/v1/queue/{model}``, Bearer auth, a real FIFO queue served by ``workers`` asyncio tasks, result files
served (without auth, like a CDN) under ``/files/{request_id}/image.png``, and test hooks: injected
faults, forced error types, manual completion, a balance limit, a revocable API key and a record of
every call.

Choices where the reference is silent:

* A job that failed or was cancelled answers the *result* endpoint with HTTP 200 and the failure status
  body (``{"status": "COMPLETED", "request_id", "error", "error_type"}``): the job is finished, so the
  result call itself succeeded; the body says how the job ended.
* ``response_modalities`` defaults to ``["Text", "Image"]`` (as documented), so a text output item is
  returned unless the client asks for ``["Image"]`` only; without ``"Image"`` no image is produced.
* ``image_urls`` pointing anywhere but the loopback interface are not fetched (the job fails with
  ``REQUEST_INVALID``) unless ``SimulatorOptions.fetch_remote`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import random
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal, get_args

import aiohttp
import yarl
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from bot.simulator import images

log = logging.getLogger("bot.simulator")

Endpoint = Literal["submit", "status", "result", "cancel", "file", "other"]
FaultEndpoint = Literal["submit", "status", "result", "cancel", "file", "any"]
JobState = Literal["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]

API_ENDPOINTS: Final = frozenset({"submit", "status", "result", "cancel"})
ALLOWED_MODALITIES: Final = frozenset({"Text", "Image"})
DEFAULT_MODALITIES: Final = ("Text", "Image")
MAX_PROMPT_CHARS: Final = 2500
MAX_IMAGE_URLS: Final = 14

ERROR_MESSAGES: Final = MappingProxyType(
    {
        "INFERENCE_FAILURE": "Task execution failed",
        "INFERENCE_TIMEOUT": "Task execution timed out",
        "REQUEST_INVALID": "Invalid request",
        "CONTENT_BLOCKED": "Content blocked by the safety filter",
        "CANCELED": "Request was cancelled",
        "INTERNAL_SERVER_ERROR": "Internal server error",
    }
)

_ENDPOINT_NAMES: Final = frozenset(get_args(Endpoint))
#: A JSON answer cut off mid-way, as a broken proxy or a dropped connection can leave it.
TRUNCATED_JSON: Final = '{"request_id": "mmsu_01hx'


@dataclass(frozen=True, slots=True)
class Fault:
    """A scripted misbehaviour for the next ``times`` calls to ``endpoint``.

    Normally: wait ``delay`` seconds, then answer ``status`` (or handle the call as usual if None).
    With ``after_processing``: handle the call first (a submit creates its job, a cancel cancels),
    then wait ``delay``, then answer ``status`` instead of the real answer (if not None).
    429 answers carry the gateway body, 5xx ``{"detail": "Runtime execution failed"}``.
    ``body`` replaces the answer's body with that raw text, labelled JSON whatever it is (e.g.
    :data:`TRUNCATED_JSON`, or JSON without a field the client needs), with ``status`` (default 200).
    ``endpoint="any"`` matches the four API endpoints (not ``"file"`` downloads).
    """

    endpoint: FaultEndpoint
    status: int | None = None
    retry_after: float | None = None
    delay: float = 0.0
    times: int = 1
    after_processing: bool = False
    body: str | None = None

    def __post_init__(self) -> None:
        if self.times < 1:
            raise ValueError("Fault.times must be >= 1")
        if self.delay < 0:
            raise ValueError("Fault.delay must be >= 0")

    @property
    def replaces_answer(self) -> bool:
        """The fault answers instead of the handler (a status or a body was given)."""
        return self.status is not None or self.body is not None

    def matches(self, endpoint: Endpoint) -> bool:
        if self.endpoint == "any":
            return endpoint in API_ENDPOINTS
        return self.endpoint == endpoint


@dataclass(frozen=True, slots=True)
class SimulatorOptions:
    api_key: str = field(repr=False)
    model: str = "nano_banana_pro"
    workers: int = 1
    job_duration: float = 0.5
    # With a maximum, each job runs a duration drawn uniformly from [job_duration, job_duration_max]
    # when it is submitted (from an RNG seeded with ``seed``: the same submits get the same durations).
    job_duration_max: float | None = None
    position_mode: Literal["real", "zero"] = "real"
    manual: bool = False
    result_shape: Literal["outputs", "images"] = "outputs"
    pending_http_status: int = 200
    noisy_images: bool = False
    balance: int | None = None
    cancel_running_finishes: bool = False
    fail_with: str | None = None
    # Extensions (used by the CLI): random faults on the API endpoints and a delay on every answer.
    error_rate: float = 0.0  # fraction of API calls answered 503
    rate_limit_rate: float = 0.0  # fraction of API calls answered 429 with Retry-After: 1
    slow: float = 0.0  # seconds added before every answer
    seed: int | None = None  # seed of the random faults
    fetch_remote: bool = False  # fetch image_urls on non-loopback hosts too
    # Render one image per aspect ratio and tier and serve it to every job without references (the
    # same bytes each time): for load tests, where encoding a PNG per job would load the machine.
    reuse_images: bool = False
    # Fraction of submitted jobs that complete with INFERENCE_FAILURE (drawn from an RNG seeded with
    # ``seed``), as the model fails now and then.
    fail_rate: float = 0.0
    # Other customers' jobs kept waiting in the queue: each one that starts is replaced at the back, so
    # a new submit always has this many ahead of it (plus those running). They run like any job (for
    # ``job_duration``) but produce nothing and are never visible through the API.
    queue_depth: int = 0

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError("workers must be >= 1")
        if self.job_duration < 0 or self.slow < 0:
            raise ValueError("job_duration and slow must be >= 0")
        if self.job_duration_max is not None and self.job_duration_max < self.job_duration:
            raise ValueError("job_duration_max must be >= job_duration")
        if self.pending_http_status not in (200, 202):
            raise ValueError("pending_http_status must be 200 or 202")
        if not (0.0 <= self.error_rate <= 1.0 and 0.0 <= self.rate_limit_rate <= 1.0):
            raise ValueError("error_rate and rate_limit_rate must be within [0, 1]")
        if not 0.0 <= self.fail_rate <= 1.0:
            raise ValueError("fail_rate must be within [0, 1]")
        if self.queue_depth < 0:
            raise ValueError("queue_depth must be >= 0")


@dataclass(slots=True)
class RecordedCall:
    """One HTTP call as the simulator saw it (appended on arrival, ``status`` filled when answered)."""

    method: str
    path: str
    endpoint: Endpoint
    json: Any  # the parsed JSON body, None if there was none or it was not JSON
    headers: CIMultiDictProxy[str]  # request headers, Authorization removed
    body: bytes = b""
    authorized: bool = False  # carried ``Authorization: Bearer <the accepted key>``
    status: int | None = None
    request_id: str | None = None  # id from the path, or of the job this submit created
    created_job: bool = False
    fault: Fault | None = None
    received_at: float = field(default_factory=time.monotonic)
    answered_at: float | None = None


@dataclass(slots=True, eq=False)
class SimJob:
    request_id: str
    body: dict[str, Any]
    state: JobState = "IN_QUEUE"
    queued_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None
    finished_at: float | None = None
    error_type: str | None = None
    error: str | None = None
    fetched_images: list[bytes] = field(default_factory=list)
    cancel_requested: bool = False
    forced_error_type: str | None = None  # from fail_with / fail_next
    image: bytes | None = None
    width: int | None = None
    height: int | None = None
    text: str | None = None
    finish_requested: bool = False  # Simulator.finish() was called
    finish_error_type: str | None = None
    duration: float = 0.0  # seconds it runs once started (unless finished early or cancelled)
    background: bool = False  # another customer's job (``queue_depth``): not reachable through the API
    wake: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def image_urls(self) -> list[str]:
        urls = self.body.get("image_urls")
        return list(urls) if isinstance(urls, list) else []

    @property
    def aspect_ratio(self) -> str | None:
        value = self.body.get("aspect_ratio")
        return value if isinstance(value, str) else None

    @property
    def tier(self) -> str:
        for key in ("image_size", "resolution"):
            value = self.body.get(key)
            if isinstance(value, str):
                return value
        return images.DEFAULT_TIER

    @property
    def modalities(self) -> tuple[str, ...]:
        value = self.body.get("response_modalities")
        return tuple(value) if isinstance(value, list) else DEFAULT_MODALITIES

    @property
    def succeeded(self) -> bool:
        return self.state == "COMPLETED" and self.error_type is None

    @property
    def inference_time(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return round(self.finished_at - self.started_at, 3)


@dataclass(slots=True)
class _FaultSlot:
    fault: Fault
    remaining: int


def validate_submit(payload: object) -> str | None:
    """The problem with a submit body (naming the field and the rule), or None if it is valid."""
    if not isinstance(payload, dict):
        return "body: must be a JSON object"
    prompt = payload.get("prompt")
    if prompt is None:
        return f"prompt: field required (a string of 1-{MAX_PROMPT_CHARS} characters)"
    if not isinstance(prompt, str):
        return "prompt: must be a string"
    if not 1 <= len(prompt) <= MAX_PROMPT_CHARS:
        return f"prompt: length must be 1-{MAX_PROMPT_CHARS} characters, got {len(prompt)}"
    urls = payload.get("image_urls")
    if urls is not None:
        if not isinstance(urls, list):
            return "image_urls: must be a list of URL strings"
        if len(urls) > MAX_IMAGE_URLS:
            return f"image_urls: at most {MAX_IMAGE_URLS} items allowed, got {len(urls)}"
        for i, url in enumerate(urls):
            if not isinstance(url, str) or not _is_http_url(url):
                return f"image_urls[{i}]: must be an http or https URL"
    ratio = payload.get("aspect_ratio")
    if ratio is not None and ratio not in images.ASPECT_RATIOS:
        return f"aspect_ratio: must be one of {', '.join(images.ASPECT_RATIOS)}; got {ratio!r}"
    for key in ("image_size", "resolution"):
        value = payload.get(key)
        if value is not None and value not in images.TIERS:
            return f"{key}: must be one of {', '.join(images.TIERS)}; got {value!r}"
    size, resolution = payload.get("image_size"), payload.get("resolution")
    if size is not None and resolution is not None and size != resolution:
        return f"image_size and resolution must agree; got {size!r} and {resolution!r}"
    modalities = payload.get("response_modalities")
    if modalities is not None and (
        not isinstance(modalities, list)
        or not modalities
        or not all(isinstance(m, str) and m in ALLOWED_MODALITIES for m in modalities)
    ):
        return 'response_modalities: must be a non-empty list drawn from "Text", "Image"'
    return None


def _is_http_url(value: str) -> bool:
    try:
        url = yarl.URL(value)
    except ValueError:
        return False
    return url.scheme in ("http", "https") and bool(url.host)


def _is_loopback(url: str) -> bool:
    host = yarl.URL(url).host or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _describe(prompt: str) -> str:
    words = prompt.split()
    head = " ".join(words[:6])
    if len(words) > 6:
        head += "…"
    return f'Here is the image you asked for: "{head}".'


def _retry_after_value(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


def _fault_response(fault: Fault) -> web.Response:
    status = fault.status
    headers = {}
    if fault.retry_after is not None:
        headers["Retry-After"] = _retry_after_value(fault.retry_after)
    if fault.body is not None:
        return web.Response(text=fault.body, status=status or 200, headers=headers, content_type="application/json")
    assert status is not None
    body: dict[str, Any]
    if status == 429:
        body = {"error": {"code": "RATE_LIMIT_EXCEEDED", "message": "Rate limit exceeded"}, "request_id": None}
    elif status == 401:
        body = _unauthorized_body()
    elif status >= 500:
        body = {"detail": "Runtime execution failed"}
    else:
        body = {"detail": f"Injected fault ({status})"}
    return web.json_response(body, status=status, headers=headers)


def _http_error_response(exc: web.HTTPException) -> web.Response:
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    return web.json_response({"detail": exc.reason}, status=exc.status, headers=headers)


def _unauthorized_body() -> dict[str, Any]:
    return {"error": {"code": "UNAUTHORIZED", "message": "Invalid or missing API key"}, "request_id": None}


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Simulator:
    """State and behaviour of one simulated upstream (one per aiohttp application)."""

    def __init__(self, options: SimulatorOptions) -> None:
        self.options = options
        self.calls: list[RecordedCall] = []
        self.jobs: dict[str, SimJob] = {}
        self._queue: deque[str] = deque()
        self._faults: list[_FaultSlot] = []
        self._fail_next: deque[str] = deque()
        self._changed = asyncio.Event()
        self._random = random.Random(options.seed)
        # Its own generator, so that random faults do not shift the durations (and the reverse).
        self._durations = random.Random(options.seed)
        self._failures = random.Random(options.seed)
        self._rendered: dict[tuple[str | None, str], tuple[bytes, int, int]] = {}
        self._created = 0
        self._base_url: str | None = None
        self._http: aiohttp.ClientSession | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._key_revoked = False

    # ----------------------------------------------------------------- test hooks

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running server (set by :func:`run_simulator`)."""
        if self._base_url is None:
            raise RuntimeError("the simulator is not being served by run_simulator()")
        return self._base_url

    @base_url.setter
    def base_url(self, value: str) -> None:
        self._base_url = value

    @property
    def queue_url(self) -> str:
        """``{base_url}/v1/queue/{model}``: the submit URL."""
        return f"{self.base_url}/v1/queue/{self.options.model}"

    def add_fault(self, fault: Fault) -> None:
        self._faults.append(_FaultSlot(fault, fault.times))

    def revoke_key(self) -> None:
        """From now on the API key is refused (401 on every API call), as if revoked mid-run."""
        self._key_revoked = True

    def restore_key(self) -> None:
        """Accept the API key again."""
        self._key_revoked = False

    @property
    def key_revoked(self) -> bool:
        return self._key_revoked

    def pending_faults(self) -> list[Fault]:
        """Faults not used up yet."""
        return [slot.fault for slot in self._faults if slot.remaining > 0]

    def fail_next(self, error_type: str) -> None:
        """The next submitted job (each call adds one more) completes with ``error_type``."""
        self._fail_next.append(error_type)

    def finish(self, request_id: str, error_type: str | None = None) -> None:
        """Complete a running job now (meant for ``manual`` mode): success, or ``error_type``.

        Completion itself happens on the job's worker task (a success renders the PNG first), so wait
        for ``jobs[request_id].state == "COMPLETED"`` before relying on it.
        """
        job = self.jobs[request_id]
        if job.state != "IN_PROGRESS":
            raise RuntimeError(f"job {request_id} is {job.state}, not IN_PROGRESS; wait_for() it to start")
        job.finish_requested = True
        job.finish_error_type = error_type
        job.wake.set()

    def submits(self) -> list[RecordedCall]:
        """Recorded submit calls that created a job (including those answered with a fault)."""
        return [call for call in self.calls if call.endpoint == "submit" and call.created_job]

    def calls_to(self, endpoint: Endpoint) -> list[RecordedCall]:
        return [call for call in self.calls if call.endpoint == endpoint]

    def queue_position(self, request_id: str) -> int:
        """Jobs ahead of this queued one: those waiting before it, plus the running jobs that must finish
        before a worker is free for it (0 = it starts as soon as a worker picks it up); always 0 in
        ``zero`` mode."""
        if self.options.position_mode == "zero":
            return 0
        try:
            index = self._queue.index(request_id)
        except ValueError:
            return 0
        busy = sum(1 for job in self.jobs.values() if job.state == "IN_PROGRESS")
        return index + max(0, busy - (self.options.workers - 1))

    def queued(self) -> list[str]:
        """Ids of the jobs waiting to start, in order."""
        return list(self._queue)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Return once ``predicate()`` is true; re-checked on every state change (and every 50 ms)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"simulator condition not met within {timeout} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(0.05, remaining))

    # ----------------------------------------------------------------- internals

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(token.strip().encode(), self.options.api_key.encode())

    def _take_fault(self, endpoint: Endpoint) -> Fault | None:
        for slot in self._faults:
            if slot.remaining > 0 and slot.fault.matches(endpoint):
                slot.remaining -= 1
                return slot.fault
        opts = self.options
        if endpoint in API_ENDPOINTS and (opts.error_rate or opts.rate_limit_rate):
            draw = self._random.random()
            if draw < opts.error_rate:
                return Fault("any", status=503)
            if draw < opts.error_rate + opts.rate_limit_rate:
                return Fault("any", status=429, retry_after=1)
        return None

    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Record the call, apply faults and slowness, turn aiohttp's errors into JSON, log one line."""
        name = request.match_info.route.name
        endpoint: Endpoint = name if name in _ENDPOINT_NAMES else "other"  # type: ignore[assignment]
        body = b""
        read_error: web.HTTPException | None = None
        if request.can_read_body:
            try:
                body = await request.read()
            except web.HTTPException as exc:  # e.g. 413, body over client_max_size
                read_error = exc
        parsed: Any = None
        if body:
            with contextlib.suppress(ValueError):
                parsed = json.loads(body)
        headers = CIMultiDict(request.headers)
        headers.popall("Authorization", None)
        call = RecordedCall(
            method=request.method,
            path=request.path,
            endpoint=endpoint,
            json=parsed,
            headers=CIMultiDictProxy(headers),
            body=body,
            authorized=self._authorized(request),
            request_id=request.match_info.get("request_id"),
        )
        request[_CALL_KEY] = call
        self.calls.append(call)
        self._notify()
        fault = self._take_fault(endpoint)
        call.fault = fault
        response: web.StreamResponse
        try:
            if self.options.slow > 0:
                await asyncio.sleep(self.options.slow)
            if fault is None or not fault.after_processing:
                if fault is not None and fault.delay > 0:
                    await asyncio.sleep(fault.delay)
                if fault is not None and fault.replaces_answer:
                    response = _fault_response(fault)
                elif read_error is not None:
                    response = _http_error_response(read_error)
                else:
                    response = await self._call(handler, request)
            else:  # the call takes effect; then the answer is late and/or replaced
                if read_error is not None:
                    response = _http_error_response(read_error)
                else:
                    response = await self._call(handler, request)
                if fault.delay > 0:
                    await asyncio.sleep(fault.delay)
                if fault.replaces_answer:
                    response = _fault_response(fault)
        finally:
            call.answered_at = time.monotonic()
        call.status = response.status
        self._notify()
        log.info(
            "%s %s -> %d [%s]%s %.1f ms",
            request.method,
            request.path,
            response.status,
            endpoint,
            " (injected fault)" if fault is not None and fault.replaces_answer else "",
            (call.answered_at - call.received_at) * 1000,
        )
        return response

    @staticmethod
    async def _call(handler: Handler, request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:  # aiohttp's own 404 / 405 / 413: answer JSON like the rest
            return _http_error_response(exc)

    def _guard(self, request: web.Request) -> web.Response | None:
        if self._key_revoked or not self._authorized(request):
            return web.json_response(_unauthorized_body(), status=401)
        model = request.match_info["model"]
        if model != self.options.model:
            return web.json_response({"detail": f"App not found: {model}"}, status=404)
        return None

    def _urls(self, request: web.Request, request_id: str) -> dict[str, str]:
        base = f"{request.url.origin()}/v1/queue/{self.options.model}/requests/{request_id}"
        return {"response_url": f"{base}/response", "status_url": f"{base}/status", "cancel_url": f"{base}/cancel"}

    def _status_body(self, request: web.Request, job: SimJob) -> dict[str, Any]:
        response_url = self._urls(request, job.request_id)["response_url"]
        if job.state == "IN_QUEUE":
            return {
                "status": "IN_QUEUE",
                "request_id": job.request_id,
                "queue_position": self.queue_position(job.request_id),
                "response_url": response_url,
            }
        if job.state == "IN_PROGRESS":
            return {"status": "IN_PROGRESS", "request_id": job.request_id, "response_url": response_url}
        if job.error_type is not None:
            return {
                "status": "COMPLETED",
                "request_id": job.request_id,
                "error": job.error or ERROR_MESSAGES.get(job.error_type, "Task execution failed"),
                "error_type": job.error_type,
            }
        return {
            "status": "COMPLETED",
            "request_id": job.request_id,
            "response_url": response_url,
            "metrics": {"inference_time": job.inference_time},
        }

    # ----------------------------------------------------------------- handlers

    def _api_job(self, request_id: str) -> SimJob | None:
        job = self.jobs.get(request_id)
        return None if job is None or job.background else job

    async def handle_submit(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        raw = await request.read()
        try:
            payload = json.loads(raw)
        except ValueError as exc:
            return web.json_response({"detail": f"Request body is not valid JSON: {exc}"}, status=400)
        if (problem := validate_submit(payload)) is not None:
            return web.json_response({"detail": problem}, status=422)
        balance = self.options.balance
        if balance is not None and self._created >= balance:
            return web.json_response({"error": "insufficient balance"}, status=403)
        job = self._create_job(payload)
        call = request[_CALL_KEY]
        call.request_id = job.request_id
        call.created_job = True
        body: dict[str, Any] = {"request_id": job.request_id, **self._urls(request, job.request_id)}
        body["queue_position"] = self.queue_position(job.request_id)
        return web.json_response(body)

    async def handle_status(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        job = self._api_job(request.match_info["request_id"])
        if job is None:
            return web.json_response({"detail": "Request not found"}, status=404)
        status = 200 if job.state == "COMPLETED" else self.options.pending_http_status
        return web.json_response(self._status_body(request, job), status=status)

    async def handle_result(self, request: web.Request) -> web.Response:
        """The result of a job.

        Not finished: 202 with the status body. Succeeded: 200 with ``outputs`` (or ``images`` +
        ``description`` when ``result_shape="images"``). Failed or cancelled: 200 with the failure
        status body (``status`` COMPLETED, ``error``, ``error_type``).
        """
        if (denied := self._guard(request)) is not None:
            return denied
        job = self._api_job(request.match_info["request_id"])
        if job is None:
            return web.json_response({"detail": "Request not found"}, status=404)
        if job.state != "COMPLETED":
            return web.json_response(self._status_body(request, job), status=202)
        if job.error_type is not None:
            return web.json_response(self._status_body(request, job))
        image: dict[str, Any] | None = None
        if job.image is not None:
            image = {
                "url": f"{request.url.origin()}/files/{job.request_id}/image.png",
                "content_type": "image/png",
                "file_name": "image.png",
                "file_size": len(job.image),
                "width": job.width,
                "height": job.height,
            }
        if self.options.result_shape == "images":
            return web.json_response({"images": [image] if image else [], "description": job.text or ""})
        outputs: list[dict[str, Any]] = []
        if image is not None:
            outputs.append({"type": "image", **image})
        if job.text is not None:
            outputs.append({"type": "text", "text": job.text})
        return web.json_response(
            {"request_id": job.request_id, "outputs": outputs, "metadata": {"prompt": job.body.get("prompt")}}
        )

    async def handle_cancel(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        job = self._api_job(request.match_info["request_id"])
        if job is None:
            return web.json_response({"status": "NOT_FOUND"}, status=404)
        if job.state == "COMPLETED":
            return web.json_response({"status": "ALREADY_COMPLETED"}, status=400)
        job.cancel_requested = True
        if job.state == "IN_QUEUE":
            self._queue.remove(job.request_id)
            self._complete(job, "CANCELED")
        elif not self.options.cancel_running_finishes:
            job.wake.set()
        self._notify()
        return web.json_response({"status": "CANCELLATION_REQUESTED"}, status=202)

    async def handle_file(self, request: web.Request) -> web.Response:
        job = self._api_job(request.match_info["request_id"])
        if job is None or job.image is None or request.match_info["name"] != "image.png":
            return web.json_response({"detail": "File not found"}, status=404)
        return web.Response(body=job.image, content_type="image/png")

    # ----------------------------------------------------------------- jobs

    def _create_job(self, payload: dict[str, Any]) -> SimJob:
        request_id = f"mmsu_{secrets.token_hex(13)}"
        job = SimJob(request_id=request_id, body=payload, duration=self._next_duration())
        if self._fail_next:
            job.forced_error_type = self._fail_next.popleft()
        elif self.options.fail_with is not None:
            job.forced_error_type = self.options.fail_with
        elif self.options.fail_rate and self._failures.random() < self.options.fail_rate:
            job.forced_error_type = "INFERENCE_FAILURE"
        self.jobs[request_id] = job
        self._queue.append(request_id)
        self._created += 1
        self._notify()
        return job

    def _top_up_background(self) -> None:
        """Keep ``queue_depth`` other customers' jobs waiting, each new one at the back of the queue."""
        waiting = sum(1 for rid in self._queue if self.jobs[rid].background)
        for _ in range(self.options.queue_depth - waiting):
            request_id = f"other_{secrets.token_hex(8)}"
            self.jobs[request_id] = SimJob(
                request_id=request_id, body={}, duration=self._next_duration(), background=True
            )
            self._queue.append(request_id)
        self._notify()

    def _next_duration(self) -> float:
        low, high = self.options.job_duration, self.options.job_duration_max
        if high is None or high == low:
            return low
        return self._durations.uniform(low, high)

    def _complete(self, job: SimJob, error_type: str | None, error: str | None = None) -> None:
        job.state = "COMPLETED"
        job.finished_at = time.monotonic()
        job.error_type = error_type
        if error_type is not None:
            job.error = error or ERROR_MESSAGES.get(error_type, f"Task failed ({error_type})")
        self._notify()

    def _cancel_effective(self, job: SimJob) -> bool:
        return job.cancel_requested and not self.options.cancel_running_finishes

    async def _worker(self) -> None:
        while True:
            while not self._queue:
                await self._changed.wait()
            job = self.jobs[self._queue.popleft()]
            job.state = "IN_PROGRESS"
            job.started_at = time.monotonic()
            if job.background:
                self._top_up_background()
                await self._run_time(job)
                del self.jobs[job.request_id]
                self._notify()
                continue
            self._notify()
            try:
                await self._run(job)
            except Exception:
                log.exception("simulated job %s crashed", job.request_id)
                if job.finished_at is None:
                    self._complete(job, "INTERNAL_SERVER_ERROR")

    async def _run(self, job: SimJob) -> None:
        for i, url in enumerate(job.image_urls):
            data = await self._fetch(url)
            if data is None:
                self._complete(job, "REQUEST_INVALID", f"Could not fetch image_urls[{i}]")
                return
            job.fetched_images.append(data)
            self._notify()
        await self._run_time(job)
        if self._cancel_effective(job):
            self._complete(job, "CANCELED")
            return
        error_type = job.finish_error_type or job.forced_error_type
        if error_type is not None:
            self._complete(job, error_type)
            return
        if "Image" in job.modalities:
            job.image, job.width, job.height = await self._render(job)
        if "Text" in job.modalities:
            job.text = _describe(str(job.body.get("prompt", "")))
        if self._cancel_effective(job):  # cancelled while rendering
            self._complete(job, "CANCELED")
            return
        self._complete(job, None)

    async def _render(self, job: SimJob) -> tuple[bytes, int, int]:
        reference = job.fetched_images[0] if job.fetched_images else None
        if self.options.reuse_images and reference is None:
            key = (job.aspect_ratio, job.tier)
            if (rendered := self._rendered.get(key)) is None:
                rendered = await asyncio.to_thread(
                    images.render_image,
                    job.aspect_ratio,
                    job.tier,
                    None,
                    seed="reused",
                    noisy=self.options.noisy_images,
                )
                self._rendered[key] = rendered
            return rendered
        return await asyncio.to_thread(
            images.render_image,
            job.aspect_ratio,
            job.tier,
            reference,
            seed=str(job.body.get("prompt", "")),
            noisy=self.options.noisy_images,
        )

    async def _run_time(self, job: SimJob) -> None:
        """Wait while the job "runs": its ``duration`` (or until finish() in manual mode), or a cancel."""
        assert job.started_at is not None
        deadline = job.started_at + job.duration
        while not (job.finish_requested or self._cancel_effective(job)):
            if self.options.manual:
                await job.wake.wait()
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                try:
                    await asyncio.wait_for(job.wake.wait(), remaining)
                except TimeoutError:
                    return
            job.wake.clear()

    async def _fetch(self, url: str) -> bytes | None:
        if not self.options.fetch_remote and not _is_loopback(url):
            log.warning("not fetching non-loopback image URL %s (fetch_remote is off)", url)
            return None
        assert self._http is not None
        try:
            async with self._http.get(url) as response:
                if response.status != 200:
                    return None
                return await response.read()
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        """cleanup_ctx: the fetching session and the worker tasks live as long as the app."""
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        self._top_up_background()
        self._workers = [
            asyncio.create_task(self._worker(), name=f"simulator-worker-{i}") for i in range(self.options.workers)
        ]
        try:
            yield
        finally:
            for task in self._workers:
                task.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)
            self._workers = []
            await self._http.close()
            self._http = None


SIMULATOR_KEY: Final = web.AppKey("simulator", Simulator)
_CALL_KEY: Final = web.RequestKey("simulator_call", RecordedCall)


@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    return await request.app[SIMULATOR_KEY].middleware(request, handler)


def create_app(options: SimulatorOptions) -> web.Application:
    """An aiohttp application imitating the upstream; the Simulator is ``app[SIMULATOR_KEY]``."""
    sim = Simulator(options)
    app = web.Application(middlewares=[_middleware])
    app[SIMULATOR_KEY] = sim
    queue = "/v1/queue/{model}"
    request = queue + "/requests/{request_id}"
    app.router.add_post(queue, sim.handle_submit, name="submit")
    app.router.add_get(request + "/status", sim.handle_status, name="status", allow_head=False)
    app.router.add_get(request + "/response", sim.handle_result, name="result", allow_head=False)
    app.router.add_put(request + "/cancel", sim.handle_cancel, name="cancel")
    app.router.add_get("/files/{request_id}/{name}", sim.handle_file, name="file")
    app.cleanup_ctx.append(sim.lifecycle)
    return app


@contextlib.asynccontextmanager
async def run_simulator(options: SimulatorOptions, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[Simulator]:
    """Serve a simulator on ``host:port`` (0 = a free port) for the duration of the block."""
    app = create_app(options)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        sim = app[SIMULATOR_KEY]
        bound_port = runner.addresses[0][1]
        shown_host = f"[{host}]" if ":" in host else host
        sim.base_url = f"http://{shown_host}:{bound_port}"
        yield sim
    finally:
        await runner.cleanup()
