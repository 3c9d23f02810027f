"""HTTP in, HTTP out: the console's pages (GET) and forms (POST, each checked for its CSRF
token). What a page shows comes from views.py; the API's refusals are shown on the page
they came from, with the API's message, and the status the API gave."""

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

import httpx
from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from admin_console import views
from admin_console.dependencies import AnonymousApi, Api
from admin_console.exceptions import ApiError
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


NOTICES = {
    "status": "The order's status is changed.",
    "refunded": "The refund is recorded.",
    "created": "The product is created.",
    "saved": "The product is saved.",
    "restocked": "The stock is changed.",
    "deactivated": "The product is deactivated: customers no longer see it.",
    "reactivated": "The product is active again.",
    "user": "The user is changed.",
}


def see(path: str, notice: str | None = None, **query: str) -> RedirectResponse:
    """After a form: to the page that shows the result (303: a reload does not resend)."""
    params = {**query, **({"notice": notice} if notice else {})}
    return RedirectResponse(path + ("?" + urlencode(params) if params else ""), status_code=303)


def notice(request: Request) -> str | None:
    return NOTICES.get(request.query_params.get("notice", ""))


def query(request: Request) -> dict[str, str]:
    return dict(request.query_params)


def refused_status(error: ApiError) -> int:
    return error.status if 400 <= error.status < 600 else 502


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


# --- Orders -----------------------------------------------------------------------------


@router.get("/orders")
async def orders(request: Request, api: Api) -> Response:
    context = await views.order_list(api, query(request), console_settings(request).zone)
    return render(
        request,
        "orders.html",
        {
            "section": "orders",
            "query": query(request),
            "statuses": views.ORDER_STATUSES,
            "payment_statuses": views.PAYMENT_STATUSES,
            "links": views.page_links(context["page"], context["pages"]),
            **context,
        },
    )


async def _order(request: Request, api: Api, order_id: uuid.UUID, **extra: Any) -> Response:
    context = await views.order_page(api, order_id)
    status_code = extra.pop("status_code", 200)
    return render(
        request,
        "order.html",
        {
            "section": "orders",
            "notice": notice(request),
            "remaining": views.remaining,
            "references": views.payment_references,
            **context,
            **extra,
        },
        status_code=status_code,
    )


@router.get("/orders/{order_id}")
async def order(request: Request, api: Api, order_id: uuid.UUID) -> Response:
    return await _order(request, api, order_id)


@forms.post("/orders/{order_id}/status")
async def change_order_status(
    request: Request, api: Api, order_id: uuid.UUID, status: Annotated[str, Form(max_length=20)]
) -> Response:
    try:
        await api.put(f"/api/orders/admin/orders/{order_id}/status", {"status": status})
    except ApiError as error:
        return await _order(
            request, api, order_id, error=error.message, status_code=refused_status(error)
        )
    return see(f"{BASE}/orders/{order_id}", "status")


