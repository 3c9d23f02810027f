"""The gateway's /docs (Swagger UI) and /redoc (ReDoc) in a real browser, with no route
to the internet: every script, style and font comes from the gateway (the assets of the
fastapi-offline package), the strict Content-Security-Policy lets them run, every tag's
operations are shown, and a call made from the page gets its answer."""

from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Page, Request, Route

PAGE_TIMEOUT_MS = 30_000
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


class Offline:
    """Lets the page reach only the gateway; records what it tried elsewhere and every
    console error (a CSP refusal is one)."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.refused: list[str] = []
        self.console_errors: list[str] = []

    async def attach(self, page: Page) -> None:
        await page.route("**/*", self._route)
        page.on(
            "console",
            lambda message: (
                self.console_errors.append(message.text) if message.type == "error" else None
            ),
        )
        page.on("pageerror", lambda error: self.console_errors.append(str(error)))

    async def _route(self, route: Route, request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("data", "blob") or f"{parts.scheme}://{parts.netloc}" == self.origin:
            await route.continue_()
        else:
            self.refused.append(request.url)
            await route.abort()


@pytest.fixture
def document(stack) -> dict:
    with httpx.Client(base_url=stack.gateway, timeout=30) as client:
        response = client.get("/openapi.json")
        assert response.status_code == 200
        return response.json()


def operations_by_tag(document: dict) -> dict[str, int]:
    counts: dict[str, int] = {}
    for methods in document["paths"].values():
        for operation in methods.values():
            for tag in operation.get("tags", []):
                counts[tag] = counts.get(tag, 0) + 1
    return counts


async def test_swagger_ui_shows_every_tag_and_runs_a_call_offline(
    stack, page: Page, screenshot, document
):
    offline = Offline(stack.gateway)
    await offline.attach(page)
    await page.goto(f"{stack.gateway}/docs", wait_until="networkidle")
    await page.locator(".opblock-tag").first.wait_for(timeout=PAGE_TIMEOUT_MS)

    expected = operations_by_tag(document)
    assert {"Auth", "Products", "Cart", "Orders", "Payments"} <= set(expected)
    for tag, count in expected.items():
        section = page.locator(f'.opblock-tag-section:has(h3[data-tag="{tag}"])')
        await section.first.wait_for(timeout=PAGE_TIMEOUT_MS)
        assert await section.locator(".opblock").count() == count, tag
    await screenshot(page, "swagger-ui")

    # Try it out: GET /api/products, executed from the page against the gateway.
    operation = page.locator(".opblock-get:has([data-path='/api/products'])").first
    await operation.locator(".opblock-summary").click()
    await operation.locator(".try-out__btn").click()
    await operation.locator(".execute").click()
    status = operation.locator(".live-responses-table tr.response .response-col_status").first
    await status.wait_for(timeout=PAGE_TIMEOUT_MS)
    assert (await status.inner_text()).strip() == "200"
    body = await operation.locator(".live-responses-table .microlight").first.inner_text()
    assert '"products"' in body
    await screenshot(page, "swagger-ui-executed")

    assert offline.refused == []
    assert offline.console_errors == []


async def test_redoc_renders_the_document_offline(stack, page: Page, screenshot, document):
    offline = Offline(stack.gateway)
    await offline.attach(page)
    await page.goto(f"{stack.gateway}/redoc", wait_until="networkidle")
    title = page.locator(".api-info h1").first
    await title.wait_for(timeout=PAGE_TIMEOUT_MS)
    assert document["info"]["title"] in await title.inner_text()
    for tag in operations_by_tag(document):
        menu_item = page.locator(f'[role="menuitem"]:has-text("{tag}")').first
        assert await menu_item.count() == 1, tag
    await screenshot(page, "redoc")
    assert offline.refused == []
    # ReDoc's bundle names one address of its own: the Redocly logo of its side menu,
    # which it hides when it does not load. The policy keeps it from even being asked.
    unexpected = [
        error
        for error in offline.console_errors
        if not (REDOCLY_LOGO in error and "Content Security Policy" in error)
    ]
    assert unexpected == []
