"""Wire-format building blocks: camelCase JSON both ways, money as strings with
two decimals, the original's pagination envelope fields."""

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, ConfigDict, PlainSerializer
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


def money_str(value: Decimal) -> str:
    return str(value.quantize(CENTS, rounding=ROUND_HALF_UP))


# Money leaves the system as a string with two decimals ("150000.00"), never a float.
Money = Annotated[Decimal, PlainSerializer(money_str, return_type=str, when_used="json")]


class Page:
    """`page` (>= 1) and `limit` (1-100) query parameters, validated (400 otherwise)."""

    def __init__(
        self,
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> None:
        self.page = page
        self.limit = limit

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit

    def total_pages(self, total: int) -> int:
        return (total + self.limit - 1) // self.limit
