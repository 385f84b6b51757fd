"""The client of OdiRouter's queue API: submit, status, result, cancel and result downloads.

One :class:`QueueClient` borrows the application's single :class:`aiohttp.ClientSession`.
Status, result, cancel and downloads are idempotent and retried on transient failures; a
submit is retried only when the upstream provably did not act on it (the connection was never
made, or it answered 429), because a blind retry could create and bill a second job.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, urlparse

import aiohttp

from bot.queue.errors import (
    AuthenticationError,
    InsufficientBalanceError,
    InvalidRequestError,
    MalformedResponseError,
    NotFoundError,
    QueueError,
    RateLimitedError,
    SubmitUncertainError,
    UpstreamUnavailableError,
)
from bot.queue.models import (
    CancelOutcome,
    GenerationRequest,
    JobHandle,
    QueueResult,
    QueueStatus,
    Submission,
    parse_result,
    parse_status,
)
from bot.queue.retry import RetryPolicy, parse_retry_after

log = logging.getLogger(__name__)

# API calls answer quickly; a connect that takes over 10 s or a call over 30 s is a fault, not a wait.
API_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=10)
# A 4K PNG can be 35 MB; give the download room but not forever.
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=180, connect=10, sock_read=60)
MAX_ERROR_TEXT = 300

Sleep = Callable[[float], Awaitable[None]]
_T = TypeVar("_T")


class ResultTooLargeError(MalformedResponseError):
    """A result file is larger than the configured cap."""


class _Retryable(Exception):
    """Internal: a failed try that may be repeated."""

    def __init__(self, error: QueueError, retry_after: float | None = None) -> None:
        self.error = error
        self.retry_after = retry_after


class QueueClient:
    """Talks to ``{base_url}/v1/queue/{model}``; safe to share between every job."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        api_key: str,
        model: str = "nano_banana_pro",
        size_fields: tuple[str, ...] = ("resolution", "image_size"),
        retry: RetryPolicy | None = None,
        timeout: aiohttp.ClientTimeout = API_TIMEOUT,
        download_timeout: aiohttp.ClientTimeout = DOWNLOAD_TIMEOUT,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        concurrency: int = 8,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._origin = _origin(self._base)
        self._api_key = api_key
        self._model = model
        self._size_fields = size_fields
        self._retry = retry or RetryPolicy()
        self._timeout = timeout
        self._download_timeout = download_timeout
        self._sleep = sleep
        self._rng = rng or random.Random()
        # Bounds on calls in flight, taken per attempt (never while sleeping before a retry).
        # Cancels skip the bound so a member's ❌ is never stuck behind polls or downloads,
        # and downloads (seconds each for a 4K file) have their own, smaller one.
        self._calls = asyncio.Semaphore(concurrency)
        self._downloads = asyncio.Semaphore(max(1, concurrency // 2))

    def __repr__(self) -> str:
        return f"QueueClient(base_url={self._base!r}, model={self._model!r})"

    @property
    def queue_url(self) -> str:
        return f"{self._base}/v1/queue/{quote(self._model, safe='')}"

    # -- handles ---------------------------------------------------------------------------

    def handle(
        self,
        request_id: str,
        *,
        status_url: str | None = None,
        response_url: str | None = None,
        cancel_url: str | None = None,
    ) -> JobHandle:
        """A handle for ``request_id``. Returned URLs are used only when they point at our upstream's
        origin, so the API key is never sent anywhere else."""
        root = f"{self.queue_url}/requests/{quote(request_id, safe='')}"
        return JobHandle(
            request_id=request_id,
            status_url=self._trusted(status_url) or f"{root}/status",
            response_url=self._trusted(response_url) or f"{root}/response",
            cancel_url=self._trusted(cancel_url) or f"{root}/cancel",
        )

    def _trusted(self, url: str | None) -> str | None:
        if url and _origin(url) == self._origin:
            return url
        return None

    # -- the four calls --------------------------------------------------------------------

    async def submit(self, request: GenerationRequest) -> Submission:
        """Create a job. Raises :class:`SubmitUncertainError` when it may exist despite the failure."""
        body = request.to_body(self._size_fields)
        status, data = await self._call("POST", self.queue_url, body=body, submit=True)
        if not isinstance(data, Mapping) or not isinstance(data.get("request_id"), str) or not data["request_id"]:
            raise MalformedResponseError(f"submit answer (HTTP {status}) has no request_id")
        request_id = data["request_id"]
        handle = self.handle(
            request_id,
            status_url=_str_or_none(data.get("status_url")),
            response_url=_str_or_none(data.get("response_url")),
            cancel_url=_str_or_none(data.get("cancel_url")),
        )
        position = data.get("queue_position")
        return Submission(handle, position if isinstance(position, int) and not isinstance(position, bool) else None)

    async def status(self, handle: JobHandle) -> QueueStatus:
        _, data = await self._call("GET", handle.status_url, request_id=handle.request_id)
        return parse_status(data, handle.request_id)

    async def result(self, handle: JobHandle) -> QueueResult | QueueStatus:
        """The finished job's outputs, or its current status when it has not finished (HTTP 202)."""
        status, data = await self._call("GET", handle.response_url, request_id=handle.request_id)
        if status == 202:
            return parse_status(data, handle.request_id)
        if isinstance(data, Mapping) and "outputs" not in data and "images" not in data and "status" in data:
            reading = parse_status(data, handle.request_id)
            if not reading.state.is_terminal:
                return reading
        return parse_result(data, handle.request_id)

    async def cancel(self, handle: JobHandle) -> CancelOutcome:
        try:
            _, data = await self._call("PUT", handle.cancel_url, request_id=handle.request_id, limited=False)
        except NotFoundError:
            return CancelOutcome.NOT_FOUND
        except InvalidRequestError as exc:
            if exc.status == 400 and "ALREADY_COMPLETED" in exc.message.upper():
                return CancelOutcome.ALREADY_COMPLETED
            raise
        word = str(data.get("status", "")).upper() if isinstance(data, Mapping) else ""
        if word == "ALREADY_COMPLETED":
            return CancelOutcome.ALREADY_COMPLETED
        return CancelOutcome.REQUESTED

    async def download(self, url: str, *, max_bytes: int) -> bytes:
        """Fetch a result file at once, refusing anything over ``max_bytes``."""
        headers = self._auth_headers() if _origin(url) == self._origin else {}

        async def attempt() -> bytes:
            try:
                async with (
                    self._downloads,
                    self._session.get(url, headers=headers, timeout=self._download_timeout) as resp,
                ):
                    if resp.status >= 400:
                        error = self._error_for(resp.status, await resp.read(), resp.headers, None)
                        if isinstance(error, RateLimitedError):
                            raise _Retryable(error, error.retry_after)
                        if isinstance(error, UpstreamUnavailableError):
                            raise _Retryable(error)
                        raise error
                    if resp.content_length is not None and resp.content_length > max_bytes:
                        raise ResultTooLargeError(f"result file is {resp.content_length} bytes, over the cap")
                    chunks: list[bytes] = []
                    total = 0
                    async for chunk in resp.content.iter_chunked(1 << 16):
                        total += len(chunk)
                        if total > max_bytes:
                            raise ResultTooLargeError("result file is over the size cap")
                        chunks.append(chunk)
                    return b"".join(chunks)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise _Retryable(_transport_error(exc, None)) from exc

        return await self._with_retries(attempt)

    # -- the one funnel every API call goes through ------------------------------------------

    async def _call(
        self,
        method: str,
        url: str,
        *,
        body: dict[str, Any] | None = None,
        request_id: str | None = None,
        submit: bool = False,
        limited: bool = True,
    ) -> tuple[int, Any]:
        async def attempt() -> tuple[int, Any]:
            try:
                async with (
                    self._calls if limited else contextlib.nullcontext(),
                    self._session.request(
                        method, url, json=body, headers=self._auth_headers(), timeout=self._timeout
                    ) as resp,
                ):
                    raw = await resp.read()
                    status = resp.status
                    headers = resp.headers
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                # The connection was never made, so nothing reached the server: always safe to repeat.
                raise _Retryable(_transport_error(exc, request_id)) from exc
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = _transport_error(exc, request_id)
                if submit:
                    raise SubmitUncertainError(
                        f"no answer to the submit ({error.message}); the job may exist upstream"
                    ) from exc
                raise _Retryable(error) from exc
            if 200 <= status < 300:
                return status, _decode(raw, status, request_id)
            failure = self._error_for(status, raw, headers, request_id)
            if isinstance(failure, RateLimitedError):
                raise _Retryable(failure, failure.retry_after)
            if isinstance(failure, UpstreamUnavailableError):
                if submit:
                    raise SubmitUncertainError(
                        f"upstream answered HTTP {status} to the submit; the job may exist upstream",
                        status=status,
                    )
                raise _Retryable(failure)
            raise failure

        log.debug("%s %s", method, url)
        return await self._with_retries(attempt)

    async def _with_retries(self, attempt: Callable[[], Awaitable[_T]]) -> _T:
        tries = 0
        while True:
            tries += 1
            try:
                return await attempt()
            except _Retryable as failure:
                retry_after = failure.retry_after
                too_long = retry_after is not None and retry_after > self._retry.max_retry_after
                if tries >= self._retry.attempts or too_long:
                    raise failure.error from failure.__cause__
                delay = self._retry.delay(tries, self._rng, retry_after)
                log.info("upstream call failed (%s); retrying in %.1fs", failure.error.message, delay)
                await self._sleep(delay)

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}

    def _error_for(self, status: int, raw: bytes, headers: Mapping[str, str], request_id: str | None) -> QueueError:
        # Redact before cutting to length, so a key straddling the cut cannot leak a prefix.
        message = self._redact(_error_message(raw) or f"HTTP {status}")[:MAX_ERROR_TEXT]
        kwargs: dict[str, Any] = {"status": status, "request_id": request_id}
        if status == 429:
            return RateLimitedError(message, retry_after=parse_retry_after(headers.get("Retry-After")), **kwargs)
        if status == 402 or (status == 403 and "balance" in message.lower()):
            return InsufficientBalanceError(message, **kwargs)
        if status in (401, 403):
            return AuthenticationError(message, **kwargs)
        if status == 404:
            return NotFoundError(message, **kwargs)
        if status in (400, 409, 413, 422):
            return InvalidRequestError(message, **kwargs)
        if status >= 500 or status == 408:
            return UpstreamUnavailableError(message, **kwargs)
        return QueueError(message, **kwargs)

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "[redacted]") if self._api_key else text


