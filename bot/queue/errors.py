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

No message ever contains the API key.
"""

from __future__ import annotations


class QueueError(Exception):
    """Base class. ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None, request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.request_id = request_id


class AuthenticationError(QueueError):
    """The upstream refused the API key."""


class InsufficientBalanceError(QueueError):
    """The upstream account has no credit left."""


class RateLimitedError(QueueError):
    """The upstream asked us to slow down."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = 429,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, status=status, request_id=request_id)
        self.retry_after = retry_after


class InvalidRequestError(QueueError):
    """The upstream refused the request's parameters."""


class NotFoundError(QueueError):
    """The request id (or the model) is unknown upstream."""


class UpstreamUnavailableError(QueueError):
    """A transient failure: 5xx, a connection error or a timeout."""


class SubmitUncertainError(UpstreamUnavailableError):
    """A submit failed after it may have reached the server; it must not be retried blindly."""


class MalformedResponseError(QueueError):
    """The upstream answered with something that does not match the documented shapes."""
