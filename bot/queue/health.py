"""What the bot knows about the upstream's health, and the operator-level log lines about it.

One :class:`UpstreamHealth` belongs to each :class:`bot.queue.client.QueueClient` (``client.health``);
the client reports every API call to it. Instead of a log line per job per poll, an outage gets one
warning when it starts and one info line when it ends, and a refused API key (or an empty account)
one error until a call succeeds again. ``/healthz`` shows a :meth:`UpstreamHealth.snapshot`.

Only the queue API counts here (submit, status, result, cancel): result files may come from another
host, and a failing download says nothing about whether jobs can be followed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from bot.queue.errors import QueueError

log = logging.getLogger(__name__)

#: Error kinds that mean the service cannot be reached or cannot work right now.
OUTAGE_KINDS: Final = frozenset({"timeout", "connection", "http_5xx"})
#: Error kinds that mean the service refuses this account: wrong or revoked key, no credit.
REFUSAL_KINDS: Final = frozenset({"auth", "balance"})
#: Answers that show the service is up and working even though the call did not succeed.
ANSWER_KINDS: Final = frozenset({"not_found", "invalid"})

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class UpstreamFailure:
    """One failed call: when (Unix time), which operation, the error kind and its (key-free) message."""

    at: float
    operation: str
    kind: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": _iso(self.at),
            "operation": self.operation,
            "kind": self.kind,
            "message": self.message,
        }


class UpstreamHealth:
    """Last success, last error, and whether an outage or a refusal of the account is going on.

    ``clock`` gives Unix time (``time.time``); every timestamp here comes from it.
    """

    def __init__(self, *, clock: Clock = time.time) -> None:
        self._clock = clock
        #: Unix time of the last call the service answered properly (2xx, or 404/400-style answers).
        self.last_success: float | None = None
        #: The most recent failed call, retried attempts included.
        self.last_error: UpstreamFailure | None = None
        #: When the current outage began (first failure after the last success), or None.
        self.outage_since: float | None = None
        #: The refusal (``auth`` or ``balance``) logged and not yet cleared by a success, or None.
        self.refusal: UpstreamFailure | None = None
        self._failing_since: float | None = None

    def __repr__(self) -> str:
        return f"UpstreamHealth(reachable={self.reachable}, key_refused={self.key_refused})"

    @property
    def reachable(self) -> bool:
        """False during an outage: calls time out, cannot connect, or get 5xx answers."""
        return self.outage_since is None

    @property
    def key_refused(self) -> bool:
        """True while the service refuses the API key or the account (401/403/402)."""
        return self.refusal is not None

    def now(self) -> float:
        return self._clock()

    def succeeded(self, operation: str) -> None:
        """A call got a usable answer: ends an outage and a refusal, each with one log line."""
        now = self._clock()
        self.last_success = now
        self._failing_since = None
        if self.outage_since is not None:
            log.info("the image service answered again after %.0f s", max(0.0, now - self.outage_since))
            self.outage_since = None
        if self.refusal is not None:
            log.info("the image service accepts the API key again")
            self.refusal = None

    def failed(self, error: QueueError, operation: str, *, final: bool = True, started: float | None = None) -> None:
        """A call (or one attempt of it, when ``final`` is False) failed with ``error``.

        An outage starts when a call has used up its retries on timeouts, refused connections or 5xx
        answers and no other call succeeded since it ``started`` (Unix time of its first attempt),
        so one unlucky call among working ones does not announce an outage.
        """
        if error.kind in ANSWER_KINDS:
            self.succeeded(operation)  # the service answered; the request itself was the problem
            return
        now = self._clock()
        failure = UpstreamFailure(now, operation, error.kind, error.message)
        self.last_error = failure
        if error.kind in REFUSAL_KINDS:
            if self.refusal is None or self.refusal.kind != error.kind:
                self.refusal = failure
                if error.kind == "balance":
                    log.error(
                        "the image service refused the account: %s; no job can be made until it is topped up",
                        error.message,
                    )
                else:
                    log.error("the image service refused the API key: %s; check ODIROUTER_API_KEY", error.message)
            return
        if error.kind not in OUTAGE_KINDS:
            return
        if self._failing_since is None:
            self._failing_since = now
        if not final or self.outage_since is not None:
            return
        if started is not None and self.last_success is not None and self.last_success >= started:
            return  # another call got through meanwhile: a bad moment, not an outage
        self.outage_since = self._failing_since
        log.warning("the image service is unreachable: %s; jobs keep waiting", error.message)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready view for ``/healthz``."""
        now = self._clock()
        return {
            "reachable": self.reachable,
            "key_refused": self.key_refused,
            "last_success": _iso(self.last_success),
            "last_error": self.last_error.as_dict() if self.last_error else None,
            "outage_since": _iso(self.outage_since),
            "outage_seconds": round(now - self.outage_since, 1) if self.outage_since is not None else None,
        }


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")
