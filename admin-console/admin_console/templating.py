"""Rendering a page: the Jinja2 templates, with what every page needs (the CSRF token, the
formats of money and time, who is signed in, the navigation)."""

import base64
import json
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
    """The email in the session token, to say who is signed in (display only: the API
    checks the token itself on every call)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims.get("email") or "") or None
    except (IndexError, ValueError, TypeError, AttributeError):
        return None


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
