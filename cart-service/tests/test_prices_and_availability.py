"""The cart shows current prices; lines of products gone from the catalogue are marked;
when the product service is down, reads still answer and changes are 503."""

import asyncio
import uuid
from decimal import Decimal

import httpx
import pytest

from cart_service.main import create_app
from cart_service.product_client import ProductClient
from shared.http_client import ServiceClient
from shared.keys import load_private_key
from shared.testing import FakeClock, refused_port, started


async def test_a_price_change_is_shown_and_flagged_on_its_line(
    fill_cart, client, customer, neighbours, db_rows
):
    _, headers = customer
    phone, _ = await fill_cart(headers, ("Phone", "100.00", 2), ("Case", "10.00", 1))
    neighbours.products[phone]["price"] = "90.00"

    cart = (await client.get("/api/cart", headers=headers)).json()["cart"]
    phone_line, case_line = cart["items"]
    assert phone_line["price"] == "90.00" and phone_line["subtotal"] == "180.00"
    assert phone_line["priceChanged"] is True and phone_line["previousPrice"] == "100.00"
    assert case_line["priceChanged"] is False and case_line["previousPrice"] is None
    assert cart["totalAmount"] == "190.00" and cart["itemCount"] == 3
    assert cart["pricesRefreshed"] is True

    # A read changes nothing stored: the flag holds until the line is changed.
    [stored] = await db_rows("SELECT price FROM cart_items WHERE product_id = :p", p=phone)
    assert stored["price"] == Decimal("100.00")
    again = (await client.get("/api/cart", headers=headers)).json()["cart"]
    assert again["items"][0]["priceChanged"] is True

    # Changing the line takes the new price; the flag goes.
    updated = await client.put(
        f"/api/cart/items/{phone_line['id']}", json={"quantity": 2}, headers=headers
    )
    line = updated.json()["cart"]["items"][0]
    assert line["price"] == "90.00" and line["priceChanged"] is False
    [stored] = await db_rows(
        "SELECT price, subtotal FROM cart_items WHERE product_id = :p", p=phone
    )
    assert stored == {"price": Decimal("90.00"), "subtotal": Decimal("180.00")}
    [totals] = await db_rows("SELECT total_amount FROM carts")
    assert totals["total_amount"] == Decimal("190.00")


async def test_adding_more_of_a_product_takes_its_current_price(
    add_to_cart, client, customer, neighbours
):
    _, headers = customer
    product_id = neighbours.add_product(price="50.00")
    await add_to_cart(headers, product_id, 1)
    neighbours.products[product_id]["price"] = "55.55"
    cart = (await add_to_cart(headers, product_id, 1)).json()["cart"]
    [line] = cart["items"]
    assert line["price"] == "55.55" and line["subtotal"] == "111.10"
    assert line["priceChanged"] is False
    assert cart["totalAmount"] == "111.10"


async def test_a_name_or_image_change_is_shown_without_a_price_flag(
    add_to_cart, client, customer, neighbours
):
    _, headers = customer
    product_id = neighbours.add_product(name="Old name")
    await add_to_cart(headers, product_id)
    neighbours.products[product_id].update(name="New name", imageUrl=None)
    [line] = (await client.get("/api/cart", headers=headers)).json()["cart"]["items"]
    assert line["productName"] == "New name" and line["imageUrl"] is None
    assert line["priceChanged"] is False


