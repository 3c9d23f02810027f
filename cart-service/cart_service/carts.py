"""The cart's rules.

- Name, price and image of a line come from the product service, never from the client.
- A change (add, update, remove, clear) runs in one short transaction holding the cart's
  row lock, so changes of one cart happen one after the other; the product service is
  asked before that transaction, never inside it.
- A line's `subtotal` and the cart's `totalAmount` and `itemCount` are computed in
  Decimal from the lines and written with every change.
- What a client sees is the stored cart refreshed with the current catalogue (see
  `render_cart`); when the product service cannot answer, the stored lines as they are.

The routes' operations take the service's state: each runs its own short transactions
around the product service's answer.
"""

import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from cart_service import repository
from cart_service.config import CartSettings
from cart_service.exceptions import (
    CartIsEmpty,
    CartItemNotFound,
    CartTotalTooLarge,
    InsufficientStock,
    ProductNotFound,
    ProductServiceUnavailable,
)
from cart_service.models import Cart, CartItem
from cart_service.product_client import Catalogue
from cart_service.schemas import MAX_QUANTITY, CartItemOut, CartOut, CatalogueProduct
from cart_service.state import CartState
from shared.errors import BadRequest
from shared.schemas import CENTS, MAX_MONEY

logger = logging.getLogger(__name__)

MIN_QUANTITY = 1
# Different products in one cart: what one call of the product lookup answers.
MAX_LINES = 100
PURGE_BATCH = 500
ZERO = Decimal("0.00")


def check_quantity(quantity: int) -> None:
    if quantity < MIN_QUANTITY:
        raise BadRequest("Quantity must be at least 1")
    if quantity > MAX_QUANTITY:
        raise BadRequest(f"Quantity must be at most {MAX_QUANTITY}")


def available_product(catalogue: Catalogue, product_id: uuid.UUID) -> CatalogueProduct:
    product = catalogue.get(product_id)
    if product is None or not product.is_active:
        raise ProductNotFound()
    return product


def check_stock(quantity: int, product: CatalogueProduct) -> None:
    """The quantity a line would hold, against the product's stock now."""
    check_quantity(quantity)
    if quantity > product.stock:
        raise InsufficientStock(product.stock)


def line_subtotal(price: Decimal, quantity: int) -> Decimal:
    return (price * quantity).quantize(CENTS)


def _now() -> datetime:
    return datetime.now(UTC)


def render_cart(cart: Cart, items: Sequence[CartItem], catalogue: Catalogue | None) -> CartOut:
    """The cart as a client sees it. A line whose product the catalogue holds shows the
    product's current name, price and image (`priceChanged` when the price is not the
    stored one); a line whose product is inactive or unknown keeps its stored values, is
    `unavailable` and is left out of the totals. With no catalogue (product service
    down) every line is shown as stored and `pricesRefreshed` is false."""
    lines: list[CartItemOut] = []
    total_amount, item_count = ZERO, 0
    refreshed = catalogue is not None
    for item in items:
        name, price, image_url = item.product_name, item.price, item.image_url
        unavailable = False
        if catalogue is None or item.product_id not in catalogue:
            # Not asked about (product service down, or added by a concurrent request).
            refreshed = False
        else:
            product = catalogue[item.product_id]
            if product is None or not product.is_active:
                unavailable = True
            else:
                name, price, image_url = product.name, product.price, product.image_url
        subtotal = line_subtotal(price, item.quantity)
        price_changed = price != item.price
        lines.append(
            CartItemOut(
                id=item.id,
                cart_id=item.cart_id,
                product_id=item.product_id,
                product_name=name,
                price=price,
                quantity=item.quantity,
                subtotal=subtotal,
                image_url=image_url,
                price_changed=price_changed,
                previous_price=item.price if price_changed else None,
                unavailable=unavailable,
                created_at=item.created_at,
                updated_at=item.updated_at,
            )
        )
        if not unavailable:
            total_amount += subtotal
            item_count += item.quantity
    return CartOut(
        id=cart.id,
        user_id=cart.user_id,
        total_amount=total_amount,
        item_count=item_count,
        expires_at=cart.expires_at,
        items=lines,
        prices_refreshed=refreshed,
        created_at=cart.created_at,
        updated_at=cart.updated_at,
    )


