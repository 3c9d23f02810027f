"""The console's orders, payments and reconciliation pages, and their forms (an order's
status, a refund). See routes.py for how pages and forms are made."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import Response

from admin_console import views
from admin_console.dependencies import Api
from admin_console.exceptions import ApiError
from admin_console.navigation import notice, query, refused_status, see
from admin_console.session import (
    BASE,
    verify_csrf,
)
from admin_console.state import console_settings
from admin_console.templating import render

router = APIRouter(prefix=BASE)
forms = APIRouter(prefix=BASE, dependencies=[Depends(verify_csrf)])


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
