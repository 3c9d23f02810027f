"""Rendering a page: the Jinja2 templates, with what every page needs (the CSRF token, the
formats of money and time, who is signed in, the navigation)."""

from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import Response

from admin_console.formatting import Formats, label
from admin_console.session import (
    BASE,
    CSRF_COOKIE,
    SESSION_COOKIE,
    csrf_token,
    set_csrf_cookie,
    token_claims,
)
from admin_console.state import console_settings

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.filters["label"] = label
templates.env.globals["BASE"] = BASE
# Cache-busting names for the assets (a new htmx is a new file name).
templates.env.globals["HTMX"] = "htmx-2.0.11.min.js"

NAVIGATION = (
    ("overview", "Overview", f"{BASE}/"),
    ("orders", "Orders", f"{BASE}/orders"),
    ("products", "Products", f"{BASE}/products"),
    ("payments", "Payments", f"{BASE}/payments"),
    ("reconciliation", "Reconciliation", f"{BASE}/reconciliation"),
    ("users", "Users", f"{BASE}/users"),
)


def signed_in_email(request: Request) -> str | None:
    """Who is signed in, from the session token (display only)."""
    token = request.cookies.get(SESSION_COOKIE)
    email = token_claims(token).get("email") if token else None
    return str(email) if email else None


def formats(request: Request) -> Formats:
    settings = console_settings(request)
    return Formats(
        locale=settings.shop_locale, zone=settings.zone, currency=settings.store_currency
    )


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    settings = console_settings(request)
    token = csrf_token(request)
    page = {
        "request": request,
        "csrf_token": token,
        "fmt": formats(request),
        "settings": settings,
        "signed_in_as": signed_in_email(request),
        "navigation": NAVIGATION,
        "section": None,
        **(context or {}),
    }
    response = templates.TemplateResponse(
        request, name, page, status_code=status_code, headers=headers
    )
    if request.cookies.get(CSRF_COOKIE) != token:
        set_csrf_cookie(response, token, settings)
    return response
