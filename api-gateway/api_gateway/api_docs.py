"""One OpenAPI document for the whole public API: `/openapi.json`, shown by Swagger UI at
`/docs` and ReDoc at `/redoc`.

It is made from the services' own documents (each keeps its `/docs`), fetched when the
gateway's document is asked for and kept for API_DOCS_CACHE_SECONDS: a service deployed
anew shows its new routes within that time, and no service has to be up for the gateway
to start. A service that does not answer leaves its last document in place (or, before a
first one, its routes out, said in the document's description) and is asked again a few
seconds later: the docs never fail because a service is down.

How the services' documents become one is openapi_merge.py.
"""

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.staticfiles import StaticFiles

from api_gateway.openapi_merge import merge_documents
from shared.http_client import ServiceClient

logger = logging.getLogger(__name__)

OPENAPI_PATH = "/openapi.json"
DOCS_PAGES = ("/docs", "/redoc")
# Swagger UI's and ReDoc's scripts, styles and favicon, served by the gateway from the
# fastapi-offline package (no CDN: the docs work on a machine without internet).
DOCS_ASSETS_PATH = "/docs/assets"
# A service that did not answer is asked again after this long (seconds), not at once.
RETRY_AFTER_FAILURE = 5.0
FETCH_TIMEOUT = 3.0
Fetch = Callable[[str], Awaitable[dict[str, Any]]]


class ApiDocs:
    """The services' documents, each kept `ttl` seconds after it was fetched."""

    def __init__(self, service_urls: Mapping[str, str], fetch: Fetch, ttl: float) -> None:
        self._urls = dict(service_urls)
        self._fetch = fetch
        self._ttl = ttl
        # service -> (when it was fetched, its document); a failure leaves the last one.
        self._documents: dict[str, tuple[float, dict[str, Any]]] = {}
        self._next_attempt: dict[str, float] = {}
        self._lock = asyncio.Lock()

    async def document(self) -> dict[str, Any]:
        async with self._lock:  # one refresh at a time, whatever the number of readers
            now = time.monotonic()
            due = [
                name
                for name in self._urls
                if now >= self._next_attempt.get(name, 0.0)
                and (name not in self._documents or now - self._documents[name][0] >= self._ttl)
            ]
            if due:
                await asyncio.gather(*(self._refresh(name) for name in due))
        return merge_documents({name: doc for name, (_, doc) in self._documents.items()})

    async def _refresh(self, name: str) -> None:
        url = self._urls[name].rstrip("/") + OPENAPI_PATH
        try:
            document = await self._fetch(url)
            if not isinstance(document.get("paths"), dict):
                raise ValueError("not an OpenAPI document")
        except Exception as exc:  # any failure: the docs go on without it (or with the last)
            logger.warning(
                "api docs: a service's document is unavailable",
                extra={"upstream": name, "reason": f"{type(exc).__name__}: {exc}"[:300]},
            )
            self._next_attempt[name] = time.monotonic() + RETRY_AFTER_FAILURE
            return
        self._documents[name] = (time.monotonic(), document)
        self._next_attempt.pop(name, None)


def http_fetch(client: ServiceClient) -> Fetch:
    """Fetches with the gateway's service client (no internal token: the documents are
    public on each service)."""

    async def fetch(url: str) -> dict[str, Any]:
        response = await client.request("GET", url, internal=False, timeout=FETCH_TIMEOUT)
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document

    return fetch


def docs_assets_directory() -> str:
    return str(files("fastapi_offline") / "static")


def docs_content_security_policy(nonce: str) -> str:
    """The docs pages' CSP: everything from the gateway itself, the one inline script of
    Swagger UI's page by its nonce; inline styles (both UIs set them) and a blob: worker
    (ReDoc's search) allowed."""
    return (
        "default-src 'self';base-uri 'self';object-src 'none';frame-ancestors 'self';"
        f"form-action 'self';script-src 'self' 'nonce-{nonce}';script-src-attr 'none';"
        "style-src 'self' 'unsafe-inline';img-src 'self' data:;font-src 'self' data:;"
        "connect-src 'self';worker-src 'self' blob:"
    )


def _with_nonce(page: HTMLResponse) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    html = bytes(page.body).decode().replace("<script>", f'<script nonce="{nonce}">')
    return HTMLResponse(
        html, headers={"Content-Security-Policy": docs_content_security_policy(nonce)}
    )


def install(
    app: FastAPI, docs_of: Callable[[Request], ApiDocs], title: str = "E-commerce API"
) -> None:
    """Replaces the gateway's own (empty) document and docs pages with the merged ones;
    `docs_of` gives the gateway's ApiDocs (its state's)."""
    replaced = {OPENAPI_PATH, "/docs", "/docs/oauth2-redirect", "/redoc"}
    app.router.routes[:] = [
        route for route in app.router.routes if getattr(route, "path", None) not in replaced
    ]

    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(await docs_of(request).document())

    async def swagger_ui(request: Request) -> HTMLResponse:
        return _with_nonce(
            get_swagger_ui_html(
                openapi_url=OPENAPI_PATH,
                title=f"{title} - Swagger UI",
                swagger_js_url=f"{DOCS_ASSETS_PATH}/swagger-ui-bundle.js",
                swagger_css_url=f"{DOCS_ASSETS_PATH}/swagger-ui.css",
                swagger_favicon_url=f"{DOCS_ASSETS_PATH}/favicon.png",
                # No validator badge: it would send the document to validator.swagger.io.
                swagger_ui_parameters={"persistAuthorization": True, "validatorUrl": None},
            )
        )

    async def redoc(request: Request) -> HTMLResponse:
        return _with_nonce(
            get_redoc_html(
                openapi_url=OPENAPI_PATH,
                title=f"{title} - ReDoc",
                redoc_js_url=f"{DOCS_ASSETS_PATH}/redoc.standalone.js",
                redoc_favicon_url=f"{DOCS_ASSETS_PATH}/favicon.png",
                with_google_fonts=False,
            )
        )

    app.add_api_route(OPENAPI_PATH, openapi, methods=["GET"], include_in_schema=False)
    app.add_api_route("/docs", swagger_ui, methods=["GET"], include_in_schema=False)
    app.add_api_route("/redoc", redoc, methods=["GET"], include_in_schema=False)
    app.mount(DOCS_ASSETS_PATH, StaticFiles(directory=docs_assets_directory()), name="docs-assets")
