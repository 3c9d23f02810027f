"""Payments as their owners and the admins read them. Each function is one transaction
of the caller's `session`."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from payment_service import repository
from payment_service.exceptions import PaymentNotFound
from payment_service.lifecycle import PaymentStatus, Provider
from payment_service.models import Payment, Refund
from payment_service.schemas import PaymentFigures, PaymentOut, PaymentStats
from shared.auth import AuthenticatedUser
from shared.schemas import Page


@dataclass(frozen=True)
class PaymentFilters:
    """The admin's list: every filter optional; times [from, to)."""

    status: PaymentStatus | None = None
    provider: Provider | None = None
    order_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


def payment_out(payment: Payment) -> PaymentOut:
    return PaymentOut.model_validate(payment)


async def get_own_payment(
    session: AsyncSession, user: AuthenticatedUser, payment_id: uuid.UUID
) -> Payment:
    """The caller's payment (an admin may read any); 404 otherwise, whether it exists or
    not."""
    payment = await repository.get_payment(session, payment_id)
    if payment is None or (payment.user_id != user.id and not user.is_admin):
        raise PaymentNotFound()
    return payment


async def payments_of_order(
    session: AsyncSession, user: AuthenticatedUser, order_id: uuid.UUID
) -> list[Payment]:
    return await repository.payments_of_order(session, order_id, user.id)


async def list_payments(
    session: AsyncSession, filters: PaymentFilters, page: Page
) -> tuple[list[Payment], int]:
    return await repository.list_payments(
        session,
        status=filters.status,
        provider=filters.provider,
        order_id=filters.order_id,
        user_id=filters.user_id,
        created_from=filters.created_from,
        created_to=filters.created_to,
        offset=page.offset,
        limit=page.limit,
    )


async def refunds_of_payment(session: AsyncSession, payment: Payment) -> list[Refund]:
    """The payment's refunds, newest first."""
    return await repository.refunds_of_payment(session, payment.id)


async def payment_stats(
    session: AsyncSession, created_from: datetime | None, created_to: datetime | None
) -> PaymentStats:
    """How many payments, and how much, by provider, status and currency, of the payments
    created in [created_from, created_to)."""
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
