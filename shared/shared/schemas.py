"""Wire-format building blocks: camelCase JSON both ways, money as strings with
two decimals, the original's pagination envelope fields."""

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
)
from pydantic.alias_generators import to_camel

from shared.text_guard import MESSAGE as UNSTORABLE_TEXT
from shared.text_guard import contains_unstorable

CENTS = Decimal("0.01")


class CamelModel(BaseModel):
    """Python attributes in snake_case, JSON in camelCase (`phone_number` <-> `phoneNumber`)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        from_attributes=True,
    )


class RequestModel(CamelModel):
    """A request body: accepted in camelCase only; unknown fields are ignored (as the original)
    unless a model says `extra="forbid"`."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=False, validate_by_alias=True, extra="ignore"
    )

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: object) -> object:
        """Every field, whatever its type: text PostgreSQL cannot store is a 400 naming the
        field, never a database error (shared.text_guard)."""
        if contains_unstorable(value):
            raise ValueError(UNSTORABLE_TEXT)
        return value


def without_null(schema: dict[str, Any], fields: set[str] | frozenset[str]) -> None:
    """The document of a body whose `fields` may be left out but not sent as null (a
    model's `json_schema_extra`)."""
    for name in fields:
        field = schema["properties"].get(to_camel(name), {})
        kept = [option for option in field.pop("anyOf", []) if option != {"type": "null"}]
        if len(kept) == 1:
            field.update(kept[0])
        elif kept:
            field["anyOf"] = kept


MAX_MONEY = Decimal("9999999999.99")  # NUMERIC(12, 2)
# Money as text: digits, at most two decimals ("1500", "1500.5", "1500.50"). The document's
# pattern and the server's rule are this one expression.
MONEY_PATTERN = r"^[0-9]{1,10}(\.[0-9]{1,2})?$"
_MONEY_TEXT = re.compile(MONEY_PATTERN)


def parse_money(value: object) -> Decimal:
    """A money amount from a client: a JSON number or a string, at least 0, at most two
    decimals. JSON numbers arrive as floats; their shortest repr is read, never the binary
    value (19.99 is 19.99, not 19.989999...)."""
    if isinstance(value, bool) or value is None:
        raise ValueError("must be a decimal number")
    if isinstance(value, str) and not _MONEY_TEXT.match(value):
        if _MONEY_TEXT.match(value.strip().lstrip("+-")) and value.strip().startswith("-"):
            raise ValueError("must be 0 or more")
        raise ValueError("must be a decimal number with at most 2 decimal places, e.g. 1500.50")
    text = repr(value) if isinstance(value, float) else str(value)
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError("must be a decimal number") from None
    if not amount.is_finite():
        raise ValueError("must be a decimal number")
    if amount < 0:
        raise ValueError("must be 0 or more")
    # Bounds before quantizing: 1e26 has more digits than the context's precision, and
    # quantizing it would raise instead of answering a 400.
    if amount > MAX_MONEY:
        raise ValueError(f"must be at most {MAX_MONEY}")
    exponent = amount.as_tuple().exponent  # an int: the amount is finite
    if isinstance(exponent, int) and exponent < -2 and amount != amount.quantize(CENTS):
        raise ValueError("must have at most 2 decimal places")
    return amount.quantize(CENTS) + 0  # + 0: "-0" is 0.00, not -0.00


# Money into the system: "150000", 150000, 1500.5, "1500.50" -> Decimal("1500.50").
MoneyInput = Annotated[
    Decimal,
    BeforeValidator(parse_money),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "number",
                    "minimum": 0,
                    "maximum": float(MAX_MONEY),
                    "multipleOf": 0.01,
                },
                {"type": "string", "pattern": MONEY_PATTERN},
            ]
        }
    ),
]


def money_str(value: Decimal) -> str:
    return str(value.quantize(CENTS, rounding=ROUND_HALF_UP))


# Money leaves the system as a string with two decimals ("150000.00"), never a float.
Money = Annotated[Decimal, PlainSerializer(money_str, return_type=str, when_used="json")]


_ISO_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(?P<zone>[Zz]|[+-]\d{2}:?\d{2})?"
)


def _iso_date_time(value: object) -> object:
    """Only ISO 8601 text: pydantic alone would read `0.5` or `1700000000` as seconds since
    1970, a number no client means as a date."""
    if isinstance(value, str):
        match = _ISO_DATE_TIME.fullmatch(value.strip())
        if match is None:
            raise ValueError("must be an ISO 8601 date-time (e.g. 2026-01-31T00:00:00Z)")
        if match["zone"] is None:
            raise ValueError("must carry a timezone (e.g. Z)")
        return value.strip()
    raise ValueError("must be an ISO 8601 date-time (e.g. 2026-01-31T00:00:00Z)")


# A moment from a client (a query's `from`/`to`): ISO 8601 with its timezone, nothing else.
DateTimeInput = Annotated[AwareDatetime, BeforeValidator(_iso_date_time)]


@dataclass(frozen=True)
class Page:
    page: int
    limit: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit

    def total_pages(self, total: int) -> int:
        return (total + self.limit - 1) // self.limit


async def page_params(
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> Page:
    """`page` (>= 1) and `limit` (1-100) query parameters, validated (400 otherwise)."""
    return Page(page, limit)


PageDep = Annotated[Page, Depends(page_params)]
