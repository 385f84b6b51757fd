"""Injected REST faults: error answers (5xx or any status) and held ("slow") requests, keyed by a path regex."""

from __future__ import annotations

import asyncio
import contextlib
import http
import re
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(eq=False)
class FaultRule:
    """One rule made by ``FakeDiscord.inject_fault``; the fields can be read (and ``times`` changed) by tests.

    A matching request is first held ``delay`` seconds (if set), then answered ``status`` with
    ``{"message": message, "code": code}``; with ``status=None`` it is answered normally after the hold.
    """

    pattern: re.Pattern[str]
    method: str | None
    status: int | None
    code: int
    message: str
    delay: float | None
    #: Requests still to fault; None: until removed (``FakeDiscord.clear_faults``).
    times: int | None
    #: Requests this rule has faulted so far (counted when they arrive, before any hold).
    hits: int = 0
    #: Requests being held right now.
    held: int = 0
    _release: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def active(self) -> bool:
        return self.times is None or self.times > 0

    def matches(self, method: str, path: str) -> bool:
        if not self.active:
            return False
        if self.method is not None and self.method != method.upper():
            return False
        return self.pattern.search(path) is not None

    def take(self) -> None:
        """Count one faulted request."""
        self.hits += 1
        if self.times is not None:
            self.times -= 1

    async def hold(self, notify: Callable[[], None]) -> None:
        """Wait ``delay`` seconds, or less if ``release()`` is called (then every later hold is skipped).
        ``notify`` is called when ``held`` changes."""
        if not self.delay or self._release.is_set():
            return
        self.held += 1
        notify()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), self.delay)
        finally:
            self.held -= 1
            notify()

    def release(self) -> None:
        """Let the held requests go on now (they are then answered as the rule says)."""
        self._release.set()


def make_fault(
    method: str | None,
    path_pattern: str,
    *,
    status: int | None,
    code: int,
    delay: float | None,
    times: int | None,
    message: str | None,
) -> FaultRule:
    if delay is None and status is None:
        status = 500
    if times is not None and times < 1:
        raise ValueError("times must be at least 1 (or None for every request)")
    if delay is not None and delay < 0:
        raise ValueError("delay must not be negative")
    if message is None and status is not None:
        try:
            message = f"{status}: {http.HTTPStatus(status).phrase}"
        except ValueError:
            message = f"{status}: Error"
    return FaultRule(
        pattern=re.compile(path_pattern),
        method=method.upper() if method is not None else None,
        status=status,
        code=code,
        message=message or "",
        delay=delay,
        times=times,
    )
