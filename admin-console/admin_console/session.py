"""Who is signed in, and the forms' CSRF tokens.

The session is the admin's API token in an `HttpOnly`, `SameSite=Strict` cookie (`Secure`
outside development), scoped to /admin: no script can read it and no other site can make
the browser send it. Forms carry a CSRF token as well (double submit: a random value in a
cookie of its own and in each form, compared on every POST), renewed at sign-in and
sign-out."""

import base64
import hmac
import json
import secrets
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from starlette.responses import Response

from admin_console.config import ConsoleSettings
from admin_console.exceptions import CsrfRefused, SignInRequired

BASE = "/admin"
SESSION_COOKIE = "admin_session"
CSRF_COOKIE = "admin_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


SIGN_IN_REASONS = {
    "expired": "Your session has ended. Sign in again to carry on.",
    "signed-out": "You are signed out.",
    "not-admin": "This account no longer has admin rights.",
}


def current_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path of the console, never another site."""
    if not value or not value.startswith(BASE + "/") or value.startswith("//"):
        return BASE + "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or "\\" in value:
        return BASE + "/"
    return value


def sign_in_url(next_path: str | None = None, reason: str | None = None) -> str:
    url = f"{BASE}/login"
    query = []
    if next_path and safe_next(next_path) != BASE + "/":
        query.append("next=" + quote(next_path, safe="/"))
    if reason:
        query.append(f"reason={reason}")
    return url + ("?" + "&".join(query) if query else "")


async def session_token(request: Request) -> str:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInRequired(current_path(request))
    return token


SessionToken = Annotated[str, Depends(session_token)]


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, read without checking it: only to show who is signed in and to
    end the cookie when the token ends (the API checks the token on every call)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, TypeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def token_expiry(token: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(token_claims(token)["exp"]), UTC)
    except (KeyError, ValueError, TypeError, OverflowError):
        return None


def start_session(response: Response, token: str, settings: ConsoleSettings) -> None:
    expires = token_expiry(token)
    max_age = int((expires - datetime.now(UTC)).total_seconds()) if expires else None
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path=BASE,
        httponly=True,
        secure=settings.secure_cookies,
        samesite="strict",
    )
    set_csrf_cookie(response, new_csrf_token(), settings)


def end_session(response: Response, settings: ConsoleSettings) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path=BASE, httponly=True, secure=settings.secure_cookies, samesite="strict"
    )
    set_csrf_cookie(response, new_csrf_token(), settings)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def set_csrf_cookie(response: Response, token: str, settings: ConsoleSettings) -> None:
    response.set_cookie(
        CSRF_COOKIE,
        token,
        path=BASE,
        httponly=True,
        secure=settings.secure_cookies,
        samesite="strict",
    )


def csrf_token(request: Request) -> str:
    """The token the page's forms carry: the cookie's, or a new one (render() sets it)."""
    token = getattr(request.state, "csrf_token", None)
    if token is None:
        token = request.cookies.get(CSRF_COOKIE) or new_csrf_token()
        request.state.csrf_token = token
    return token


async def verify_csrf(request: Request) -> None:
    """Every POST: the form's (or htmx's header's) token must be the cookie's."""
    expected = request.cookies.get(CSRF_COOKIE)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(expected, sent):
        raise CsrfRefused()
