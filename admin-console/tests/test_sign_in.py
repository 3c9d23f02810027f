"""Signing in and out: admins only, the session cookie's flags, the page remembered, the
login rate limit's answer, and an ended session back to sign-in."""

from urllib.parse import unquote

import httpx
import pytest

from admin_console.config import ConsoleSettings
from admin_console.session import safe_next
from shared.keys import load_public_key_map
from shared.tokens import decode_internal_token

from .conftest import BROWSER_IP, csrf_of, token_for

ADMIN_LOGIN = {
    "message": "Login successful",
    "token": token_for(),
    "user": {"id": "u-1", "email": "admin@example.com", "role": "admin"},
}


async def login(console, **form):
    page = await console.get("/admin/login")
    return await console.post(
        "/admin/login",
        data={"csrf_token": csrf_of(page.text), "email": "admin@example.com", **form},
    )


async def test_a_page_without_a_session_sends_to_sign_in_remembering_it(console):
    response = await console.get("/admin/orders?status=paid&page=2")
    assert response.status_code == 303
    assert unquote(response.headers["location"]) == (
        "/admin/login?next=/admin/orders?status=paid&page=2"
    )
    # htmx asks for a part of a page: it is told to load the sign-in page whole.
    partial = await console.get("/admin/orders", headers={"HX-Request": "true"})
    assert partial.headers["HX-Redirect"] == "/admin/login?next=/admin/orders"


async def test_an_admin_signs_in_to_the_page_asked_for(console, fake_gateway, keys):
    fake_gateway.answer("POST", "/api/auth/login", ADMIN_LOGIN)
    response = await login(console, password="secret-password", next="/admin/payments?x=1")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/payments?x=1"
    session = next(
        header
        for header in response.headers.get_list("set-cookie")
        if header.startswith("admin_session=")
    )
    assert "HttpOnly" in session and "SameSite=strict" in session and "Path=/admin" in session
    assert "Secure" not in session  # development: http://localhost
    # The person's address and the console's word for it go to the gateway.
    call = fake_gateway.last("/api/auth/login")
    assert call.headers["X-Forwarded-For"] == BROWSER_IP
    # Signed with the console's own key, for the gateway.
    caller = decode_internal_token(
        call.headers["X-Internal-Token"],
        audience="gateway",
        public_keys=load_public_key_map(keys.internal_public_keys()),
    )
    assert caller == "admin-console"


def test_the_console_does_not_start_without_its_own_key():
    with pytest.raises(ValueError, match="INTERNAL_PRIVATE_KEY"):
        ConsoleSettings(_env_file=None, ENVIRONMENT="production")


async def test_outside_development_the_cookies_are_secure(make_console, fake_gateway):
    console = await make_console(ENVIRONMENT="production")
    fake_gateway.answer("POST", "/api/auth/login", ADMIN_LOGIN)
    response = await login(console, password="secret-password")
    cookies = response.headers.get_list("set-cookie")
    assert cookies and all("Secure" in cookie for cookie in cookies)


async def test_a_customer_is_refused_with_a_clear_message(console, fake_gateway):
    fake_gateway.answer(
        "POST",
        "/api/auth/login",
        {**ADMIN_LOGIN, "user": {"id": "u-2", "email": "c@example.com", "role": "customer"}},
    )
    response = await login(console, password="password123")
    assert response.status_code == 403
    assert "Only the shop&#39;s admins can sign in" in response.text
    assert "admin_session" not in response.headers.get("set-cookie", "")


@pytest.mark.parametrize(
    ("status", "body", "shown"),
    [
        (401, {"error": "Invalid credentials"}, "Invalid credentials"),
        (403, {"error": "Account is deactivated"}, "Account is deactivated"),
        (
            400,
            {"error": "Validation error", "details": [{"field": "email", "message": "bad"}]},
            'id="email-error">bad<',
        ),
    ],
)
async def test_the_apis_refusals_are_shown(console, fake_gateway, status, body, shown):
    fake_gateway.answer("POST", "/api/auth/login", (status, body))
    response = await login(console, password="x")
    assert response.status_code == status
    assert shown in response.text


async def test_too_many_attempts_say_how_long_to_wait(console, fake_gateway):
    fake_gateway.answer(
        "POST",
        "/api/auth/login",
        (429, {"error": "Too many requests, please try again later."}, {"Retry-After": "42"}),
    )
    response = await login(console, password="x")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "42"
    assert "Too many sign-in attempts. Try again in 42 seconds." in response.text


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("/admin/orders?status=paid", "/admin/orders?status=paid"),
        ("//evil.example/admin/", "/admin/"),
        ("https://evil.example/admin/", "/admin/"),
        ("/admin\\@evil.example", "/admin/"),
        ("/elsewhere", "/admin/"),
        ("", "/admin/"),
    ],
)
def test_after_sign_in_only_a_page_of_the_console(given, kept):
    assert safe_next(given) == kept


async def test_an_ended_token_returns_to_sign_in_with_the_page(console, fake_gateway):
    console.cookies.set("admin_session", token_for(), domain="console.test", path="/admin")
    fake_gateway.answer("GET", "/api/payments/admin/payments", (401, {"error": "Token expired"}))
    response = await console.get("/admin/payments?provider=mpesa")
    assert response.status_code == 303
    assert unquote(response.headers["location"]) == (
        "/admin/login?next=/admin/payments?provider=mpesa&reason=expired"
    )
    assert 'admin_session=""' in response.headers["set-cookie"]


async def test_a_demoted_admin_is_signed_out(console, fake_gateway):
    console.cookies.set("admin_session", token_for(), domain="console.test", path="/admin")
    fake_gateway.answer(
        "GET", "/api/auth/admin/users", (403, {"error": "Access denied. Admin only."})
    )
    response = await console.get("/admin/users")
    assert "reason=not-admin" in response.headers["location"]
    page = await console.get(response.headers["location"])
    assert "This account no longer has admin rights." in page.text


async def test_sign_out_ends_the_session(signed_in):
    console, csrf = signed_in
    response = await console.post("/admin/logout", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login?reason=signed-out"
    assert any(
        header.startswith('admin_session=""') for header in response.headers.get_list("set-cookie")
    )


async def test_the_api_down_is_a_readable_page(console, fake_gateway):
    fake_gateway.answer("POST", "/api/auth/login", httpx.ConnectError("refused"))
    response = await login(console, password="x")
    assert response.status_code == 503
    assert "The shop&#39;s API does not answer. Try again shortly." in response.text
    assert "Traceback" not in response.text