# --- the routes' operations -----------------------------------------------------------


async def get(state: CartState, user_id: uuid.UUID) -> CartOut:
    """The user's cart (created empty on first use), at current prices if possible. A cart
    that exists and has not expired is read without a transaction (one query, one round
    trip, asyncpg's); creating one, or emptying an expired one, takes the transaction."""
    found = await repository.read_cart_with_items(state.hot_path, user_id)
    if found is not None and found[0].expires_at > _now():
        cart, items = found
    else:
        async with _transaction(state) as session:
            cart = await _open_cart(session, state.settings, user_id)
            items = await repository.list_items(session, cart.id)
    return render_cart(cart, items, await _refresh(state, items))


async def add_item(
    state: CartState, user_id: uuid.UUID, product_id: uuid.UUID, quantity: int
) -> CartOut:
    """Adds `quantity` of a product; a product already in the cart gets the quantity added
    to its line."""
    check_quantity(quantity)
    async with _transaction(state) as session:
        cart = await _open_cart(session, state.settings, user_id)
        in_cart = [item.product_id for item in await repository.list_items(session, cart.id)]
    catalogue = await _lookup(state, [*in_cart, product_id])
    product = available_product(catalogue, product_id)

    async with _transaction(state) as session:
        cart = await _lock_cart(session, state.settings, user_id)
        items = await repository.list_items(session, cart.id)
        line = next((item for item in items if item.product_id == product_id), None)
        if line is None:
            if len(items) >= MAX_LINES:
                raise BadRequest(f"A cart holds at most {MAX_LINES} different products")
            check_stock(quantity, product)
            line = CartItem(cart_id=cart.id, product_id=product_id, quantity=quantity)
            session.add(line)
            items.append(line)
        else:
            check_stock(line.quantity + quantity, product)
            line.quantity += quantity
        _take_product(line, product)
        await _save_totals(session, state.settings, cart, items)
    logger.info(
        "item added to cart",
        extra={"cartId": str(cart.id), "productId": str(product_id), "quantity": quantity},
    )
    return render_cart(cart, items, catalogue)


async def update_item(
    state: CartState, user_id: uuid.UUID, item_id: uuid.UUID, quantity: int
) -> CartOut:
    """Sets a line's quantity and takes the product's current name, price and image."""
    check_quantity(quantity)
    async with _transaction(state) as session:
        item = await repository.get_item_of_user(session, user_id, item_id)
        if item is None:
            raise CartItemNotFound()
        in_cart = [line.product_id for line in await repository.list_items(session, item.cart_id)]
    catalogue = await _lookup(state, in_cart)
    product = available_product(catalogue, item.product_id)
    check_stock(quantity, product)

    async with _transaction(state) as session:
        cart = await _lock_cart(session, state.settings, user_id)
        items = await repository.list_items(session, cart.id)
        line = next((line for line in items if line.id == item_id), None)
        if line is None:  # removed since
            raise CartItemNotFound()
        line.quantity = quantity
        _take_product(line, product)
        await _save_totals(session, state.settings, cart, items)
    return render_cart(cart, items, catalogue)


async def remove_item(state: CartState, user_id: uuid.UUID, item_id: uuid.UUID) -> CartOut:
    async with _transaction(state) as session:
        cart = await _lock_cart(session, state.settings, user_id)
        items = await repository.list_items(session, cart.id)
        line = next((line for line in items if line.id == item_id), None)
        if line is None:
            raise CartItemNotFound()
        await repository.delete_item(session, line)
        items.remove(line)
        await _save_totals(session, state.settings, cart, items)
    return render_cart(cart, items, await _refresh(state, items))


async def clear(state: CartState, user_id: uuid.UUID) -> CartOut:
    async with _transaction(state) as session:
        cart = await _lock_cart(session, state.settings, user_id)
        await repository.delete_items(session, cart.id)
        await _save_totals(session, state.settings, cart, [])
    return render_cart(cart, [], {})


