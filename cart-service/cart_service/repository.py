"""The cart service's queries."""

import uuid
from datetime import datetime

from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cart_service.models import Cart, CartItem
from shared.db import DirectStatement, HotPath, affected_rows, object_of, table_of


async def create_cart_if_absent(
    session: AsyncSession, user_id: uuid.UUID, *, expires_at: datetime
) -> None:
    """Concurrent first visits of one user make one cart (unique `user_id`)."""
    await session.execute(
        insert(Cart)
        .values(id=uuid.uuid4(), user_id=user_id, expires_at=expires_at)
        .on_conflict_do_nothing(index_elements=[Cart.user_id])
    )


# Built once: an ORM statement costs more to build and key for the cache than to run.
_CART_OF_USER = (
    select(Cart)
    .where(Cart.user_id == bindparam("user_id"))
    .execution_options(populate_existing=True)
)
_LINES_OF_CART = (
    select(CartItem)
    .where(CartItem.cart_id == bindparam("cart_id"))
    .order_by(CartItem.created_at, CartItem.id)
    .execution_options(populate_existing=True)
)


async def get_cart(session: AsyncSession, user_id: uuid.UUID) -> Cart | None:
    return await session.scalar(_CART_OF_USER, {"user_id": user_id})


# The cart's read, the service's busiest statement, with asyncpg itself (shared.db.HotPath):
# through the session and the ORM it was most of a GET /api/cart. Each row is the cart's
# columns (cart_*) and one line's (item_*, all null for an empty cart).
_CARTS, _ITEMS = table_of(Cart), table_of(CartItem)
_READ_CART_WITH_LINES = DirectStatement.of(
    select(
        *(column.label(f"cart_{column.name}") for column in _CARTS.c),
        *(column.label(f"item_{column.name}") for column in _ITEMS.c),
    )
    .select_from(_CARTS.outerjoin(_ITEMS, _ITEMS.c.cart_id == _CARTS.c.id))
    .where(_CARTS.c.user_id == bindparam("owner"))
    .order_by(_ITEMS.c.created_at, _ITEMS.c.id)
)


async def read_cart_with_items(
    hot_path: HotPath, user_id: uuid.UUID
) -> tuple[Cart, list[CartItem]] | None:
    """The user's cart and its lines in the order they were added, in one query: objects
    of no session (to read, never to change)."""
    statement = _READ_CART_WITH_LINES
    rows = await hot_path.fetch(statement.sql, *statement.args(owner=user_id))
    if not rows:
        return None
    cart = object_of(Cart, rows[0], prefix="cart_")
    items = [object_of(CartItem, row, prefix="item_") for row in rows if row["item_id"] is not None]
    return cart, items


async def lock_or_create_cart(
    session: AsyncSession, user_id: uuid.UUID, *, expires_at: datetime
) -> Cart:
    """The user's cart, created if absent, locked until the transaction ends: every change
    of one cart waits for the one before, so each sees all the lines committed before it.
    (An upsert rather than SELECT ... FOR UPDATE: it also holds when the expiry purge
    deletes the row at the same moment.)"""
    statement = (
        insert(Cart)
        .values(id=uuid.uuid4(), user_id=user_id, expires_at=expires_at)
        .on_conflict_do_update(index_elements=[Cart.user_id], set_={"user_id": user_id})
        .returning(Cart)
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(statement)).one()


async def list_items(session: AsyncSession, cart_id: uuid.UUID) -> list[CartItem]:
    """A cart's lines in the order they were added."""
    return list(await session.scalars(_LINES_OF_CART, {"cart_id": cart_id}))


async def get_item_of_user(
    session: AsyncSession, user_id: uuid.UUID, item_id: uuid.UUID
) -> CartItem | None:
    """A line, only if it is in this user's cart."""
    return await session.scalar(
        select(CartItem)
        .join(Cart, Cart.id == CartItem.cart_id)
        .where(CartItem.id == item_id, Cart.user_id == user_id)
    )


async def delete_item(session: AsyncSession, item: CartItem) -> None:
    await session.delete(item)


async def delete_items(session: AsyncSession, cart_id: uuid.UUID) -> None:
    await session.execute(
        delete(CartItem).where(CartItem.cart_id == cart_id),
        execution_options={"synchronize_session": False},
    )


async def delete_expired_carts(session: AsyncSession, *, now: datetime, limit: int) -> int:
    """Deletes up to `limit` expired carts (their lines go with them); carts that another
    transaction holds (a change in progress, another replica's purge) are skipped."""
    expired = (
        select(Cart.id)
        .where(Cart.expires_at <= now)
        .order_by(Cart.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    result = await session.execute(
        delete(Cart).where(Cart.id.in_(expired)),
        execution_options={"synchronize_session": False},
    )
    return affected_rows(result)
