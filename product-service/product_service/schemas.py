"""Bodies in and out of the product service (camelCase on the wire)."""

import re
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from shared.schemas import CamelModel, Money, MoneyInput, RequestModel, without_null

MAX_ITEMS_PER_CALL = 100
MAX_QUANTITY = 1_000_000
MAX_STOCK = 2_147_483_647  # INTEGER
MAX_IMAGES = 20
MAX_DIMENSIONS = 10
MAX_WEIGHT = Decimal("9999999.999")  # NUMERIC(10, 3)


def _reject_bool(value: object) -> object:
    # JSON true is not the number 1: `"stock": true` is a mistake, not one item.
    if isinstance(value, bool):
        raise ValueError("must be an integer")
    return value


# An http(s) URL: a host name, an optional port, then a path, query and fragment of RFC 3986's
# characters (percent-encoded as needed). The server checks exactly the document's pattern, so
# that what a generated client validates and what the server takes are the same set.
URL_PATTERN = (
    r"^https?://[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:[0-9]{1,5})?"
    r"([/?#][A-Za-z0-9._~%!$&'()*+,;=:@/?#-]*)?$"
)
_url_pattern = re.compile(URL_PATTERN)


def _url(value: str) -> str:
    """An http(s) URL, kept as the client wrote it (once it is known to be one)."""
    if _url_pattern.fullmatch(value) is None:
        raise ValueError("must be an http(s) URL")
    return value


def _dimension_values(value: dict[str, Any]) -> dict[str, Any]:
    for key, item in value.items():
        if isinstance(item, bool) or not isinstance(item, int | float | str):
            raise ValueError(f"{key} must be a number or a short text")
        if isinstance(item, str) and len(item) > 50:
            raise ValueError(f"{key} must be at most 50 characters")
    return value


# The bounds before the validator: so they are JSON Schema's minimum/maximum in the document
# (after it, pydantic would write its own `ge`/`le`, which no client reads).
Stock = Annotated[int, Field(ge=0, le=MAX_STOCK), BeforeValidator(_reject_bool)]
Quantity = Annotated[int, Field(ge=1, le=MAX_QUANTITY), BeforeValidator(_reject_bool)]
Delta = Annotated[int, Field(ge=-MAX_STOCK, le=MAX_STOCK), BeforeValidator(_reject_bool)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(max_length=10_000)]
Category = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Sku = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Url = Annotated[
    str,
    StringConstraints(max_length=2048),
    AfterValidator(_url),
    WithJsonSchema({"type": "string", "maxLength": 2048, "pattern": URL_PATTERN}),
]
Images = Annotated[list[Url], Field(max_length=MAX_IMAGES)]
# Kilograms: a number or a string, >= 0, at most 3 decimals (pydantic reads floats by repr).
Weight = Annotated[Decimal, Field(ge=0, le=MAX_WEIGHT, decimal_places=3)]
# An object such as {"length": 14.7, "width": 7.1, "height": 0.8, "unit": "cm"}.
Dimensions = Annotated[
    dict[Annotated[str, StringConstraints(min_length=1, max_length=30)], Any],
    Field(max_length=MAX_DIMENSIONS),
    AfterValidator(_dimension_values),
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": MAX_DIMENSIONS,
            "propertyNames": {"minLength": 1, "maxLength": 30},
            "additionalProperties": {
                "anyOf": [{"type": "number"}, {"type": "string", "maxLength": 50}]
            },
        }
    ),
]
# Weight leaves as a string with three decimals ("0.187"), as PostgreSQL DECIMALs did.
WeightOut = Annotated[Decimal, PlainSerializer(str, return_type=str, when_used="json")]


