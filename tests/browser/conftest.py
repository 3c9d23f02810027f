"""Browser tests: headless Chromium (Debian's `chromium` package, installed by
`make browser-test`) driven by Playwright, against the real stack.

They are marked `browser` and left out of `make test` (which must run on a machine
with only Python, make and PostgreSQL); `make browser-test` runs them. Each test can
save screenshots with the `screenshot` fixture: they land in
`.test-output/browser/<test name>/` (BROWSER_TEST_OUTPUT moves it).
"""

import os
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from scripts.services import ROOT

# The flags a locked-down, offline machine needs: no sandbox as root, no GPU, and no
# background connections to Google's services (refused here, and slow to fail).
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUTPUT = Path(os.environ.get("BROWSER_TEST_OUTPUT") or ROOT / ".test-output" / "browser")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    browser_dir = Path(__file__).parent
    for item in items:
        if browser_dir in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.browser)


def chromium_executable() -> str:
    """Debian's Chromium (CHROMIUM=/path overrides); Playwright's own download is not
    used: it needs a CDN this project cannot rely on."""
    path = (
        os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if not path:
        pytest.fail("Chromium is not installed: run `make browser-test` (it installs it)")
    return path


# Playwright's async API, on the suite's one event loop (pytest-asyncio, session scope):
# its sync API runs a loop of its own in the main thread, which the suite's other
# session fixtures (PostgreSQL, the stack) cannot share.
@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_executable(), args=CHROMIUM_ARGS
        )
        yield browser
        await browser.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    yield page
    await context.close()


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[[Page, str], Awaitable[Path]]:
    """`await screenshot(page, "overview")` saves the whole page as a PNG; returns its path."""
    folder = OUTPUT / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)

    async def take(page: Page, name: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        return path

    return take
