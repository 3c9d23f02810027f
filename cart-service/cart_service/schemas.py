"""Bodies in and out, camelCase on the wire; money as strings with two decimals."""

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

from shared.schemas import CamelModel, Money, MoneyInput, RequestModel

MAX_QUANTITY = 1000  # of one product in a cart


def _not_a_boolean(value: Any) -> Any:
    # pydantic would take `true` as 1.
    if isinstance(value, bool):
        raise ValueError("must be an integer")
    return value


# An integer (`2`, `"2"` and `2.0` are accepted; `2.5` and `true` are not). Its range
# (1 to 1000) is checked by the service, for the original's message
# "Quantity must be at least 1".
Quantity = Annotated[
    int,
    BeforeValidator(_not_a_boolean),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_QUANTITY}),
]


class AddItemRequest(RequestModel):
    product_id: uuid.UUID
    quantity: Quantity = 1


class UpdateItemRequest(RequestModel):
    quantity: Quantity


class UserIdRequest(RequestModel):
    user_id: uuid.UUID


class CartItemOut(CamelModel):
    id: uuid.UUID
    cart_id: uuid.UUID
    product_id: uuid.UUID
    product_name: str
    price: Money
    quantity: int
    subtotal: Money
    image_url: str | None
    # The price differs from the one the line was added (or last changed) at;
    # `previous_price` is that one.
    price_changed: bool
    previous_price: Money | None
    # The product is inactive or gone: the line cannot be bought and is not counted
    # in the cart's totals.
    unavailable: bool
    created_at: datetime
    updated_at: datetime


class CartOut(CamelModel):
    id: uuid.UUID
    user_id: uuid.UUID
    total_amount: Money
    item_count: int
    expires_at: datetime
    items: list[CartItemOut]
    # False when the product service could not be asked: lines show their stored
    # name, price and image.
    prices_refreshed: bool
    created_at: datetime
    updated_at: datetime


class CartEnvelope(CamelModel):
    cart: CartOut


class MessageWithCart(CamelModel):
    message: str
    cart: CartOut


class CatalogueProduct(CamelModel):
    """A product as the product service's lookup answers it."""

    id: uuid.UUID
    name: str
    price: MoneyInput
    stock: int
    image_url: str | None = None
    is_active: bool


class LookupResponse(CamelModel):
    products: list[CatalogueProduct]
