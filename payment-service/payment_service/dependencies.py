"""Dependencies that validate and load."""

import uuid
from typing import Annotated

from fastapi import Depends, Query, Request

from payment_service import mpesa_callbacks, payments
from payment_service.models import Payment
from payment_service.reconciliation import InvalidWindow, Window
from payment_service.state import PaymentState
from shared.auth import CurrentUser
from shared.client_address import behind_proxies
from shared.db import SessionDep
from shared.errors import BadRequest
from shared.openapi import answers
from shared.schemas import DateTimeInput
from shared.state import state_dependency

State = Annotated[PaymentState, Depends(state_dependency(PaymentState))]


@answers((404, "Payment not found"))
async def own_payment(payment_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> Payment:
    """The caller's payment (an admin may read any); 404 otherwise, whether it exists or
    not."""
    return await payments.get_own_payment(session, user, payment_id)


OwnPayment = Annotated[Payment, Depends(own_payment)]


def source_ip(request: Request, state: PaymentState) -> str | None:
    """The caller's address: the direct peer's, unless that peer is in TRUSTED_PROXIES (the
    gateway); then the X-Real-IP it sets (or its X-Forwarded-For). Anyone else who sends
    those headers is judged by the address they call from."""
    return behind_proxies(
        request.client.host if request.client else None,
        request.headers.get("x-real-ip"),
        request.headers.get("x-forwarded-for"),
        state.settings.trusted_proxy_networks,
    )


@answers((403, "Not from Safaricom, or not the callback path's secret"))
async def verified_mpesa_source(request: Request, state: State, secret: str = "") -> str | None:
    """The M-Pesa callback's caller, checked (mpesa_callbacks.check_caller: 403 otherwise).
    Returns the source address."""
    address = source_ip(request, state)
    mpesa_callbacks.check_caller(state.settings, address, secret)
    return address


MpesaSource = Annotated[str | None, Depends(verified_mpesa_source)]


async def reconciliation_window(
    state: State,
    start: Annotated[DateTimeInput | None, Query(alias="from")] = None,
    end: Annotated[DateTimeInput | None, Query(alias="to")] = None,
) -> Window:
    """`from` and `to` (ISO 8601 with a timezone); by default the last
    RECONCILIATION_WINDOW_DAYS days."""
    try:
        return Window.of(start, end, state.settings.reconciliation_window_days)
    except InvalidWindow as exc:
        field = "to" if "before to" in str(exc) else "from"
        raise BadRequest(
            "Validation error", details=[{"field": field, "message": str(exc)}]
        ) from None


ReconciliationWindow = Annotated[Window, Depends(reconciliation_window)]
