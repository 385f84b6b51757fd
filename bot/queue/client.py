"""The client of OdiRouter's queue API: submit, status, result, cancel and result downloads.

One :class:`QueueClient` borrows the application's single :class:`aiohttp.ClientSession`.
Status, result, cancel and downloads are idempotent and retried on transient failures; a
submit is retried only when the upstream provably did not act on it (the connection was never
made, or it answered 429), because a blind retry could create and bill a second job.

Every attempt is reported to the client's :class:`UpstreamHealth` (``client.health``: outages and a
refused key are logged there once, not per call) and, when given, to a :class:`bot.metrics.Metrics`
(latency and errors by operation, status polls). A ``Retry-After`` holds back every call of this
client, not only the one that was told, since the upstream's rate limit is per account.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlparse

import aiohttp
import orjson

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
from bot.queue.health import UpstreamHealth
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
from bot.queue.pacing import Pacer
from bot.queue.retry import RetryPolicy, parse_retry_after

if TYPE_CHECKING:
    from bot.metrics import Metrics

log = logging.getLogger(__name__)

# API calls answer quickly; a connect that takes over 10 s or a call over 30 s is a fault, not a wait.
API_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=10)
# A 4K PNG can be 35 MB; give the download room but not forever.
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=180, connect=10, sock_read=60)
MAX_ERROR_TEXT = 300

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
_T = TypeVar("_T")


class ResultTooLargeError(MalformedResponseError):
    """A result file is larger than the configured cap."""

    kind = "too_large"


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
        metrics: Metrics | None = None,
        health: UpstreamHealth | None = None,
        clock: Clock = time.monotonic,
        reads_per_second: float | None = None,
        user_agent: str | None = None,
    ) -> None:
        """``metrics`` records latency, errors and polls; ``health`` (a new one by default) follows
        the upstream's state; ``clock`` (monotonic seconds) times attempts and ``Retry-After`` holds;
        ``reads_per_second`` bounds status and result reads (retries included), spread evenly and
        counted as they leave, so a thousand jobs resumed at once never make a burst; ``user_agent``
        names the bot (and which of its processes calls) to the upstream."""
        self._session = session
        self._user_agent = user_agent
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
        # Paced reads wait for their turn holding a slot, so they may hold only some of the slots:
        # a submit (a member waiting for their job to be sent) never queues behind reads' turns.
        self._read_slots = asyncio.Semaphore(max(1, concurrency - max(1, concurrency // 4)))
        self._downloads = asyncio.Semaphore(max(1, concurrency // 2))
        self._reads = Pacer(reads_per_second, clock=clock, sleep=sleep) if reads_per_second else None
        self._metrics = metrics
        self._health = health or UpstreamHealth()
        self._clock = clock
        # No API call starts before this moment (``clock`` time): set by a 429's Retry-After.
        self._hold_until = 0.0
        # Whether an unfinished job's response URL answers 202 with its status (see look).
        self._early_results = True

    def __repr__(self) -> str:
        return f"QueueClient(base_url={self._base!r}, model={self._model!r})"

    @property
    def health(self) -> UpstreamHealth:
        """The upstream's health as this client has seen it."""
        return self._health

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
        """Create a job. Raises :class:`SubmitUncertainError` when it may exist despite the failure,
        including a 2xx answer that does not say which job it created."""
        body = request.to_body(self._size_fields)
        try:
            status, data = await self._call("submit", "POST", self.queue_url, body=body, submit=True)
        except MalformedResponseError as exc:  # a 2xx that is not JSON: the upstream took the job
            raise SubmitUncertainError(
                f"the upstream accepted the submit but its answer is unreadable ({exc.message}); "
                "the job may exist upstream",
                status=exc.status,
                kind="malformed",
            ) from exc
        request_id = data.get("request_id") if isinstance(data, Mapping) else None
        if not isinstance(request_id, str) or not request_id:
            error = SubmitUncertainError(
                f"the upstream accepted the submit (HTTP {status}) but named no request_id; the job may exist upstream",
                status=status,
                kind="malformed",
            )
            self._record_error("submit", error)
            self._health.failed(error, "submit")
            raise error
        handle = self.handle(
            request_id,
            status_url=_str_or_none(data.get("status_url")),
            response_url=_str_or_none(data.get("response_url")),
            cancel_url=_str_or_none(data.get("cancel_url")),
        )
        position = data.get("queue_position")
        return Submission(handle, position if isinstance(position, int) and not isinstance(position, bool) else None)

    async def status(self, handle: JobHandle) -> QueueStatus:
        if self._metrics is not None:
            self._metrics.status_poll()
        _, data = await self._call("status", "GET", handle.status_url, request_id=handle.request_id, paced=True)
        return self._parsed("status", lambda: parse_status(data, handle.request_id))

    async def result(self, handle: JobHandle) -> QueueResult | QueueStatus:
        """The finished job's outputs, or its current status when it has not finished (HTTP 202:
        counted as a status poll, which it is)."""
        status, data = await self._call("result", "GET", handle.response_url, request_id=handle.request_id, paced=True)

        def parse() -> QueueResult | QueueStatus:
            if status == 202:
                return parse_status(data, handle.request_id)
            if isinstance(data, Mapping) and "outputs" not in data and "images" not in data and "status" in data:
                reading = parse_status(data, handle.request_id)
                if not reading.state.is_terminal:
                    return reading
            return parse_result(data, handle.request_id)

        outcome = self._parsed("result", parse)
        if isinstance(outcome, QueueStatus) and self._metrics is not None:
            self._metrics.status_poll()
        return outcome

    async def look(self, handle: JobHandle, *, likely_done: bool) -> QueueStatus | QueueResult:
        """One poll of a job. When it has ``likely_done``, its response URL is read instead of its
        status URL: a finished job's result comes in that one trip, and an unfinished job answers
        202 with its status. Should the upstream answer that read with an error while the job is
        unfinished (its status URL is read at once to tell), this client reads status URLs only
        from then on."""
        if likely_done and self._early_results:
            try:
                outcome = await self.result(handle)
                if isinstance(outcome, QueueResult) and self._metrics is not None:
                    self._metrics.status_poll()  # the poll that found it done (a 202 counted itself)
                return outcome
            except (InvalidRequestError, NotFoundError, MalformedResponseError) as exc:
                reading = await self.status(handle)
                if not reading.state.is_terminal:
                    self._early_results = False
                    log.warning(
                        "the upstream answers an unfinished job's response URL with an error (%s): "
                        "polling status URLs only from now on",
                        exc.message,
                    )
                return reading
        return await self.status(handle)

    async def cancel(self, handle: JobHandle) -> CancelOutcome:
        try:
            _, data = await self._call("cancel", "PUT", handle.cancel_url, request_id=handle.request_id, limited=False)
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
            async with self._downloads:
                started = self._clock()
                try:
                    async with self._session.get(url, headers=headers, timeout=self._download_timeout) as resp:
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
                finally:
                    self._record_latency("download", started)

        return await self._with_retries("download", attempt, api=False)

    # -- the one funnel every API call goes through ------------------------------------------

    async def _call(
        self,
        operation: str,
        method: str,
        url: str,
        *,
        body: dict[str, Any] | None = None,
        request_id: str | None = None,
        submit: bool = False,
        limited: bool = True,
        paced: bool = False,
    ) -> tuple[int, Any]:
        async def attempt() -> tuple[int, Any]:
            async with contextlib.AsyncExitStack() as held:
                if paced:
                    await held.enter_async_context(self._read_slots)
                    if self._reads is not None:
                        # With a read slot in hand, so the read leaves at its turn; a call slot only
                        # after it, so a submit never waits behind reads waiting for their turns.
                        await self._reads.turn()
                if limited:
                    await held.enter_async_context(self._calls)
                started = self._clock()
                try:
                    async with self._session.request(
                        method, url, json=body, headers=self._auth_headers(), timeout=self._timeout
                    ) as resp:
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
                            f"no answer to the submit ({error.message}); the job may exist upstream", kind=error.kind
                        ) from exc
                    raise _Retryable(error) from exc
                finally:
                    self._record_latency(operation, started)
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
                        kind=failure.kind,
                    )
                raise _Retryable(failure)
            raise failure

        log.debug("%s %s", method, url)
        return await self._with_retries(operation, attempt, api=True)

    async def _with_retries(self, operation: str, attempt: Callable[[], Awaitable[_T]], *, api: bool) -> _T:
        """Run ``attempt`` until it succeeds, fails for good, or runs out of tries.

        API calls (``api``) wait out a hold set by any call's ``Retry-After`` and report to
        :attr:`health`; downloads, which may come from another host, do neither.
        """
        tries = 0
        started_at = self._health.now()
        waited_until = float("-inf")  # ``clock`` time this call has already slept up to
        while True:
            if api and (hold := self._hold_until - max(self._clock(), waited_until)) > 0:
                log.debug("upstream %s held back %.1fs by an earlier Retry-After", operation, hold)
                waited_until = self._clock() + hold
                await self._sleep(hold)
            tries += 1
            try:
                result = await attempt()
            except _Retryable as failure:
                error = failure.error
                self._record_error(operation, error)
                retry_after = failure.retry_after
                if api and retry_after is not None:
                    self._hold(min(retry_after, self._retry.max_retry_after))
                too_long = retry_after is not None and retry_after > self._retry.max_retry_after
                final = tries >= self._retry.attempts or too_long
                if api:
                    self._health.failed(error, operation, final=final, started=started_at)
                if final:
                    raise error from failure.__cause__
                delay = self._retry.delay(tries, self._rng, retry_after)
                log.debug("upstream %s failed (%s); retrying in %.1fs", operation, error.message, delay)
                waited_until = self._clock() + delay
                await self._sleep(delay)
            except QueueError as error:
                self._record_error(operation, error)
                if api:
                    self._health.failed(error, operation, started=started_at)
                raise
            else:
                if api:
                    self._health.succeeded(operation)
                return result

    def _hold(self, seconds: float) -> None:
        self._hold_until = max(self._hold_until, self._clock() + max(0.0, seconds))

    def _parsed(self, operation: str, parse: Callable[[], _T]) -> _T:
        """Read an answer's body; an unreadable one is counted as a ``malformed`` error."""
        try:
            return parse()
        except MalformedResponseError as error:
            self._record_error(operation, error)
            self._health.failed(error, operation)
            raise

    def _record_latency(self, operation: str, started: float) -> None:
        if self._metrics is not None:
            self._metrics.upstream_latency(operation, self._clock() - started)

    def _record_error(self, operation: str, error: QueueError) -> None:
        if self._metrics is not None:
            self._metrics.upstream_error(operation, error.kind)

    def _auth_headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}
        if self._user_agent is not None:
            headers["User-Agent"] = self._user_agent
        return headers

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
        if status == 408:
            return UpstreamUnavailableError(message, kind="timeout", **kwargs)
        if status >= 500:
            return UpstreamUnavailableError(message, **kwargs)
        return QueueError(message, kind=f"http_{status // 100}xx", **kwargs)

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
        return orjson.loads(raw)
    except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
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
        return UpstreamUnavailableError("the upstream did not answer in time", request_id=request_id, kind="timeout")
    return UpstreamUnavailableError(
        f"could not reach the upstream ({type(exc).__name__})", request_id=request_id, kind="connection"
    )
