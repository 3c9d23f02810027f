"""HTTP in, HTTP out: the console's pages (GET) and forms (POST, each checked for its CSRF
token). What a page shows comes from views.py; the API's refusals are shown on the page
they came from, with the API's message, and the status the API gave.

Here: the probes, signing in and out, the overview and the users; the orders, payments
and reconciliation pages are in order_routes.py, the catalogue's in product_routes.py.
Each module has its `router` (pages) and `forms` (POSTs, CSRF-checked); main.py includes
them all."""

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl

import httpx
from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from admin_console import views
from admin_console.dependencies import AnonymousApi, Api
from admin_console.exceptions import ApiError
from admin_console.navigation import notice, query, refused_status, see
from admin_console.session import (
    BASE,
    SIGN_IN_REASONS,
    end_session,
    safe_next,
    sign_in_url,
    start_session,
    verify_csrf,
)
from admin_console.state import console_settings, console_state
from admin_console.templating import formats, render

router = APIRouter(prefix=BASE)
forms = APIRouter(prefix=BASE, dependencies=[Depends(verify_csrf)])
probes = APIRouter(tags=["health"])
TITLE = "Admin Console"


@probes.get("/health")
async def health() -> dict[str, str]:
    """Liveness, the services' body."""
    return {
        "status": "OK",
        "service": TITLE,
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }


@probes.get("/ready")
async def ready(request: Request) -> JSONResponse:
    """Ready when the API it is made of answers (the gateway's /health)."""
    try:
        answer = await console_state(request).gateway.request(
            "GET", console_settings(request).gateway_url.rstrip("/") + "/health", internal=False
        )
        up = answer.status_code == 200
    except httpx.HTTPError:
        up = False
    if up:
        return JSONResponse({"status": "ready", "service": TITLE})
    return JSONResponse(
        {"status": "unavailable", "service": TITLE, "error": "API gateway unavailable"},
        status_code=503,
    )


# --- Sign-in ----------------------------------------------------------------------------


@router.get("/login")
async def sign_in_page(request: Request) -> Response:
    return render(
        request,
        "login.html",
        {
            "next": safe_next(request.query_params.get("next")),
            "reason": SIGN_IN_REASONS.get(request.query_params.get("reason", "")),
        },
    )


@forms.post("/login")
async def sign_in(
    request: Request,
    api: AnonymousApi,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next_path: Annotated[str, Form(alias="next", max_length=2000)] = "",
) -> Response:
    context: dict[str, Any] = {"email": email, "next": safe_next(next_path)}
    try:
        body = await api.post("/api/auth/login", {"email": email, "password": password})
    except ApiError as error:
        context["error"] = error.message
        context["field_errors"] = error.field_errors()
        headers = {}
        if error.status == 429:
            wait = error.retry_after or "60"
            context["error"] = f"Too many sign-in attempts. Try again in {wait} seconds."
            headers["Retry-After"] = wait
        return render(
            request, "login.html", context, status_code=refused_status(error), headers=headers
        )
    if body.get("user", {}).get("role") != "admin":
        context["error"] = (
            "This is a customer account. Only the shop's admins can sign in to the console."
        )
        return render(request, "login.html", context, status_code=403)
    response = see(context["next"])
    start_session(response, body["token"], console_settings(request))
    return response


@forms.post("/logout")
async def sign_out(request: Request) -> Response:
    response = RedirectResponse(sign_in_url(reason="signed-out"), status_code=303)
    end_session(response, console_settings(request))
    return response


# --- Overview ---------------------------------------------------------------------------


@router.get("/")
async def overview(request: Request, api: Api) -> Response:
    settings = console_settings(request)
    context = await views.overview(
        api, zone=settings.zone, low_stock=settings.low_stock_threshold, fmt=formats(request)
    )
    return render(request, "overview.html", {"section": "overview", **context})


@router.get("")
async def overview_without_slash() -> Response:
    return RedirectResponse(f"{BASE}/", status_code=307)


# --- Users ------------------------------------------------------------------------------

USER_CHANGES = {
    "promote": {"role": "admin"},
    "demote": {"role": "customer"},
    "deactivate": {"isActive": False},
    "activate": {"isActive": True},
}


async def _users(request: Request, api: Api, *, params: dict[str, str], **extra: Any) -> Response:
    status_code = extra.pop("status_code", 200)
    body = await api.get(
        "/api/auth/admin/users",
        search=(params.get("search") or "").strip()[:200],
        role=params.get("role") if params.get("role") in ("admin", "customer") else None,
        page=views.page_number(params.get("page")),
        limit=views.PAGE_SIZE,
    )
    return render(
        request,
        "users.html",
        {
            "section": "users",
            "query": params,
            "users": body["users"],
            "total": body["totalUsers"],
            "page": body["currentPage"],
            "pages": body["totalPages"],
            "links": views.page_links(body["currentPage"], body["totalPages"]),
            "notice": notice(request),
            **extra,
        },
        status_code=status_code,
    )


@router.get("/users")
async def users(request: Request, api: Api) -> Response:
    return await _users(request, api, params=query(request))


@forms.post("/users/{user_id}")
async def change_user(
    request: Request,
    api: Api,
    user_id: uuid.UUID,
    change: Annotated[str, Form(max_length=20)],
    back: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    # Back to the list as it was (search, role, page), whatever happens.
    params = {k: v for k, v in parse_qsl(back) if k in ("search", "role", "page")}
    if change not in USER_CHANGES:
        return await _users(request, api, params=params, error="Unknown change.", status_code=400)
    try:
        await api.put(f"/api/auth/admin/users/{user_id}", USER_CHANGES[change])
    except ApiError as error:
        return await _users(
            request, api, params=params, error=error.message, status_code=refused_status(error)
        )
    return see(f"{BASE}/users", "user", **params)
