"""Errors raised by :class:`bot.queue.client.QueueClient`.

Hierarchy::

    QueueError                       anything that went wrong talking to the upstream
    ├── AuthenticationError          401/403: the API key is wrong or not allowed this model
    ├── InsufficientBalanceError     402/403 "insufficient balance": the account is out of credit
    ├── RateLimitedError             429: too many requests; ``retry_after`` seconds if given
    ├── InvalidRequestError          400/422: the parameters were refused
    ├── NotFoundError                404: unknown request id or model
    ├── UpstreamUnavailableError     5xx, connection failures and timeouts
    │   └── SubmitUncertainError     a submit may have reached the server but no answer came back
    └── MalformedResponseError       a 2xx answer we cannot read

Every error has a ``kind``, a short label for metrics and health (``timeout``, ``connection``,
``http_5xx``, ``http_429``, ``auth``, ``balance``, ``invalid``, ``not_found``, ``malformed``,
``too_large``, ``http_4xx``, ``other``). No message ever contains the API key.
"""

from __future__ import annotations


class QueueError(Exception):
    """Base class. ``status`` is the HTTP status when there was one; ``kind`` labels the failure."""

    kind: str = "other"

    def __init__(
        self, message: str, *, status: int | None = None, request_id: str | None = None, kind: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.request_id = request_id
        if kind is not None:
            self.kind = kind


class AuthenticationError(QueueError):
    """The upstream refused the API key."""

    kind = "auth"


class InsufficientBalanceError(QueueError):
    """The upstream account has no credit left."""

    kind = "balance"


class RateLimitedError(QueueError):
    """The upstream asked us to slow down."""

    kind = "http_429"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = 429,
        request_id: str | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(message, status=status, request_id=request_id, kind=kind)
        self.retry_after = retry_after


class InvalidRequestError(QueueError):
    """The upstream refused the request's parameters."""

    kind = "invalid"


class NotFoundError(QueueError):
    """The request id (or the model) is unknown upstream."""

    kind = "not_found"


class UpstreamUnavailableError(QueueError):
    """A transient failure: 5xx (the default kind), a connection error or a timeout."""

    kind = "http_5xx"


class SubmitUncertainError(UpstreamUnavailableError):
    """A submit failed after it may have reached the server; it must not be retried blindly.

    Its ``kind`` is that of the underlying failure: ``timeout``, ``connection``, ``http_5xx``, or
    ``malformed`` for a 2xx answer that does not name the job it created.
    """


class MalformedResponseError(QueueError):
    """The upstream answered with something that does not match the documented shapes."""

    kind = "malformed"
