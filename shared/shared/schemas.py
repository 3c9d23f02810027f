"""Wire-format building blocks: camelCase JSON both ways, money as strings with
two decimals, the original's pagination envelope fields."""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated

from fastapi import Depends, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer
from pydantic.alias_generators import to_camel

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


MAX_MONEY = Decimal("9999999999.99")  # NUMERIC(12, 2)


def parse_money(value: object) -> Decimal:
    """A money amount from a client: a JSON number or a string, at least 0, at most two
    decimals. JSON numbers arrive as floats; their shortest repr is read, never the binary
    value (19.99 is 19.99, not 19.989999...)."""
    if isinstance(value, bool) or value is None:
        raise ValueError("must be a decimal number")
    text = repr(value) if isinstance(value, float) else str(value).strip()
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError("must be a decimal number") from None
    if not amount.is_finite():
        raise ValueError("must be a decimal number")
    if amount < 0:
        raise ValueError("must be 0 or more")
    if amount != amount.quantize(CENTS):
        raise ValueError("must have at most 2 decimal places")
    if amount > MAX_MONEY:
        raise ValueError(f"must be at most {MAX_MONEY}")
    return amount.quantize(CENTS)


# Money into the system: "150000", 150000, 1500.5, "1500.50" -> Decimal("1500.50").
MoneyInput = Annotated[Decimal, BeforeValidator(parse_money)]


def money_str(value: Decimal) -> str:
    return str(value.quantize(CENTS, rounding=ROUND_HALF_UP))


# Money leaves the system as a string with two decimals ("150000.00"), never a float.
Money = Annotated[Decimal, PlainSerializer(money_str, return_type=str, when_used="json")]


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