class ProductBody(RequestModel):
    """Product bodies reject what they do not know: a misspelt field is an error, not a
    silently ignored change."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_alias=True, extra="forbid")


class ProductCreate(ProductBody):
    name: Name
    description: Description | None = None
    price: MoneyInput
    stock: Stock = 0
    category: Category | None = None
    image_url: Url | None = None
    images: Images = []
    sku: Sku | None = None
    weight: Weight | None = None
    dimensions: Dimensions | None = None
    is_active: StrictBool = True  # JSON true or false only


def _one_of_delta_and_stock(schema: dict[str, Any], _: type) -> None:
    without_null(schema, {"delta", "stock"})
    schema["oneOf"] = [{"required": ["delta"]}, {"required": ["stock"]}]


# What PUT may not set to null: the column has no "nothing" (send [] to clear images).
NOT_NULLABLE = frozenset({"name", "price", "stock", "images", "is_active"})


class ProductUpdate(ProductBody):
    """PUT: only the fields sent change. Every product field may be sent, sku included."""

    # None is "not sent" for the NOT_NULLABLE fields: their null is refused (_not_null), and
    # the document does not offer it (without_null).
    model_config = ProductBody.model_config | {
        "json_schema_extra": lambda schema, _: without_null(schema, NOT_NULLABLE)
    }

    name: Name | None = None
    description: Description | None = None
    price: MoneyInput | None = None
    stock: Stock | None = None
    category: Category | None = None
    image_url: Url | None = None
    images: Images | None = None
    sku: Sku | None = None
    weight: Weight | None = None
    dimensions: Dimensions | None = None
    is_active: StrictBool | None = None

    @field_validator(*NOT_NULLABLE, mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may not be null")
        return value

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class StockChange(RequestModel):
    """Admin restock: `{"delta": 5}` (add or take) or `{"stock": 40}` (set), exactly one."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_alias=True,
        extra="forbid",
        json_schema_extra=_one_of_delta_and_stock,
    )

    delta: Delta | None = None
    stock: Stock | None = None

    @field_validator("delta", "stock", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Left out, not null: the document's oneOf names the field that is sent.
        if value is None:
            raise ValueError("may not be null")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.delta is None) == (self.stock is None):
            raise ValueError("send exactly one of delta and stock")
        return self


class ProductOut(CamelModel):
    id: uuid.UUID
    name: str
    description: str | None
    price: Money
    stock: int
    category: str | None
    image_url: str | None
    images: list[str]
    sku: str | None
    weight: WeightOut | None
    dimensions: dict[str, Any] | None
    is_active: bool
    created_at: datetime
    updated_at: datetime


class ProductEnvelope(CamelModel):
    product: ProductOut


class MessageWithProduct(CamelModel):
    message: str
    product: ProductOut


class Message(CamelModel):
    message: str


class ProductList(CamelModel):
    products: list[ProductOut]
    total_pages: int
    current_page: int
    total_products: int


Sort = Literal["newest", "price_asc", "price_desc", "name", "stock_asc"]


# --- Internal ---------------------------------------------------------------------------


# Internal bodies ignore fields they do not know (RequestModel's default): a neighbour that
# sends more than needed (an order line's `productName`) is not refused for it.
class StockItem(RequestModel):
    product_id: uuid.UUID
    quantity: Quantity


class CheckStockRequest(RequestModel):
    items: Annotated[list[StockItem], Field(min_length=1, max_length=MAX_ITEMS_PER_CALL)]


class StockAvailable(CamelModel):
    product_id: uuid.UUID
    available: Literal[True] = True
    stock: int
    price: Money


class StockUnavailable(CamelModel):
    product_id: uuid.UUID
    available: Literal[False] = False
    error: str


class CheckStockResponse(CamelModel):
    available: bool
    items: list[StockAvailable | StockUnavailable]


class LookupRequest(RequestModel):
    product_ids: Annotated[list[uuid.UUID], Field(max_length=MAX_ITEMS_PER_CALL)]


class ProductSummary(CamelModel):
    id: uuid.UUID
    name: str
    price: Money
    stock: int
    image_url: str | None
    is_active: bool


class LookupResponse(CamelModel):
    products: list[ProductSummary]


class ReserveRequest(RequestModel):
    order_id: uuid.UUID
    items: Annotated[list[StockItem], Field(min_length=1, max_length=MAX_ITEMS_PER_CALL)]


class ReservedItem(CamelModel):
    product_id: uuid.UUID
    name: str
    price: Money
    quantity: int


class ReserveResponse(CamelModel):
    order_id: uuid.UUID
    items: list[ReservedItem]


class ReleaseRequest(RequestModel):
    order_id: uuid.UUID


class ReleaseResponse(CamelModel):
    order_id: uuid.UUID
    released: bool


class UpdateStockRequest(RequestModel):
    product_id: uuid.UUID
    quantity: Delta
