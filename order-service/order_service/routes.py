"""HTTP in, HTTP out: the order service's routes (the original's contract, plus the
admin status change and the internal routes of docs/internal-api.md)."""

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import JSONResponse
from pydantic import StringConstraints

from order_service import orders, payment_updates, placement
from order_service.dependencies import AnyOrder, OwnOrder, State, TimeZone
from order_service.lifecycle import PaymentStatus, Status
from order_service.models import Order
from order_service.schemas import (
    CreateOrderRequest,
    MessageWithOrder,
    OrderEnvelope,
    OrderList,
    OrderOut,
    OrderStats,
    OrderSummaryList,
    OrderSummaryOut,
    PaymentUpdate,
    PaymentUpdateResult,
    StatusUpdate,
)
from shared.auth import AdminUser, CurrentUser, InternalCaller
from shared.db import SessionDep
from shared.idempotency import KeyedRequestDep
from shared.openapi import errors
from shared.schemas import DateTimeInput, Page, PageDep

router = APIRouter(prefix="/api", tags=["order"])
admin_router = APIRouter(prefix="/api/admin", tags=["admin"])
internal_router = APIRouter(prefix="/api/internal", tags=["internal"])

StatusFilter = Annotated[Status | None, Query(alias="status")]
OrderNumber = Annotated[
    str, StringConstraints(strip_whitespace=True, to_upper=True, max_length=40, pattern=r"^[\w-]*$")
]


@router.post("/orders", status_code=status.HTTP_201_CREATED, response_model=MessageWithOrder)
async def create_order(
    data: CreateOrderRequest, user: CurrentUser, state: State, keyed: KeyedRequestDep
) -> JSONResponse:
    answer = await placement.place_order(state, user, data, keyed)
    return answer.response()


@router.get("/orders", response_model=OrderList)
async def list_own_orders(
    user: CurrentUser, session: SessionDep, page: PageDep, status_: StatusFilter = None
) -> OrderList:
    found, total = await orders.list_orders(session, page, user_id=user.id, status=status_)
    return _order_list(found, total, page)


@router.get("/orders/{order_id}", response_model=OrderEnvelope)
async def get_own_order(order: OwnOrder) -> OrderEnvelope:
    return OrderEnvelope(order=order)


@router.put(
    "/orders/{order_id}/cancel",
    response_model=MessageWithOrder,
    responses=errors((404, "Order not found")),
)
async def cancel_order(order_id: str, user: CurrentUser, state: State) -> MessageWithOrder:
    order = await orders.cancel_as_customer(state, user, order_id)
    return MessageWithOrder(message="Order cancelled successfully", order=order)


@admin_router.get("/orders", response_model=OrderList)
async def list_all_orders(
    admin: AdminUser,
    session: SessionDep,
    page: PageDep,
    status_: StatusFilter = None,
    user_id: Annotated[uuid.UUID | None, Query(alias="userId")] = None,
    payment_status: Annotated[PaymentStatus | None, Query(alias="paymentStatus")] = None,
    order_number: Annotated[
        OrderNumber | None, Query(alias="orderNumber", description="The whole number, any case.")
    ] = None,
    created_from: Annotated[
        DateTimeInput | None, Query(alias="from", description="Placed at or after (ISO 8601).")
    ] = None,
    created_to: Annotated[
        DateTimeInput | None, Query(alias="to", description="Placed before (ISO 8601).")
    ] = None,
) -> OrderList:
    found, total = await orders.list_orders(
        session,
        page,
        user_id=user_id,
        status=status_,
        payment_status=payment_status,
        order_number=order_number or None,
        created_from=created_from,
        created_to=created_to,
    )
    return _order_list(found, total, page)


@admin_router.get("/stats", response_model=OrderStats)
async def order_stats(
    admin: AdminUser,
    session: SessionDep,
    state: State,
    timezone: TimeZone,
    days: Annotated[int, Query(ge=1, le=366, description="How many days, today included.")] = 7,
) -> OrderStats:
    """Orders in each status now, and per calendar day in `timezone`: orders placed, orders
    paid (not cancelled since) and their total in the store's currency."""
    return await orders.order_stats(
        session,
        days=days,
        timezone=timezone,
        currency=state.settings.store_currency,
        now=datetime.now(UTC),
    )


@admin_router.get("/orders/{order_id}", response_model=OrderEnvelope)
async def get_any_order(order: AnyOrder) -> OrderEnvelope:
    return OrderEnvelope(order=order)


@admin_router.put(
    "/orders/{order_id}/status",
    response_model=MessageWithOrder,
    responses=errors((404, "Order not found"), (409, "The order cannot move to that status")),
)
async def change_order_status(
    order_id: str, data: StatusUpdate, state: State, admin: AdminUser
) -> MessageWithOrder:
    order = await orders.change_status_as_admin(state, admin, order_id, data.status)
    return MessageWithOrder(message="Order status updated", order=order)


@internal_router.get(
    "/orders/{order_id}", response_model=OrderEnvelope, responses=errors((404, "Order not found"))
)
async def get_order_for_service(
    order_id: str, caller: InternalCaller, state: State
) -> OrderEnvelope:
    """For the payment service before it charges: owner, status, amount, currency."""
    return OrderEnvelope(order=await orders.get_any_order(state, order_id))


@internal_router.post(
    "/update-status",
    response_model=PaymentUpdateResult,
    responses=errors((404, "Order not found"), (409, "The order cannot take that payment status")),
)
async def update_status(
    data: PaymentUpdate, state: State, caller: InternalCaller
) -> PaymentUpdateResult:
    order, applied = await payment_updates.apply_payment_update(state, data)
    return PaymentUpdateResult(order=order, applied=applied)


@internal_router.get("/orders", response_model=OrderSummaryList)
async def orders_for_reconciliation(
    caller: InternalCaller,
    session: SessionDep,
    page: PageDep,
    created_from: Annotated[DateTimeInput | None, Query(alias="from")] = None,
    created_to: Annotated[DateTimeInput | None, Query(alias="to")] = None,
) -> OrderSummaryList:
    """Orders created in [from, to), oldest pages last (newest first), for reconciliation."""
    found, total = await orders.orders_created_between(session, page, created_from, created_to)
    return OrderSummaryList(
        orders=[OrderSummaryOut.model_validate(order) for order in found],
        total_pages=page.total_pages(total),
        current_page=page.page,
        total_orders=total,
    )


def _order_list(found: list[Order], total: int, page: Page) -> OrderList:
    return OrderList(
        orders=[OrderOut.model_validate(order) for order in found],
        total_pages=page.total_pages(total),
        current_page=page.page,
        total_orders=total,
    )
