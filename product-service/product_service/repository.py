"""The product service's queries."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

import asyncpg
from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    ColumnExpressionArgument,
    Select,
    Uuid,
    any_,
    bindparam,
    cast,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from product_service.models import (
    Product,
    ReservationStatus,
    StockReservation,
    StockReservationItem,
)
from product_service.schemas import MAX_STOCK
from shared.db import DirectStatement, table_of

LIKE_ESCAPE = "\\"


@dataclass(frozen=True)
class CatalogueQuery:
    category: str | None = None
    search: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    max_stock: int | None = None
    sort: str = "newest"
    include_inactive: bool = False


def contains_pattern(text: str) -> str:
    """An ILIKE pattern matching `text` anywhere, its own `%`, `_` and `\\` taken literally."""
    escaped = (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )
    return f"%{escaped}%"


# Every order ends in the id: rows with equal keys keep one order from page to page. Each
# matches an index of models.Product (`lower(name)`: the databases collate byte-wise).
SORT_ORDERS: dict[str, tuple[ColumnElement[Any], ColumnElement[Any]]] = {
    "newest": (Product.created_at.desc(), Product.id.desc()),
    "price_asc": (Product.price.asc(), Product.id.asc()),
    "price_desc": (Product.price.desc(), Product.id.desc()),
    "name": (func.lower(Product.name).asc(), Product.id.asc()),
    "stock_asc": (Product.stock.asc(), Product.id.asc()),
}


def _conditions(query: CatalogueQuery) -> list[ColumnExpressionArgument[bool]]:
    conditions: list[ColumnExpressionArgument[bool]] = []
    if not query.include_inactive:
        # Plain `is_active` (not `IS TRUE`): the predicate of the partial indexes, word for
        # word, so that the planner can prove they apply.
        conditions.append(Product.is_active)
    if query.category:
        conditions.append(Product.category == query.category)
    if query.search:
        pattern = contains_pattern(query.search)
        conditions.append(
            or_(
                Product.name.ilike(pattern, escape=LIKE_ESCAPE),
                Product.description.ilike(pattern, escape=LIKE_ESCAPE),
            )
        )
    if query.min_price is not None:
        conditions.append(Product.price >= query.min_price)
    if query.max_price is not None:
        conditions.append(Product.price <= query.max_price)
    if query.max_stock is not None:
        conditions.append(Product.stock <= query.max_stock)
    return conditions


def catalogue_statement(query: CatalogueQuery, *, offset: int, limit: int) -> Select[Product]:
    return (
        select(Product)
        .where(*_conditions(query))
        .order_by(*SORT_ORDERS[query.sort])
        .offset(offset)
        .limit(limit)
    )


def catalogue_count_statement(query: CatalogueQuery) -> Select[int]:
    return select(func.count()).select_from(Product).where(*_conditions(query))


def catalogue_page_with_count_statement(
    query: CatalogueQuery, *, offset: int, limit: int
) -> Select[Product, int]:
    """The page, each row with the number of all matches: the count is an uncorrelated
    subquery, which PostgreSQL runs once (an InitPlan), so page and count are one round
    trip, each still with its own plan (the page walks the index and stops at `limit`)."""
    total = catalogue_count_statement(query).scalar_subquery().label("total")
    return catalogue_statement(query, offset=offset, limit=limit).add_columns(total)


async def list_products(
    session: AsyncSession, query: CatalogueQuery, *, offset: int, limit: int
) -> tuple[list[Product], int]:
    statement = catalogue_page_with_count_statement(query, offset=offset, limit=limit)
    rows = (await session.execute(statement)).all()
    if rows:
        return [product for product, _ in rows], rows[0][1]
    # An empty page (nothing matches, or past the last page) carries no count: ask for it.
    return [], await session.scalar(catalogue_count_statement(query)) or 0


# Built once: an ORM statement costs more to build and key for the cache than to run.
_PRODUCT_BY_ID = select(Product).where(Product.id == bindparam("product_id"))


async def get_product(session: AsyncSession, product_id: uuid.UUID) -> Product | None:
    return await session.scalar(_PRODUCT_BY_ID, {"product_id": product_id})


async def get_products(session: AsyncSession, product_ids: Sequence[uuid.UUID]) -> list[Product]:
    if not product_ids:
        return []
    result = await session.scalars(select(Product).where(Product.id.in_(set(product_ids))))
    return list(result)


async def add_to_stock(session: AsyncSession, product_id: uuid.UUID, delta: int) -> Product | None:
    """Adds `delta` (negative takes) in one statement, unless the stock would go below 0
    or past the column's limit. None when nothing changed (no such product, not enough
    stock, or too much)."""
    # Summed as a bigint: an INTEGER sum past 2^31-1 is an error, not a false condition.
    new_stock = cast(Product.stock, BigInteger) + delta
    return await session.scalar(
        update(Product)
        .where(Product.id == product_id, new_stock >= 0, new_stock <= MAX_STOCK)
        .values(stock=Product.stock + delta, updated_at=func.now())
        .returning(Product)
        .execution_options(populate_existing=True)
    )


async def set_stock(session: AsyncSession, product_id: uuid.UUID, stock: int) -> Product | None:
    return await session.scalar(
        update(Product)
        .where(Product.id == product_id)
        .values(stock=stock, updated_at=func.now())
        .returning(Product)
        .execution_options(populate_existing=True)
    )


# The reservation's statements (an order runs each of them), with asyncpg itself
# (shared.db.HotPath): through the ORM they were most of the service's time per order.
_PRODUCTS = table_of(Product)
_ITEMS = table_of(StockReservationItem)
_RESERVATIONS = table_of(StockReservation)
_WANTED = bindparam("product_ids", type_=ARRAY(Uuid()))
_CLAIM_RESERVATION = DirectStatement.of(
    insert(_RESERVATIONS)
    .values(
        order_id=bindparam("reserved_for"),
        status=bindparam("active"),
        caller=bindparam("reserving_caller"),
    )
    .on_conflict_do_nothing(index_elements=[_RESERVATIONS.c.order_id])
    .returning(_RESERVATIONS.c.order_id)
)
# The take and the line it records in one statement: the product's row stays locked from
# there to the commit, with nothing in between; the line records the name and price the
# take found.
_TAKEN = (
    update(_PRODUCTS)
    .where(
        _PRODUCTS.c.id == bindparam("product_id"),
        _PRODUCTS.c.stock >= bindparam("quantity"),
        _PRODUCTS.c.is_active.is_(True),
    )
    .values(stock=_PRODUCTS.c.stock - bindparam("quantity"), updated_at=func.now())
    .returning(_PRODUCTS.c.name, _PRODUCTS.c.price)
    .cte("taken")
)
_TAKE_STOCK_FOR_LINE = DirectStatement.of(
    insert(_ITEMS)
    .from_select(
        ["order_id", "product_id", "position", "quantity", "unit_price", "product_name"],
        select(
            bindparam("reserved_for", type_=_ITEMS.c.order_id.type),
            bindparam("product_id", type_=_ITEMS.c.product_id.type),
            bindparam("line_position", type_=_ITEMS.c.position.type),
            bindparam("quantity", type_=_ITEMS.c.quantity.type),
            _TAKEN.c.price,
            _TAKEN.c.name,
        ),
    )
    .returning(*_ITEMS.c)
)
_AVAILABLE_STOCK = DirectStatement.of(
    select(_PRODUCTS.c.id, _PRODUCTS.c.stock).where(
        _PRODUCTS.c.id == any_(_WANTED), _PRODUCTS.c.is_active.is_(True)
    )
)
_RESERVATION_STATUS = DirectStatement.of(
    select(_RESERVATIONS.c.status).where(_RESERVATIONS.c.order_id == bindparam("reserved_for"))
)
_RESERVATION_LINES = DirectStatement.of(
    select(_ITEMS).where(_ITEMS.c.order_id == bindparam("reserved_for")).order_by(_ITEMS.c.position)
)


@dataclass(frozen=True)
class ReservedLine:
    """A line of a reservation as written (the row, not an ORM object)."""

    product_id: uuid.UUID
    position: int
    quantity: int
    unit_price: Decimal
    product_name: str


async def claim_reservation(
    connection: asyncpg.Connection, order_id: uuid.UUID, caller: str
) -> bool:
    """Inserts the order's reservation row unless there is one. A concurrent call for the
    same order waits here until the first one commits (then finds its row) or rolls back
    (then claims it itself): only one ever takes stock."""
    statement = _CLAIM_RESERVATION
    claimed = await connection.fetchval(
        statement.sql,
        *statement.args(
            reserved_for=order_id, active=ReservationStatus.ACTIVE, reserving_caller=caller
        ),
    )
    return claimed is not None


async def take_stock_for_line(
    connection: asyncpg.Connection,
    order_id: uuid.UUID,
    product_id: uuid.UUID,
    position: int,
    quantity: int,
) -> ReservedLine | None:
    """Takes `quantity` of an active product and records the order's line with the name
    and price the take found, in one conditional statement (the row lock it takes
    serialises concurrent takers; each sees the stock the previous one left). None, and
    nothing written, when the product is unknown, inactive or short."""
    statement = _TAKE_STOCK_FOR_LINE
    row = await connection.fetchrow(
        statement.sql,
        *statement.args(
            reserved_for=order_id, product_id=product_id, line_position=position, quantity=quantity
        ),
    )
    return None if row is None else _reserved_line(row)


def _reserved_line(row: asyncpg.Record) -> ReservedLine:
    return ReservedLine(**{field.name: row[field.name] for field in fields(ReservedLine)})


async def available_stock(
    connection: asyncpg.Connection, product_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """What each product could give now (0 when unknown or inactive)."""
    statement = _AVAILABLE_STOCK
    rows = await connection.fetch(statement.sql, *statement.args(product_ids=list(product_ids)))
    return {row["id"]: row["stock"] for row in rows}


async def reservation_status(connection: asyncpg.Connection, order_id: uuid.UUID) -> str | None:
    statement = _RESERVATION_STATUS
    status: str | None = await connection.fetchval(
        statement.sql, *statement.args(reserved_for=order_id)
    )
    return status


async def reservation_lines(
    connection: asyncpg.Connection, order_id: uuid.UUID
) -> list[ReservedLine]:
    """The reservation's lines, in the order's order."""
    statement = _RESERVATION_LINES
    rows = await connection.fetch(statement.sql, *statement.args(reserved_for=order_id))
    return [_reserved_line(row) for row in rows]


async def return_stock(session: AsyncSession, product_id: uuid.UUID, quantity: int) -> None:
    await session.execute(
        update(Product)
        .where(Product.id == product_id)
        .values(stock=Product.stock + quantity, updated_at=func.now())
    )


async def mark_released(session: AsyncSession, order_id: uuid.UUID) -> bool:
    """Active -> released in one conditional statement: of two concurrent releases, the
    second waits for the first's row lock, then finds it released and changes nothing."""
    released = await session.scalar(
        update(StockReservation)
        .where(
            StockReservation.order_id == order_id,
            StockReservation.status == ReservationStatus.ACTIVE,
        )
        .values(status=ReservationStatus.RELEASED, released_at=func.now())
        .returning(StockReservation.order_id)
    )
    return released is not None


async def reservation_items(
    session: AsyncSession, order_id: uuid.UUID
) -> list[StockReservationItem]:
    result = await session.scalars(
        select(StockReservationItem)
        .where(StockReservationItem.order_id == order_id)
        .order_by(StockReservationItem.product_id)
    )
    return list(result)


async def insert_released_reservation(
    session: AsyncSession, order_id: uuid.UUID, caller: str
) -> bool:
    """Records the order's reservation as released, unless the order has one. True when
    there was none: a reservation for that order arriving later (a retry that crossed the
    release) then takes nothing. Waits for an uncommitted reservation of the order."""
    inserted = await session.scalar(
        insert(StockReservation)
        .values(
            order_id=order_id,
            status=ReservationStatus.RELEASED,
            caller=caller,
            released_at=func.now(),
        )
        .on_conflict_do_nothing(index_elements=[StockReservation.order_id])
        .returning(StockReservation.order_id)
    )
    return inserted is not None
