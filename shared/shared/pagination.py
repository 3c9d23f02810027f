"""The repositories' one filtered, paginated list: how many rows meet the filters, and one
page of them, newest first.

    conditions = [equals(Payment.status, status), *created_within(Payment.created_at, a, b)]
    payments, total = await paginated(session, Payment, conditions, offset=0, limit=20)

A filter that was not given is None in `conditions` and filters nothing.
"""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.base import ExecutableOption

Model = TypeVar("Model")
Condition = ColumnElement[bool] | None


def equals(column: InstrumentedAttribute[Any], value: object | None) -> Condition:
    """`column = value`, or no filter when `value` is None."""
    return None if value is None else column == value


def created_within(
    column: InstrumentedAttribute[datetime], start: datetime | None, end: datetime | None
) -> list[Condition]:
    """[start, end): from `start` on and before `end`, each only when given."""
    return [
        None if start is None else column >= start,
        None if end is None else column < end,
    ]


async def paginated(
    session: AsyncSession,
    model: type[Model],
    conditions: Iterable[Condition],
    *,
    offset: int,
    limit: int,
    options: Sequence[ExecutableOption] = (),
) -> tuple[list[Model], int]:
    """The rows of `model` that meet every given condition, `limit` of them from `offset`
    on, newest first (created_at, then id: the same order on every page), and how many
    rows meet them in all. `options`: loader options for the page (its relationships)."""
    where = [condition for condition in conditions if condition is not None]
    columns: Any = model  # every listed model has created_at and id
    total = await session.scalar(select(func.count()).select_from(model).where(*where))
    page = await session.scalars(
        select(model)
        .where(*where)
        .order_by(columns.created_at.desc(), columns.id)
        .offset(offset)
        .limit(limit)
        .options(*options)
    )
    return list(page), total or 0
