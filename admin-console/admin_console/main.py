"""The console's app factory (`uvicorn --factory admin_console.main:create_app`).

Pages under /admin (the gateway forwards /admin/... here unchanged), its assets under
/admin/static, and /health, /ready, /metrics as every service has them."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response

from admin_console import order_routes, product_routes, routes
from admin_console.config import ConsoleSettings, get_settings
from admin_console.exceptions import ApiError, CsrfRefused, SignInRequired
from admin_console.gateway_client import SERVICE_NAME
from admin_console.security_headers import ConsoleSecurityHeaders
from admin_console.session import (
    BASE,
    end_session,
    sign_in_url,
)
from admin_console.state import ConsoleState, console_settings, console_state
from admin_console.templating import render
from shared.errors import add_error_handler
from shared.http_client import ServiceClient
from shared.logging import configure_logging
from shared.metrics import metrics_router
from shared.request_context import RequestContextMiddleware, current_request_id

logger = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
QUIET_PATHS = frozenset({"/health", "/ready", "/metrics"})


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


async def _sign_in_required(request: Request, exc: SignInRequired) -> Response:
    url = sign_in_url(exc.next_path, exc.reason)
    if _is_htmx(request):
        # htmx would swap the sign-in page into the middle of this one: load it whole.
        response: Response = Response(status_code=204, headers={"HX-Redirect": url})
    else:
        response = RedirectResponse(url, status_code=303)
    if exc.reason:
        end_session(response, console_settings(request))
    return response


async def _csrf_refused(request: Request, exc: CsrfRefused) -> Response:
    return render(
        request,
        "error.html",
        {
            "title": "Form refused",
            "message": "This form did not come from a page of the console, or it has "
            "expired. Go back, reload the page and send it again.",
        },
        status_code=403,
    )


async def _api_error(request: Request, exc: ApiError) -> Response:
    return render(
        request,
        "error.html",
        {"title": "The shop's API refused", "message": exc.message},
        status_code=exc.status if 400 <= exc.status < 600 else 502,
    )


async def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
    """A path that names nothing (an id that is no id) is a page that does not exist; a
    form field out of bounds is said."""
    errors = exc.errors()
    if any(error.get("loc", ("",))[0] == "path" for error in errors):
        return await _http_error(request, StarletteHTTPException(404))
    fields = ", ".join(str(error.get("loc", ("", "?"))[-1]) for error in errors)
    return render(
        request,
        "error.html",
        {"title": "Form refused", "message": f"These fields are not as expected: {fields}."},
        status_code=400,
    )


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    if exc.status_code == 404:
        title, message = "Not found", "There is no such page in the console."
    elif exc.status_code == 405:
        title, message = "Not allowed", "This page cannot be used that way."
    else:
        title, message = "Refused", str(exc.detail)
    return render(
        request, "error.html", {"title": title, "message": message}, status_code=exc.status_code
    )


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error", exc_info=exc)
    request_id = current_request_id() or ""
    return render(
        request,
        "error.html",
        {
            "title": "Something went wrong",
            "message": "The console could not show this page. Try again; if it happens "
            f"again, give this reference to whoever runs the shop: {request_id}.",
        },
        status_code=500,
        headers={"X-Request-ID": request_id},
    )


def create_app(
    settings: ConsoleSettings | None = None, api_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """`api_transport`: how the API is reached (tests give a fake of the gateway)."""
    settings = settings or get_settings()
    configure_logging("console", settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = ConsoleState(
            settings=settings,
            gateway=ServiceClient(
                service=SERVICE_NAME,
                private_key=settings.internal_private_key,
                audiences={settings.gateway_url: "gateway"},
                timeout=settings.api_timeout,
                transport=api_transport,
            ),
        )
        app.state.service = state  # shared.state's one object (docs/architecture.md)
        try:
            yield
        finally:
            await state.gateway.aclose()

    app = FastAPI(
        title="Admin console", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.add_middleware(ConsoleSecurityHeaders)
    app.add_middleware(RequestContextMiddleware, quiet_paths=QUIET_PATHS)
    add_error_handler(app, SignInRequired, _sign_in_required)
    add_error_handler(app, CsrfRefused, _csrf_refused)
    add_error_handler(app, ApiError, _api_error)
    add_error_handler(app, RequestValidationError, _invalid_request)
    add_error_handler(app, StarletteHTTPException, _http_error)
    add_error_handler(app, Exception, _unexpected_error)
    app.include_router(routes.probes)
    app.include_router(metrics_router(console_state))
    app.mount(f"{BASE}/static", StaticFiles(directory=STATIC), name="static")
    for pages in (routes, order_routes, product_routes):
        app.include_router(pages.router)
        app.include_router(pages.forms)
    return app
