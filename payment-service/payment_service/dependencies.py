"""Dependencies that validate and load."""

import hmac
import ipaddress
import uuid
from typing import Annotated

from fastapi import Depends, Query, Request

from payment_service import metrics
from payment_service.config import PaymentSettings
from payment_service.models import Payment
from payment_service.reconciliation import InvalidWindow, Window
from shared.auth import CurrentUser
from shared.db import SessionDep
from shared.errors import AppError, BadRequest, NotFound
from shared.schemas import DateTimeInput


class CallbackForbidden(AppError):
    status_code = 403
    message = "Forbidden"


async def app_settings(request: Request) -> PaymentSettings:
    return request.app.state.settings


Settings = Annotated[PaymentSettings, Depends(app_settings)]


async def own_payment(payment_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> Payment:
    """The caller's payment (an admin may read any); 404 otherwise, whether it exists or
    not."""
    payment = await session.get(Payment, payment_id)
    if payment is None or (payment.user_id != user.id and not user.is_admin):
        raise NotFound("Payment not found")
    return payment


OwnPayment = Annotated[Payment, Depends(own_payment)]


def source_ip(request: Request) -> str | None:
    """The caller's address: the gateway's X-Real-IP (it always sets it, from
    TRUSTED_PROXIES), else the direct peer. Services are not reachable but through the
    gateway."""
    real_ip = request.headers.get("x-real-ip")
    if real_ip:
        return real_ip.strip()
    return request.client.host if request.client else None


def _allowed(address: str | None, allowed: list[str]) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for entry in allowed:
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


async def verified_mpesa_source(request: Request, secret: str = "") -> str | None:
    """403, changing nothing, unless the callback URL carries MPESA_CALLBACK_SECRET
    (compared in constant time) and, when MPESA_CALLBACK_ALLOWED_IPS is set, comes from
    one of those addresses. Returns the source address."""
    settings: PaymentSettings = request.app.state.settings
    address = source_ip(request)
    if settings.mpesa_callback_allowed_ips and not _allowed(
        address, settings.mpesa_callback_allowed_ips
    ):
        metrics.webhook_rejected("mpesa", "bad_source")
        raise CallbackForbidden()
    expected = settings.mpesa_callback_secret
    if expected is None or not hmac.compare_digest(
        secret.encode(), expected.get_secret_value().encode()
    ):
        metrics.webhook_rejected("mpesa", "bad_secret")
        raise CallbackForbidden()
    return address


async def reconciliation_window(
    request: Request,
    start: Annotated[DateTimeInput | None, Query(alias="from")] = None,
    end: Annotated[DateTimeInput | None, Query(alias="to")] = None,
) -> Window:
    """`from` and `to` (ISO 8601 with a timezone); by default the last
    RECONCILIATION_WINDOW_DAYS days."""
    settings: PaymentSettings = request.app.state.settings
    try:
        return Window.of(start, end, settings.reconciliation_window_days)
    except InvalidWindow as exc:
        field = "to" if "before to" in str(exc) else "from"
        raise BadRequest(
            "Validation error", details=[{"field": field, "message": str(exc)}]
        ) from None


ReconciliationWindow = Annotated[Window, Depends(reconciliation_window)]