@forms.post("/orders/{order_id}/refund")
async def refund(
    request: Request,
    api: Api,
    order_id: uuid.UUID,
    payment_id: Annotated[str, Form(max_length=64)],
    provider: Annotated[str, Form(max_length=20)] = "",
    amount: Annotated[str, Form(max_length=32)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
    reference: Annotated[str, Form(max_length=255)] = "",
) -> Response:
    form = {"payment_id": payment_id, "amount": amount, "reason": reason, "reference": reference}
    problems = {}
    if not reason.strip():
        problems["reason"] = "Say why the money goes back."
    if provider == "mpesa" and not reference.strip():
        problems["reference"] = "The M-Pesa portal's reference of the reversal."
    body: dict[str, Any] = {"reason": reason.strip()}
    if amount.strip():
        body["amount"] = amount.strip()
    if provider == "mpesa":
        body.update(manual=True, reference=reference.strip())
    if not problems:
        try:
            await api.post(f"/api/payments/{payment_id}/refund", body)
            return see(f"{BASE}/orders/{order_id}", "refunded")
        except ApiError as error:
            problems = error.field_errors()
            message = error.message
            status_code = refused_status(error)
    else:
        message, status_code = "The refund is not made: see the form.", 400
    return await _order(
        request,
        api,
        order_id,
        refund_error=message,
        refund_form=form,
        refund_problems=problems,
        status_code=status_code,
    )


# --- Products ---------------------------------------------------------------------------


@router.get("/products")
async def products(request: Request, api: Api) -> Response:
    settings = console_settings(request)
    context = await views.product_list(api, query(request), settings.low_stock_threshold)
    return render(
        request,
        "products.html",
        {
            "section": "products",
            "query": query(request),
            "links": views.page_links(context["page"], context["pages"]),
            "low_stock": settings.low_stock_threshold,
            **context,
        },
    )


@router.get("/products/new")
async def new_product(request: Request) -> Response:
    return render(request, "product_form.html", {"section": "products", "form": {}})


@router.get("/products/image-preview")
async def image_preview(request: Request, imageUrl: str = "") -> Response:
    url = imageUrl.strip()
    return render(
        request,
        "image_preview.html",
        {"url": url if views.is_web_image(url) else None, "given": url},
    )


async def _product_form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {name: str(form.get(name, ""))[:10_000] for name in views.PRODUCT_FIELDS}


@forms.post("/products/new")
async def create_product(request: Request, api: Api) -> Response:
    form = await _product_form(request)
    try:
        body = await api.post("/api/products", views.product_body(form, creating=True))
    except ApiError as error:
        return render(
            request,
            "product_form.html",
            {
                "section": "products",
                "form": form,
                "error": error.message,
                "field_errors": error.field_errors(),
            },
            status_code=refused_status(error),
        )
    return see(f"{BASE}/products/{body['product']['id']}", "created")


async def _product_page(
    request: Request, api: Api, product_id: uuid.UUID, **extra: Any
) -> Response:
    product = (await api.get(f"/api/products/{product_id}"))["product"]
    status_code = extra.pop("status_code", 200)
    form = extra.pop("form", None) or {
        name: "" if product.get(name) is None else str(product[name])
        for name in views.PRODUCT_FIELDS
    }
    return render(
        request,
        "product_form.html",
        {
            "section": "products",
            "product": product,
            "form": form,
            "notice": notice(request),
            **extra,
        },
        status_code=status_code,
    )


@router.get("/products/{product_id}")
async def product(request: Request, api: Api, product_id: uuid.UUID) -> Response:
    return await _product_page(request, api, product_id)


@forms.post("/products/{product_id}")
async def save_product(request: Request, api: Api, product_id: uuid.UUID) -> Response:
    form = await _product_form(request)
    try:
        await api.put(f"/api/products/{product_id}", views.product_body(form, creating=False))
    except ApiError as error:
        return await _product_page(
            request,
            api,
            product_id,
            form=form,
            error=error.message,
            field_errors=error.field_errors(),
            status_code=refused_status(error),
        )
    return see(f"{BASE}/products/{product_id}", "saved")


@forms.post("/products/{product_id}/stock")
async def restock(
    request: Request,
    api: Api,
    product_id: uuid.UUID,
    delta: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    # A whole number goes as one; anything else as typed, for the API to name the problem.
    value: Any = int(delta) if re.fullmatch(r"\s*-?\d{1,12}\s*", delta) else delta
    try:
        await api.patch(f"/api/products/{product_id}/stock", {"delta": value})
    except ApiError as error:
        return await _product_page(
            request,
            api,
            product_id,
            stock_error=error.field_errors().get("delta") or error.message,
            delta=delta,
            status_code=refused_status(error),
        )
    return see(f"{BASE}/products/{product_id}", "restocked")


@forms.post("/products/{product_id}/deactivate")
async def deactivate_product(request: Request, api: Api, product_id: uuid.UUID) -> Response:
    await api.delete(f"/api/products/{product_id}")
    return see(f"{BASE}/products/{product_id}", "deactivated")


@forms.post("/products/{product_id}/reactivate")
async def reactivate_product(request: Request, api: Api, product_id: uuid.UUID) -> Response:
    await api.put(f"/api/products/{product_id}", {"isActive": True})
    return see(f"{BASE}/products/{product_id}", "reactivated")


# --- Payments and reconciliation ---------------------------------------------------------


@router.get("/payments")
async def payments(request: Request, api: Api) -> Response:
    context = await views.payment_list(api, query(request), console_settings(request).zone)
    return render(
        request,
        "payments.html",
        {
            "section": "payments",
            "query": query(request),
            "providers": views.PROVIDERS,
            "statuses": views.PAYMENT_RECORD_STATUSES,
            "links": views.page_links(context["page"], context["pages"]),
            **context,
        },
    )


@router.get("/payments/{payment_id}")
async def payment(request: Request, api: Api, payment_id: uuid.UUID) -> Response:
    body = await api.get(f"/api/payments/admin/payments/{payment_id}")
    return render(
        request,
        "payment.html",
        {
            "section": "payments",
            "payment": body["payment"],
            "refunds": body["refunds"],
            "references": views.payment_references(body["payment"]),
        },
    )


@router.get("/reconciliation")
async def reconciliation(request: Request, api: Api) -> Response:
    try:
        context = await views.reconciliation(api, query(request), console_settings(request).zone)
    except ApiError as error:
        if error.status != 400:
            raise
        context = {"report": None, "error": error.message}
    return render(
        request,
        "reconciliation.html",
        {"section": "reconciliation", "query": query(request), **context},
    )


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