def _origin(url: str) -> tuple[str, str]:
    parsed = urlparse(url)
    return parsed.scheme.lower(), parsed.netloc.lower()


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _decode(raw: bytes, status: int, request_id: str | None) -> Any:
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise MalformedResponseError(f"HTTP {status} answer is not JSON", status=status, request_id=request_id) from exc


def _error_message(raw: bytes) -> str:
    """The human part of either error family: ``{"error": {...}}``/``{"error": "..."}`` or ``{"detail": ...}``."""
    try:
        data = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace").strip()
    parts: list[str] = []
    if isinstance(data, Mapping):
        error = data.get("error")
        if isinstance(error, Mapping):
            parts += [str(error[k]) for k in ("code", "message") if error.get(k)]
        elif error:
            parts.append(str(error))
        detail = data.get("detail")
        if isinstance(detail, list):
            parts += [str(d.get("msg", d)) if isinstance(d, Mapping) else str(d) for d in detail]
        elif detail:
            parts.append(str(detail))
        for key in ("message", "status"):
            if not parts and data.get(key):
                parts.append(str(data[key]))
    return ": ".join(parts) if parts else json.dumps(data)


def _transport_error(exc: BaseException, request_id: str | None) -> UpstreamUnavailableError:
    if isinstance(exc, TimeoutError):
        return UpstreamUnavailableError("the upstream did not answer in time", request_id=request_id)
    return UpstreamUnavailableError(f"could not reach the upstream ({type(exc).__name__})", request_id=request_id)