@pytest.mark.parametrize("gone", ["inactive", "deleted"])
async def test_a_line_whose_product_is_gone_is_unavailable_and_not_counted(
    fill_cart, client, customer, neighbours, gone
):
    _, headers = customer
    phone, _ = await fill_cart(headers, ("Phone", "100.00", 2), ("Case", "10.00", 3))
    if gone == "inactive":
        neighbours.products[phone].update(isActive=False, price="1.00")
    else:
        del neighbours.products[phone]

    cart = (await client.get("/api/cart", headers=headers)).json()["cart"]
    phone_line, case_line = cart["items"]
    assert phone_line["unavailable"] is True
    # Shown as it was stored: the name the customer knows, the price they saw.
    assert phone_line["productName"] == "Phone" and phone_line["price"] == "100.00"
    assert phone_line["subtotal"] == "200.00" and phone_line["priceChanged"] is False
    assert case_line["unavailable"] is False
    assert cart["totalAmount"] == "30.00" and cart["itemCount"] == 3

    # The line can be removed (not changed), and the cart is whole again.
    update = await client.put(
        f"/api/cart/items/{phone_line['id']}", json={"quantity": 1}, headers=headers
    )
    assert update.status_code == 404 and update.json() == {"error": "Product not found"}
    removed = await client.delete(f"/api/cart/items/{phone_line['id']}", headers=headers)
    assert removed.status_code == 200
    assert removed.json()["cart"]["totalAmount"] == "30.00"


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.Response(500, json={"error": "Internal server error"}),
        httpx.Response(503, json={"error": "Service temporarily unavailable"}),
        httpx.Response(200, text="<html>not json</html>"),
    ],
    ids=["refused", "timeout", "500", "503", "garbage"],
)
async def test_product_service_down_reads_work_and_changes_are_503(
    add_to_cart, client, customer, neighbours, db_rows, failure
):
    _, headers = customer
    phone = neighbours.add_product(name="Phone", price="100.00", stock=10)
    item = (await add_to_cart(headers, phone, 2)).json()["cart"]["items"][0]
    neighbours.products[phone]["price"] = "80.00"  # unseen while the service is down
    neighbours.product_service_fails(failure)

    read = await client.get("/api/cart", headers=headers)
    assert read.status_code == 200
    cart = read.json()["cart"]
    assert cart["pricesRefreshed"] is False
    [line] = cart["items"]
    assert line["productName"] == "Phone" and line["price"] == "100.00"
    assert line["priceChanged"] is False and line["unavailable"] is False
    assert cart["totalAmount"] == "200.00" and cart["itemCount"] == 2

    unavailable = {"error": "Product service unavailable"}
    added = await client.post(
        "/api/cart/items", json={"productId": phone, "quantity": 1}, headers=headers
    )
    assert added.status_code == 503 and added.json() == unavailable
    updated = await client.put(
        f"/api/cart/items/{item['id']}", json={"quantity": 5}, headers=headers
    )
    assert updated.status_code == 503 and updated.json() == unavailable
    [stored] = await db_rows("SELECT quantity, price FROM cart_items")
    assert stored == {"quantity": 2, "price": Decimal("100.00")}

    # Removing and clearing need no product: they work.
    removed = await client.delete(f"/api/cart/items/{item['id']}", headers=headers)
    assert removed.status_code == 200
    assert removed.json()["cart"]["items"] == []
    assert (await client.delete("/api/cart", headers=headers)).status_code == 200


