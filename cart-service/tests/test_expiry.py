"""Cart expiry: every change moves `expiresAt` forward; an expired cart is empty; the
purge deletes expired carts."""

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import text

from cart_service.carts import purge_expired_carts
from cart_service.main import create_app
from cart_service.state import CartState
from shared.state import state_of
from shared.testing import started


def parse(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


async def expire(engine, user_id: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE carts SET expires_at = now() - interval '1 minute' WHERE user_id = :u"),
            {"u": user_id},
        )


async def test_every_change_moves_the_expiry_forward(
    add_to_cart, client, customer, neighbours, engine
):
    _, headers = customer
    created = (await client.get("/api/cart", headers=headers)).json()["cart"]
    expected = datetime.now(UTC) + timedelta(days=30)
    assert abs(parse(created["expiresAt"]) - expected) < timedelta(minutes=1)

    async with engine.begin() as connection:
        await connection.execute(text("UPDATE carts SET expires_at = now() + interval '1 day'"))
    cart = (await add_to_cart(headers, neighbours.add_product())).json()["cart"]
    assert abs(parse(cart["expiresAt"]) - expected) < timedelta(minutes=1)


async def test_the_expiry_is_a_setting(make_settings, make_user, neighbours):
    app = create_app(make_settings(CART_EXPIRY_DAYS="2"))
    _, headers = make_user()
    async with started(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cart") as client:
            cart = (await client.get("/api/cart", headers=headers)).json()["cart"]
    expected = datetime.now(UTC) + timedelta(days=2)
    assert abs(parse(cart["expiresAt"]) - expected) < timedelta(minutes=1)


async def test_an_expired_cart_is_empty_on_the_next_visit(
    add_to_cart, client, customer, neighbours, engine, db_rows
):
    user_id, headers = customer
    first = (await add_to_cart(headers, neighbours.add_product(price="10.00"), 2)).json()["cart"]
    await expire(engine, user_id)

    cart = (await client.get("/api/cart", headers=headers)).json()["cart"]
    assert cart["id"] == first["id"]
    assert cart["items"] == [] and cart["totalAmount"] == "0.00" and cart["itemCount"] == 0
    assert parse(cart["expiresAt"]) > datetime.now(UTC) + timedelta(days=29)
    assert await db_rows("SELECT id FROM cart_items") == []
    [stored] = await db_rows("SELECT item_count FROM carts")
    assert stored["item_count"] == 0


async def test_adding_to_an_expired_cart_starts_from_empty(
    add_to_cart, client, customer, neighbours, engine
):
    user_id, headers = customer
    old = neighbours.add_product(name="Old")
    new = neighbours.add_product(name="New", price="5.00")
    await add_to_cart(headers, old, 3)
    await expire(engine, user_id)
    cart = (await add_to_cart(headers, new, 1)).json()["cart"]
    assert [i["productName"] for i in cart["items"]] == ["New"]
    assert cart["itemCount"] == 1 and cart["totalAmount"] == "5.00"


async def test_an_expired_cart_cannot_be_checked_out(
    add_to_cart, client, customer, neighbours, engine, keys
):
    user_id, headers = customer
    await add_to_cart(headers, neighbours.add_product())
    await expire(engine, user_id)
    response = await client.post(
        "/api/internal/cart/checkout",
        json={"userId": user_id},
        headers=keys.internal_headers("order", "cart"),
    )
    assert response.status_code == 404
    assert response.json() == {"error": "Cart is empty"}


async def test_the_purge_deletes_expired_carts_only(
    add_to_cart, app, client, make_user, neighbours, engine, db_rows
):
    product_id = neighbours.add_product()
    users = [make_user() for _ in range(3)]
    for _, headers in users:
        await add_to_cart(headers, product_id)
    expired_ids = [users[0][0], users[1][0]]
    for user_id in expired_ids:
        await expire(engine, user_id)

    assert await purge_expired_carts(state_of(app, CartState)) == 2
    carts = await db_rows("SELECT user_id FROM carts")
    assert [str(c["user_id"]) for c in carts] == [users[2][0]]
    assert len(await db_rows("SELECT id FROM cart_items")) == 1
    assert await purge_expired_carts(state_of(app, CartState)) == 0

    # A purged user simply gets a new, empty cart.
    cart = (await client.get("/api/cart", headers=users[0][1])).json()["cart"]
    assert cart["items"] == []


async def test_the_purge_skips_a_cart_being_changed(app, customer, engine, db_rows):
    user_id, _ = customer
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO carts (id, user_id, expires_at) "
                "VALUES (gen_random_uuid(), :u, now() - interval '1 day')"
            ),
            {"u": user_id},
        )
    async with engine.connect() as holder:
        transaction = await holder.begin()
        await holder.execute(text("SELECT id FROM carts FOR UPDATE"))
        assert await purge_expired_carts(state_of(app, CartState)) == 0
        await transaction.rollback()
    assert await purge_expired_carts(state_of(app, CartState)) == 1
    assert await db_rows("SELECT id FROM carts") == []
