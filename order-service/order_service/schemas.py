"""Request bodies and responses of the order service (camelCase on the wire)."""

import uuid
from collections.abc import Iterable
from datetime import date, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import AliasChoices, Field, StringConstraints, model_validator

from order_service.lifecycle import Status
from shared.schemas import CamelModel, Money, RequestModel

MAX_LINES = 100
MAX_QUANTITY = 1000

PaymentMethod = Literal["mpesa", "stripe", "cash_on_delivery"]
AddressPart = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Quantity = Annotated[int, Field(strict=True, ge=1, le=MAX_QUANTITY)]


class OrderLineIn(RequestModel):
    product_id: uuid.UUID
    # Accepted for the original's clients, never stored: the name comes from the catalogue.
    product_name: str | None = None
    quantity: Quantity


class ShippingAddress(RequestModel):
    street: AddressPart
    city: AddressPart
    country: AddressPart
    postal_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)] | None = (
        None
    )


class CreateOrderRequest(RequestModel):
    # Without items, the caller's cart is the order.
    items: Annotated[list[OrderLineIn], Field(min_length=1, max_length=MAX_LINES)] | None = None
    shipping_address: ShippingAddress
    notes: Annotated[str, StringConstraints(max_length=500)] | None = None
    payment_method: PaymentMethod | None = None

    @model_validator(mode="after")
    def _merged_lines_stay_in_bounds(self) -> Self:
        if self.items is not None:
            for product_id, quantity in merge_lines(
                (line.product_id, line.quantity) for line in self.items
            ).items():
                if quantity > MAX_QUANTITY:
                    raise ValueError(
                        f"quantity of product {product_id} is more than {MAX_QUANTITY}"
                    )
        return self


def merge_lines(lines: Iterable[tuple[uuid.UUID, int]]) -> dict[uuid.UUID, int]:
    """(productId, quantity) pairs with duplicate products added up, in first-seen order."""
    merged: dict[uuid.UUID, int] = {}
    for product_id, quantity in lines:
        merged[product_id] = merged.get(product_id, 0) + quantity
    return merged


class StatusUpdate(RequestModel):
    status: Status


class PaymentUpdate(RequestModel):
    """The payment service's news about an order's payment."""

    order_id: uuid.UUID
    status: Status | None = None
    payment_status: Literal["pending", "paid", "failed", "refund_pending", "refunded"] | None = None
    payment_id: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    event_id: Annotated[str, StringConstraints(min_length=1, max_length=100)]


class OrderItemOut(CamelModel):
    id: uuid.UUID
    order_id: uuid.UUID
    product_id: uuid.UUID
    product_name: str
    quantity: int
    price: Money
    subtotal: Money
    created_at: datetime
    updated_at: datetime


class StatusChangeOut(CamelModel):
    from_status: str | None = Field(serialization_alias="from")
    to_status: str = Field(serialization_alias="to")
    at: datetime = Field(validation_alias=AliasChoices("at", "created_at"))
    reason: str | None
    payment_status: str
    actor: str


class OrderOut(CamelModel):
    id: uuid.UUID
    user_id: uuid.UUID
    order_number: str
    status: str
    total_amount: Money
    currency: str
    shipping_address: dict[str, Any]
    payment_method: str | None
    payment_status: str
    payment_ids: list[str]
    notes: str | None
    paid_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    cancelled_at: datetime | None
    created_at: datetime
    updated_at: datetime
    items: list[OrderItemOut]


class OrderDetailOut(OrderOut):
    history: list[StatusChangeOut]


class OrderEnvelope(CamelModel):
    order: OrderDetailOut


class MessageWithOrder(CamelModel):
    message: str
    order: OrderDetailOut


class OrderList(CamelModel):
    orders: list[OrderOut]
    total_pages: int
    current_page: int
    total_orders: int


class PaymentUpdateResult(CamelModel):
    order: OrderDetailOut
    applied: bool


class OrderSummaryOut(CamelModel):
    id: uuid.UUID
    user_id: uuid.UUID
    order_number: str
    status: str
    payment_status: str
    total_amount: Money
    currency: str
    payment_method: str | None
    payment_ids: list[str]
    created_at: datetime


class OrderSummaryList(CamelModel):
    orders: list[OrderSummaryOut]
    total_pages: int
    current_page: int
    total_orders: int


class DayFigures(CamelModel):
    date: date
    orders: int  # placed that day
    paid_orders: int  # paid that day, not cancelled since
    revenue: Money  # their total


class OrderStats(CamelModel):
    """The admin console's overview: orders in each status now, and day by day."""

    timezone: str
    currency: str
    by_status: dict[str, int]
    days: list[DayFigures]  # oldest first; the last is today
