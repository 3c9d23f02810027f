"""HTTP in, HTTP out: the payment service's routes."""

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from payment_service import reconciliation, repository, service
from payment_service.dependencies import (
    CallbackForbidden,
    OwnPayment,
    ReconciliationWindow,
    verified_mpesa_source,
)
from payment_service.metrics import webhook_rejected
from payment_service.models import PROVIDERS, STATUSES, Payment
from payment_service.schemas import (
    CallbackAccepted,
    MpesaPaymentRequest,
    PaymentDetail,
    PaymentEnvelope,
    PaymentFigures,
    PaymentList,
    PaymentPage,
    PaymentStats,
    ReconciliationReport,
    RefundOut,
    RefundRequest,
    StripePaymentRequest,
)
from shared.auth import AdminUser, CurrentUser
from shared.db import SessionDep
from shared.errors import BadRequest
from shared.idempotency import Answer, Claim, IdempotencyKeys, KeyedRequest, KeyedRequestDep
from shared.schemas import DateTimeInput, PageDep
from shared.text_guard import contains_unstorable

router = APIRouter(prefix="/api", tags=["payment"])
webhook_router = APIRouter(prefix="/api/webhook", tags=["webhooks"])
admin_router = APIRouter(prefix="/api/admin", tags=["admin"])
internal_router = APIRouter(prefix="/api/internal", tags=["internal"])

Status = Literal[STATUSES]  # type: ignore[valid-type]
Provider = Literal[PROVIDERS]  # type: ignore[valid-type]


async def idempotent(
    request: Request,
    user_id: uuid.UUID,
    keyed: KeyedRequest | None,
    action: Callable[[], Awaitable[BaseModel]],
) -> JSONResponse:
    async def answer(claim: Claim | None) -> Answer:
        return Answer.of(await action())

    keys: IdempotencyKeys = request.app.state.idempotency_keys
    result = await keys.run(
        request.app.state.sessionmaker, user_id=user_id, request=keyed, action=answer
    )
    return result.response()


@router.post("/payments/mpesa")
async def pay_with_mpesa(
    data: MpesaPaymentRequest, user: CurrentUser, request: Request, keyed: KeyedRequestDep
):
    """STK Push to the customer's phone for the order's total."""
    return await idempotent(
        request, user.id, keyed, lambda: service.initiate_mpesa(request.app, user, data)
    )


@router.post("/payments/stripe")
async def pay_with_stripe(
    data: StripePaymentRequest, user: CurrentUser, request: Request, keyed: KeyedRequestDep
):
    """A PaymentIntent for the order's total; the client confirms it with `clientSecret`."""
    return await idempotent(
        request, user.id, keyed, lambda: service.initiate_stripe(request.app, user, data)
    )


@router.get("/payments/order/{order_id}", response_model=PaymentList)
async def payments_of_order(order_id: uuid.UUID, user: CurrentUser, session: SessionDep):
    payments = await repository.payments_of_order(session, order_id, user.id)
    return PaymentList(payments=[service.payment_out(p) for p in payments])


@router.get("/payments/{payment_id}", response_model=PaymentEnvelope)
async def get_payment(payment: OwnPayment):
    return PaymentEnvelope(payment=service.payment_out(payment))


@router.post("/payments/{payment_id}/refund")
async def refund_payment(
    payment_id: uuid.UUID,
    data: RefundRequest,
    admin: AdminUser,
    request: Request,
    keyed: KeyedRequestDep,
):
    return await idempotent(
        request,
        admin.id,
        keyed,
        lambda: service.refund_payment(request.app, admin, payment_id, data),
    )


@admin_router.get("/payments", response_model=PaymentPage)
async def list_payments(
    admin: AdminUser,
    session: SessionDep,
    page: PageDep,
    status: Status | None = None,
    provider: Provider | None = None,
    order_id: Annotated[uuid.UUID | None, Query(alias="orderId")] = None,
    user_id: Annotated[uuid.UUID | None, Query(alias="userId")] = None,
    created_from: Annotated[DateTimeInput | None, Query(alias="from")] = None,
    created_to: Annotated[DateTimeInput | None, Query(alias="to")] = None,
):
    conditions = []
    if status is not None:
        conditions.append(Payment.status == status)
    if provider is not None:
        conditions.append(Payment.provider == provider)
    if order_id is not None:
        conditions.append(Payment.order_id == order_id)
    if user_id is not None:
        conditions.append(Payment.user_id == user_id)
    if created_from is not None:
        conditions.append(Payment.created_at >= created_from)
    if created_to is not None:
        conditions.append(Payment.created_at < created_to)
    payments, total = await repository.list_payments(
        session, conditions=conditions, offset=page.offset, limit=page.limit
    )
    return PaymentPage(
        payments=[service.payment_out(p) for p in payments],
        total_pages=page.total_pages(total),
        current_page=page.page,
        total_payments=total,
    )


@admin_router.get("/payments/{payment_id}", response_model=PaymentDetail)
async def get_payment_as_admin(admin: AdminUser, payment: OwnPayment, session: SessionDep):
    """Any payment, with its refunds."""
    refunds = await repository.refunds_of_payment(session, payment.id)
    return PaymentDetail(
        payment=service.payment_out(payment),
        refunds=[RefundOut.model_validate(refund) for refund in refunds],
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
):
    """How many payments, and how much, by provider, status and currency."""
    rows = await repository.payment_figures(
        session, created_from=created_from, created_to=created_to
    )
    return PaymentStats(
        window_from=created_from,
        window_to=created_to,
        groups=[
            PaymentFigures(
                provider=provider,
                status=status,
                currency=currency,
                count=count,
                amount=amount,
                refunded_amount=refunded,
            )
            for provider, status, currency, count, amount, refunded in rows
        ],
    )


@admin_router.get("/reconciliation", response_model=ReconciliationReport)
async def reconciliation_report(admin: AdminUser, window: ReconciliationWindow, request: Request):
    """Did every payment land on its order, exactly once? Payments here against the order
    service's orders and the providers, for orders and payments created in [from, to).
    Reads only: the reconciliation worker repairs (docs/reconciliation.md)."""
    report = await reconciliation.build_report(request.app, window)
    return reconciliation.report_out(report)


@webhook_router.post("/mpesa/{secret}", response_model=CallbackAccepted)
async def mpesa_callback(
    request: Request, source: Annotated[str | None, Depends(verified_mpesa_source)]
):
    """Daraja's STK callback. Answers Daraja's acknowledgement once the callback is
    recorded; what it proves is decided by service.handle_mpesa_callback."""
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise BadRequest("Invalid callback: not JSON") from None
    if contains_unstorable(body):
        raise BadRequest("Invalid callback: text that cannot be stored")
    await service.handle_mpesa_callback(request.app, body, source)
    return CallbackAccepted()


@webhook_router.post("/mpesa", include_in_schema=False)
async def mpesa_callback_without_secret(request: Request):
    webhook_rejected("mpesa", "bad_secret")
    raise CallbackForbidden()


@webhook_router.post("/stripe")
async def stripe_webhook(request: Request):
    payload = await request.body()  # the raw bytes: the signature is over them
    settings = request.app.state.settings
    service.verify_stripe_event(settings, payload, request.headers.get("stripe-signature"))
    event = json.loads(payload)
    await service.handle_stripe_event(request.app, event)
    return {"received": True}
