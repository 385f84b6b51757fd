"""``python -m bot.playground`` end to end: the real command in a child process, its page in a real
headless Chromium (Debian's ``chromium`` and ``chromium-driver``, through Selenium).

A member runs /imagine and sees it queued, then the image; a second job is stopped with ❌; an admin
sets a daily limit and the next /imagine is refused privately: the refusal is in the refused member's
view and in nobody else's. Texts are the English catalog's (bot/locales/en.ftl).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from bot.devtools.browser import PlaygroundPage, PlaygroundProcess, headless_chromium

pytestmark = pytest.mark.browser

QUEUED = "Queued, position"  # status-queued
CANCELLED = "Cancelled"  # job-title-cancelled
REFUSED = "your daily image limit"  # refusal-daily
QUOTA_UPDATED = "Quota updated."  # quota-updated


@pytest.fixture
def page(tmp_path: Path) -> Iterator[PlaygroundPage]:
    log = tmp_path / "playground.log"
    # One other customer's job always ahead: every reply is queued for a while before it is drawn.
    playground = PlaygroundProcess(["--job-duration", "1.5", "--queue-depth", "1"], cwd=tmp_path, log=log)
    playground.start()
    try:
        with headless_chromium() as driver:
            page = PlaygroundPage(driver)
            page.open(playground.url)
            yield page
    finally:
        code = playground.stop()
        assert code == 0, f"the playground did not stop cleanly ({code}):\n{log.read_text()}"


def test_imagine_cancel_and_a_private_quota_refusal(page: PlaygroundPage) -> None:
    assert "nothing leaves this machine" in page.driver.find_element(By.ID, "banner").text
    page.act_as("Alice")

    # /imagine: queued first, then the finished image in the same reply.
    page.run("imagine", prompt="a lighthouse at dusk")
    first = page.wait("the queued reply", lambda d: page.message_with(QUEUED))
    page.wait("the image", lambda d: page.image_loaded(first))

    # A second job, stopped with ❌ while it waits.
    page.run("imagine", prompt="a slow tortoise")
    second = page.wait("the second reply", lambda d: page.message_with("a slow tortoise"))
    page.wait("its Cancel button", lambda d: "Cancel" in page.message_text(second))
    page.click("the ❌ control", f'article[data-message-id="{second}"] button.add-reaction[data-emoji="❌"]')
    page.wait("the second job to be cancelled", lambda d: CANCELLED in page.message_text(second))
    assert not page.image_loaded(second)

    # The admin allows one image a day; Alice already made one, so her next is refused, privately.
    page.act_as("Ada")
    page.run("quota set", user_daily="1")
    page.wait("the admin's private confirmation", lambda d: page.message_with(QUOTA_UPDATED))
    page.act_as("Alice")
    page.wait("Alice's view", lambda d: page.message_with("a slow tortoise"))
    assert page.message_with(QUOTA_UPDATED) is None  # the admin's answer was for the admin only
    page.run("imagine", prompt="one more lighthouse")
    refusal = page.wait("the refusal", lambda d: page.message_with(REFUSED))
    assert "Only you can see this" in page.message_text(refusal)

    page.act_as("Bob")
    page.wait("Bob's view", lambda d: page.message_with("a slow tortoise"))
    assert page.message_with(REFUSED) is None
    assert page.message_with(QUOTA_UPDATED) is None
    assert page.image_loaded(first)
