"""HTTP in, HTTP out: the payment service's routes."""

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from payment_service import (
    initiation,
    mpesa_callbacks,
    payments,
    reconciliation,
    refunds,
    stripe_webhooks,
)
from payment_service.dependencies import MpesaSource, OwnPayment, ReconciliationWindow, State
from payment_service.exceptions import CallbackForbidden
from payment_service.lifecycle import PaymentStatus, Provider
from payment_service.metrics import webhook_rejected
from payment_service.payments import PaymentFilters, payment_out
from payment_service.schemas import (
    CallbackAccepted,
    MpesaInitiated,
    MpesaPaymentRequest,
    PaymentDetail,
    PaymentEnvelope,
    PaymentList,
    PaymentPage,
    PaymentStats,
    ReconciliationReport,
    RefundOut,
    RefundRequest,
    RefundResult,
    StripeEventReceived,
    StripeInitiated,
    StripePaymentRequest,
)
from shared.auth import AdminUser, CurrentUser
from shared.db import SessionDep
from shared.errors import BadRequest
from shared.idempotency import KeyedRequestDep
from shared.openapi import errors
from shared.schemas import DateTimeInput, PageDep
from shared.text_guard import contains_unstorable

router = APIRouter(prefix="/api", tags=["payment"])
webhook_router = APIRouter(prefix="/api/webhook", tags=["webhooks"])
admin_router = APIRouter(prefix="/api/admin", tags=["admin"])

# What starting a payment or a refund may answer besides its success and what its
# dependencies document (initiation.py, refunds.py).
PAYMENT_ERRORS = errors(
    (404, "Order or payment not found"),
    (409, "A payment for this order is already in progress"),
    (502, "The payment provider is unavailable, try again"),
)


def answered(model: type) -> dict[int | str, dict[str, Any]]:
    """`responses=` of a route that answers with an idempotency Answer (a JSONResponse)."""
    return {200: {"model": model, "description": "Successful Response"}, **PAYMENT_ERRORS}


# Required: without it the answer is 400 "Invalid signature". Read in the route, not
# declared as a Header parameter, so a missing one is refused (and counted) as a bad
# signature, not as a validation error.
STRIPE_SIGNATURE = {
    "name": "Stripe-Signature",
    "in": "header",
    "required": True,
    "schema": {"type": "string"},
    "description": "Stripe's signature of the raw body (t=...,v1=...)",
}


@router.post("/payments/mpesa", responses=answered(MpesaInitiated))
async def pay_with_mpesa(
    data: MpesaPaymentRequest, user: CurrentUser, state: State, keyed: KeyedRequestDep
) -> JSONResponse:
    """STK Push to the customer's phone for the order's total."""
    answer = await initiation.pay_with_mpesa(state, user, data, keyed)
    return answer.response()


@router.post("/payments/stripe", responses=answered(StripeInitiated))
async def pay_with_stripe(
    data: StripePaymentRequest, user: CurrentUser, state: State, keyed: KeyedRequestDep
) -> JSONResponse:
    """A PaymentIntent for the order's total; the client confirms it with `clientSecret`."""
    answer = await initiation.pay_with_stripe(state, user, data, keyed)
    return answer.response()