async def test_an_unreachable_product_service_on_a_real_port_is_503(
    make_settings, make_user, neighbours
):
    """No respx for the product service here: a real connection refused."""
    neighbours.router.route(host="127.0.0.1").pass_through()
    with refused_port() as port:
        app = create_app(make_settings(PRODUCT_SERVICE_URL=f"http://127.0.0.1:{port}"))
        _, headers = make_user()
        async with started(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://cart") as client:
                read = await client.get("/api/cart", headers=headers)
                assert read.status_code == 200
                added = await client.post(
                    "/api/cart/items",
                    json={"productId": "00000000-0000-4000-8000-000000000000"},
                    headers=headers,
                )
    assert added.status_code == 503
    assert added.json() == {"error": "Product service unavailable"}


async def test_the_cart_asks_with_an_internal_token(add_to_cart, client, customer, neighbours):
    """The lookup fake refuses calls without a valid internal token; a read that got 401
    would not be refreshed."""
    _, headers = customer
    product_id = neighbours.add_product()
    await add_to_cart(headers, product_id)
    cart = (await client.get("/api/cart", headers=headers)).json()["cart"]
    assert cart["pricesRefreshed"] is True
    assert neighbours.lookups[-1] == [product_id]


async def test_a_slow_product_service_leaves_reads_with_stored_prices(
    make_settings, make_user, neighbours
):
    """A product service that accepts the call and never answers: the read gives up after
    CART_PRICE_REFRESH_TIMEOUT, a change after SERVICE_TIMEOUT (503)."""
    app = create_app(make_settings(CART_PRICE_REFRESH_TIMEOUT="0.2", SERVICE_TIMEOUT="0.3"))
    _, headers = make_user()
    product_id = neighbours.add_product(price="10.00")
    async with started(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://cart") as client:
            body = {"productId": product_id, "quantity": 2}
            first = await client.post("/api/cart/items", json=body, headers=headers)
            assert first.status_code == 200

            async def hang(request):
                await asyncio.sleep(30)

            neighbours.lookup_route.side_effect = hang
            read = await client.get("/api/cart", headers=headers)
            assert read.status_code == 200
            assert read.json()["cart"]["pricesRefreshed"] is False
            assert read.json()["cart"]["totalAmount"] == "20.00"
            added = await client.post(
                "/api/cart/items", json={"productId": product_id}, headers=headers
            )
            assert added.status_code == 503
            assert added.json() == {"error": "Product service unavailable"}


async def test_reads_show_prices_at_most_max_age_old_and_changes_always_ask(
    make_settings, neighbours, customer, db_rows
):
    """CART_PRICE_MAX_AGE: a client reading its cart again and again costs one lookup per
    max age, not one per read; a price change shows once it is that old, and a change of
    the cart asks the product service at once (it checks the stock)."""
    app = create_app(make_settings(CART_PRICE_MAX_AGE="60"))
    async with started(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cart") as client:
            _, headers = customer
            phone = neighbours.add_product(name="Phone", price="100.00")
            added = await client.post(
                "/api/cart/items", json={"productId": phone, "quantity": 1}, headers=headers
            )
            assert added.status_code == 200, added.text
            asked = len(neighbours.lookups)
            for _ in range(5):
                cart = (await client.get("/api/cart", headers=headers)).json()["cart"]
                assert cart["items"][0]["price"] == "100.00"
            assert len(neighbours.lookups) == asked  # the add's answer is recent enough

            neighbours.products[phone]["price"] = "90.00"
            line = cart["items"][0]
            updated = await client.put(
                f"/api/cart/items/{line['id']}", json={"quantity": 2}, headers=headers
            )
            assert len(neighbours.lookups) == asked + 1
            assert updated.json()["cart"]["items"][0]["price"] == "90.00"
            cart = (await client.get("/api/cart", headers=headers)).json()["cart"]
            assert cart["items"][0]["price"] == "90.00" and cart["totalAmount"] == "180.00"


async def test_a_remembered_product_is_asked_again_once_max_age_has_passed(neighbours, keys):
    clock = FakeClock()
    settings = keys.settings_for("cart")
    services = ServiceClient(
        service="cart",
        private_key=load_private_key(settings["INTERNAL_PRIVATE_KEY"]),
        audiences={"http://product.test": "product"},
        timeout=5,
    )
    products = ProductClient(services, "http://product.test", max_age=1.0, clock=clock)
    phone = neighbours.add_product(name="Phone", price="100.00")
    phone_id = uuid.UUID(phone)
    try:
        first = await products.lookup_recent([phone_id], timeout=5)
        neighbours.products[phone]["price"] = "90.00"
        clock.advance(0.9)
        assert (await products.lookup_recent([phone_id], timeout=5))[phone_id] == first[phone_id]
        assert len(neighbours.lookups) == 1
        clock.advance(0.2)
        later = await products.lookup_recent([phone_id], timeout=5)
        assert later[phone_id].price == Decimal("90.00")
        assert len(neighbours.lookups) == 2
    finally:
        await services.aclose()
