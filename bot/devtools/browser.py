"""The playground in a child process and a headless Chromium driven through Selenium (WebDriver).

Used by the playground's browser test and by ``scripts/playground-screenshot.py``. Chromium is
Debian's ``chromium`` with its ``chromium-driver`` (``/usr/bin/chromedriver``), started with the flags
that keep it off the network (no background requests, updates or sync) and a fresh profile.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
T = TypeVar("T")
#: How long the playground may take to print its URL.
START_TIMEOUT = 60.0


@contextlib.contextmanager
def headless_chromium(width: int = 1280, height: int = 900) -> Iterator[webdriver.Chrome]:
    """A headless Chromium with a fresh profile, closed (and the profile removed) at the end."""
    with tempfile.TemporaryDirectory(prefix="playground-chromium-") as profile:
        options = webdriver.ChromeOptions()
        if os.path.exists(CHROMIUM):
            options.binary_location = CHROMIUM
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        options.add_argument(f"--window-size={width},{height}")
        driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
        try:
            yield driver
        finally:
            driver.quit()


class PlaygroundProcess:
    """``python -m bot.playground`` in a child process; ``url`` is the one line it prints."""

    def __init__(self, args: Sequence[str] = (), *, cwd: Path | None = None, log: Path | None = None) -> None:
        self.args = list(args)
        self.cwd = cwd
        self.log = log
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self, timeout: float = START_TIMEOUT) -> str:
        root = Path(__file__).resolve().parents[2]
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(root)}  # no tokens, no ENV_FILE
        stderr = self.log.open("w") if self.log is not None else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot.playground", "--port", "0", *self.args],
                cwd=self.cwd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        finally:
            if self.log is not None:
                stderr.close()  # type: ignore[union-attr]
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout)  # the URL line, or the end of output if it stopped
        line = self.proc.stdout.readline().strip() if ready else ""
        if not line.startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"the playground did not print its URL within {timeout:.0f} s (got {line!r})")
        self.url = line
        return line

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, as Ctrl+C or a service manager would; the exit code, or None if it hung."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode

    def __enter__(self) -> PlaygroundProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PlaygroundPage:
    """The playground's page in a browser, driven as a person would: every step waits explicitly
    (``WebDriverWait``) for what the page shows next."""

    def __init__(self, driver: webdriver.Chrome, timeout: float = 30.0) -> None:
        self.driver = driver
        self.timeout = timeout

    def wait(self, what: str, condition: Callable[[webdriver.Chrome], T | bool | None]) -> T:
        waiting = WebDriverWait(
            self.driver, self.timeout, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
        )
        found = waiting.until(condition, message=f"waiting for {what}")
        return found  # type: ignore[return-value]

    def open(self, url: str) -> None:
        self.driver.get(url)
        self.wait("the live view", lambda d: "live" in d.find_element(By.ID, "live").text)

    def member_button(self, name: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, f'#members button[data-name="{name}"]')

    def act_as(self, name: str) -> None:
        """Switch to member ``name`` and wait until the page shows that member's view."""
        self.click(f"the button of {name}", f'#members button[data-name="{name}"]')
        self.wait(f"the view of {name}", lambda d: "active" in (self.member_button(name).get_attribute("class") or ""))

    def run(self, command: str, **options: str) -> None:
        """Type ``/command``, pick it in the menu, fill in the options and send."""
        box = self.driver.find_element(By.ID, "chatbox")
        box.clear()
        box.send_keys(f"/{command}")
        self.wait(f"/{command} in the menu", lambda d: d.find_elements(By.CSS_SELECTOR, f'[data-command="{command}"]'))
        box.send_keys(Keys.ENTER)
        for option, value in options.items():
            field = self.driver.find_element(By.CSS_SELECTOR, f'[data-option="{option}"]')
            if field.tag_name == "select":
                Select(field).select_by_value(value)
            else:
                field.send_keys(value)
        self.driver.find_element(By.ID, "send").click()
        self.wait(
            f"/{command} to be sent",
            lambda d: (
                d.find_element(By.ID, "chatbox").get_attribute("value") == ""
                or d.find_element(By.ID, "notice").is_displayed()
            ),
        )
        notice = self.driver.find_element(By.ID, "notice")
        if notice.is_displayed():
            raise AssertionError(f"/{command} was not sent: {notice.text}")

    def texts(self) -> dict[str, str]:
        """Each message's id and visible text, oldest first, read in one go (the page re-renders a
        message whenever it changes, so element handles would go stale between two reads)."""
        script = (
            "return [...document.querySelectorAll('#messages article.message')]"
            ".map((m) => [m.dataset.messageId, m.innerText]);"
        )
        pairs = self.driver.execute_script(script)
        return {str(message_id): str(text) for message_id, text in pairs}

    def message_with(self, text: str) -> str | None:
        """The id of the newest message showing ``text``, if any."""
        return next((mid for mid, shown in reversed(self.texts().items()) if text in shown), None)

    def message_text(self, message_id: str) -> str:
        return self.texts().get(message_id, "")

    def click(self, what: str, css: str) -> None:
        """Click the element ``css`` as soon as it is there (a fresh handle each try)."""

        def clicked(driver: webdriver.Chrome) -> bool:
            driver.find_element(By.CSS_SELECTOR, css).click()
            return True

        self.wait(what, clicked)

    def image_loaded(self, message_id: str) -> bool:
        """Whether the message shows an image and the browser has finished loading it."""
        script = (
            "const img = document.querySelector(`article[data-message-id='${arguments[0]}'] .e-image img`);"
            "return !!img && img.complete && img.naturalWidth > 0;"
        )
        return bool(self.driver.execute_script(script, message_id))