@router.get("/payments/order/{order_id}", response_model=PaymentList)
async def payments_of_order(
    order_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> PaymentList:
    found = await payments.payments_of_order(session, user, order_id)
    return PaymentList(payments=[payment_out(p) for p in found])


# `:uuid`: /api/payments/mpesa and /stripe are no payment ids (a GET there is a 405 naming
# POST, not a 400 about an id).
@router.get("/payments/{payment_id:uuid}", response_model=PaymentEnvelope)
async def get_payment(payment: OwnPayment) -> PaymentEnvelope:
    return PaymentEnvelope(payment=payment_out(payment))


@router.post("/payments/{payment_id}/refund", responses=answered(RefundResult))
async def refund_payment(
    payment_id: uuid.UUID,
    data: RefundRequest,
    admin: AdminUser,
    state: State,
    keyed: KeyedRequestDep,
) -> JSONResponse:
    answer = await refunds.refund(state, admin, payment_id, data, keyed)
    return answer.response()


@admin_router.get("/payments", response_model=PaymentPage)
async def list_payments(
    admin: AdminUser,
    session: SessionDep,
    page: PageDep,
    status: PaymentStatus | None = None,
    provider: Provider | None = None,
    order_id: Annotated[uuid.UUID | None, Query(alias="orderId")] = None,
    user_id: Annotated[uuid.UUID | None, Query(alias="userId")] = None,
    created_from: Annotated[DateTimeInput | None, Query(alias="from")] = None,
    created_to: Annotated[DateTimeInput | None, Query(alias="to")] = None,
) -> PaymentPage:
    filters = PaymentFilters(status, provider, order_id, user_id, created_from, created_to)
    found, total = await payments.list_payments(session, filters, page)
    return PaymentPage(
        payments=[payment_out(p) for p in found],
        total_pages=page.total_pages(total),
        current_page=page.page,
        total_payments=total,
    )


@admin_router.get("/payments/{payment_id}", response_model=PaymentDetail)
async def get_payment_as_admin(
    admin: AdminUser, payment: OwnPayment, session: SessionDep
) -> PaymentDetail:
    """Any payment, with its refunds."""
    refunds_ = await payments.refunds_of_payment(session, payment)
    return PaymentDetail(
        payment=payment_out(payment),
        refunds=[RefundOut.model_validate(refund) for refund in refunds_],
    )


@admin_router.get("/stats", response_model=PaymentStats)
async def payment_stats(
    admin: AdminUser,
    session: SessionDep,
    created_from: Annotated[
        DateTimeInput | None, Query(alias="from", description="Created at or after (ISO 8601).")
    ] = None,
    created_to: Annotated[
        DateTimeInput | None, Query(alias="to", description="Created before (ISO 8601).")
    ] = None,
) -> PaymentStats:
    """How many payments, and how much, by provider, status and currency."""
    return await payments.payment_stats(session, created_from, created_to)


@admin_router.get("/reconciliation", response_model=ReconciliationReport)
async def reconciliation_report(
    admin: AdminUser, window: ReconciliationWindow, state: State
) -> ReconciliationReport:
    """Did every payment land on its order, exactly once? Payments here against the order
    service's orders and the providers, for orders and payments created in [from, to).
    Reads only: the reconciliation worker repairs (docs/reconciliation.md)."""
    report = await reconciliation.build_report(state, window)
    return reconciliation.report_out(report)


@webhook_router.post("/mpesa/{secret}", response_model=CallbackAccepted)
async def mpesa_callback(request: Request, source: MpesaSource, state: State) -> CallbackAccepted:
    """Daraja's STK callback. Answers Daraja's acknowledgement once the callback is
    recorded; what it proves is decided by mpesa_callbacks.handle_mpesa_callback."""
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise BadRequest("Invalid callback: not JSON") from None
    if contains_unstorable(body):
        raise BadRequest("Invalid callback: text that cannot be stored")
    await mpesa_callbacks.handle_mpesa_callback(state, body, source)
    return CallbackAccepted()


@webhook_router.post("/mpesa", include_in_schema=False)
async def mpesa_callback_without_secret(request: Request) -> None:
    webhook_rejected("mpesa", "bad_secret")
    raise CallbackForbidden()


@webhook_router.post(
    "/stripe",
    response_model=StripeEventReceived,
    responses=errors((400, "Invalid signature")),
    openapi_extra={"parameters": [STRIPE_SIGNATURE]},
)
async def stripe_webhook(request: Request, state: State) -> StripeEventReceived:
    """Stripe's events, signed (`Stripe-Signature`) over the raw body."""
    payload = await request.body()  # the raw bytes: the signature is over them
    signature = request.headers.get("stripe-signature")
    event = stripe_webhooks.verify_stripe_event(state.settings, payload, signature)
    await stripe_webhooks.handle_stripe_event(state.sessionmaker, event)
    return StripeEventReceived()
