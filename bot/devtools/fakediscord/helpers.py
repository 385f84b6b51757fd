"""Small async test utilities."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]],
    timeout: float = 5.0,
    interval: float = 0.01,
    *,
    what: str | None = None,
) -> None:
    """Poll ``predicate`` until it is true; raise AssertionError describing it after ``timeout`` s.

    Prefer ``FakeDiscord.wait_until`` for conditions on the fake's state (woken by every change);
    use this one for state that lives elsewhere (e.g. in the bot under test).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    description = what or getattr(predicate, "__name__", repr(predicate))
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout:.2f}s waiting for {description}")
        await asyncio.sleep(interval)
