"""Regenerate docs/playground.png: the playground's page with a finished /imagine reply.

    python scripts/playground-screenshot.py [--out docs/playground.png]

Starts ``python -m bot.playground`` and opens it in headless Chromium exactly as the playground's
test does (Debian's ``chromium`` and ``chromium-driver``; ``fonts-noto-color-emoji`` draws the
emoji), runs /imagine as a member, waits until the image has loaded and saves a screenshot.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.devtools.browser import PlaygroundPage, PlaygroundProcess, headless_chromium  # noqa: E402

PROMPT = "a lighthouse on a cliff at dusk, oil painting"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "playground.png")
    args = parser.parse_args()
    with (
        PlaygroundProcess(["--job-duration", "1", "--queue-depth", "0"]) as playground,
        headless_chromium(width=1280, height=900) as driver,
    ):
        page = PlaygroundPage(driver)
        page.open(playground.url)
        page.act_as("Alice")
        page.run("imagine", prompt=PROMPT, aspect_ratio="3:2")
        reply = page.wait("the reply", lambda d: page.message_with(PROMPT))
        page.wait("the image", lambda d: page.image_loaded(reply))
        page.wait("the buttons under it", lambda d: "Re-roll" in page.message_text(reply))
        driver.execute_script("document.getElementById('chatbox').blur()")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(args.out))
    print(f"wrote {args.out}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