async def checkout(state: CartState, user_id: uuid.UUID) -> CartOut:
    """The cart the order service is about to order from; never created here."""
    async with _transaction(state) as session:
        cart = await repository.get_cart(session, user_id)
        expired = cart is None or cart.expires_at <= _now()
        items = [] if cart is None or expired else await repository.list_items(session, cart.id)
    if cart is None or not items:
        raise CartIsEmpty()
    return render_cart(cart, items, await _refresh(state, items))


# --- helpers -------------------------------------------------------------------------------


@asynccontextmanager
async def _transaction(state: CartState) -> AsyncIterator[AsyncSession]:
    async with state.sessionmaker() as session, session.begin():
        yield session


def _expiry(settings: CartSettings) -> datetime:
    return _now() + timedelta(days=settings.cart_expiry_days)


async def _open_cart(session: AsyncSession, settings: CartSettings, user_id: uuid.UUID) -> Cart:
    """The user's cart for reading, created on first use; an expired cart is emptied first
    (under its lock)."""
    cart = await repository.get_cart(session, user_id)
    if cart is None:
        await repository.create_cart_if_absent(session, user_id, expires_at=_expiry(settings))
        cart = await repository.get_cart(session, user_id)
    if cart is None or cart.expires_at <= _now():
        # Purged at this very moment, or expired: the locked path handles both.
        cart = await _lock_cart(session, settings, user_id)
    return cart


async def _lock_cart(session: AsyncSession, settings: CartSettings, user_id: uuid.UUID) -> Cart:
    cart = await repository.lock_or_create_cart(session, user_id, expires_at=_expiry(settings))
    if cart.expires_at <= _now():
        await repository.delete_items(session, cart.id)
        await _save_totals(session, settings, cart, [])
        logger.info("expired cart emptied", extra={"cartId": str(cart.id)})
    return cart


def _take_product(line: CartItem, product: CatalogueProduct) -> None:
    line.product_name = product.name
    line.price = product.price
    line.image_url = product.image_url
    line.subtotal = line_subtotal(product.price, line.quantity)
    if line.subtotal > MAX_MONEY:
        raise CartTotalTooLarge()


async def _save_totals(
    session: AsyncSession, settings: CartSettings, cart: Cart, items: Sequence[CartItem]
) -> None:
    """Totals from the lines, and a new expiry: every change keeps the cart alive."""
    total_amount = sum((item.subtotal for item in items), ZERO)
    if total_amount > MAX_MONEY:
        raise CartTotalTooLarge()
    cart.total_amount = total_amount
    cart.item_count = sum(item.quantity for item in items)
    cart.expires_at = _expiry(settings)
    await session.flush()


async def _lookup(state: CartState, product_ids: Sequence[uuid.UUID]) -> Catalogue:
    """For a change: the product service must answer (503 otherwise)."""
    return await state.products.lookup(product_ids, timeout=state.settings.service_timeout)


async def _refresh(state: CartState, items: Sequence[CartItem]) -> Catalogue | None:
    """For a read: recent prices (at most CART_PRICE_MAX_AGE old) if the product service
    answers soon, else None."""
    try:
        return await state.products.lookup_recent(
            [item.product_id for item in items], timeout=state.settings.price_refresh_timeout
        )
    except ProductServiceUnavailable:
        return None


# --- the purge worker ------------------------------------------------------------------


async def purge_expired_carts(state: CartState) -> int:
    """The purge worker's job: deletes expired carts (with their lines), in batches. Safe
    with several replicas: each batch skips the carts another transaction holds."""
    purged = 0
    while True:
        async with state.sessionmaker() as session, session.begin():
            deleted = await repository.delete_expired_carts(session, now=_now(), limit=PURGE_BATCH)
        purged += deleted
        if deleted < PURGE_BATCH:
            break
    if purged:
        logger.info("expired carts purged", extra={"count": purged})
    return purged
