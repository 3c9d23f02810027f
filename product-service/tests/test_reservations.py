"""Reserve and release: all or nothing, once per order, exact under concurrency."""

import asyncio
import uuid

import pytest
from sqlalchemy import text

from shared.metrics import read_samples, sample


@pytest.fixture
def reserve(client, internal_headers):
    async def reserve_(order_id, *items: tuple[str, int]):
        return await client.post(
            "/api/internal/reserve",
            json={
                "orderId": str(order_id),
                "items": [{"productId": pid, "quantity": quantity} for pid, quantity in items],
            },
            headers=internal_headers,
        )

    return reserve_


@pytest.fixture
def release(client, internal_headers):
    async def release_(order_id):
        return await client.post(
            "/api/internal/release", json={"orderId": str(order_id)}, headers=internal_headers
        )

    return release_


async def test_reserve_takes_the_stock_and_answers_price_and_name(
    reserve, create_product, stock_of, engine
):
    phone = await create_product(name="Phone", price="150000.00", stock=5)
    case = await create_product(name="Case", price=1500, stock=2)
    order_id = uuid.uuid4()
    response = await reserve(order_id, (phone["id"], 2), (case["id"], 2))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "orderId": str(order_id),
        "items": [
            {"productId": phone["id"], "name": "Phone", "price": "150000.00", "quantity": 2},
            {"productId": case["id"], "name": "Case", "price": "1500.00", "quantity": 2},
        ],
    }
    assert await stock_of(phone["id"]) == 3
    assert await stock_of(case["id"]) == 0
    async with engine.connect() as connection:
        status = await connection.scalar(
            text("SELECT status FROM stock_reservations WHERE order_id = :id"), {"id": order_id}
        )
    assert status == "active"


async def test_the_same_product_twice_is_one_line_with_both_quantities(
    reserve, create_product, stock_of
):
    product = await create_product(stock=5)
    response = await reserve(uuid.uuid4(), (product["id"], 2), (product["id"], 1))
    assert response.status_code == 200
    assert [(i["productId"], i["quantity"]) for i in response.json()["items"]] == [
        (product["id"], 3)
    ]
    assert await stock_of(product["id"]) == 2


async def test_all_or_nothing_when_the_second_item_is_short(
    reserve, create_product, stock_of, count_rows
):
    first = await create_product(stock=5)
    second = await create_product(stock=1)
    response = await reserve(uuid.uuid4(), (first["id"], 2), (second["id"], 3))
    assert response.status_code == 409
    assert response.json() == {
        "error": "Some items are out of stock",
        "details": [{"productId": second["id"], "requested": 3, "available": 1}],
    }
    assert await stock_of(first["id"]) == 5
    assert await stock_of(second["id"]) == 1
    assert await count_rows("stock_reservations") == 0
    assert await count_rows("stock_reservation_items") == 0


async def test_unknown_and_inactive_products_are_available_zero(reserve, create_product, stock_of):
    fine = await create_product(stock=5)
    hidden = await create_product(stock=50, isActive=False)
    unknown = str(uuid.uuid4())
    response = await reserve(uuid.uuid4(), (fine["id"], 1), (hidden["id"], 1), (unknown, 1))
    assert response.status_code == 409
    assert response.json()["details"] == [
        {"productId": hidden["id"], "requested": 1, "available": 0},
        {"productId": unknown, "requested": 1, "available": 0},
    ]
    assert await stock_of(fine["id"]) == 5 and await stock_of(hidden["id"]) == 50


async def test_a_refused_reservation_may_be_retried_after_a_restock(
    reserve, create_product, client, admin_headers, stock_of
):
    product = await create_product(stock=1)
    order_id = uuid.uuid4()
    assert (await reserve(order_id, (product["id"], 2))).status_code == 409
    await client.patch(
        f"/api/products/{product['id']}/stock", json={"delta": 1}, headers=admin_headers
    )
    assert (await reserve(order_id, (product["id"], 2))).status_code == 200
    assert await stock_of(product["id"]) == 0


async def test_the_same_call_again_takes_nothing_and_answers_the_same(
    reserve, create_product, client, admin_headers, stock_of
):
    product = await create_product(stock=5, price="10.00", name="Mug")
    order_id = uuid.uuid4()
    first = await reserve(order_id, (product["id"], 2))
    # The price and name change after the reservation: the answer does not.
    await client.put(
        f"/api/products/{product['id']}",
        json={"price": "12.00", "name": "Big mug"},
        headers=admin_headers,
    )
    second = await reserve(order_id, (product["id"], 2))
    assert second.status_code == 200
    assert second.json() == first.json()
    assert second.json()["items"][0]["price"] == "10.00"
    assert await stock_of(product["id"]) == 3


async def test_the_same_order_with_other_items_is_refused(reserve, create_product, stock_of):
    product = await create_product(stock=5)
    order_id = uuid.uuid4()
    assert (await reserve(order_id, (product["id"], 2))).status_code == 200
    other = await reserve(order_id, (product["id"], 3))
    assert other.status_code == 409
    assert other.json() == {"error": "Order already has a reservation with other items"}
    assert await stock_of(product["id"]) == 3


async def test_50_concurrent_reservations_of_the_last_10_units(reserve, create_product, stock_of):
    product = await create_product(stock=10)
    responses = await asyncio.gather(
        *(reserve(uuid.uuid4(), (product["id"], 1)) for _ in range(50))
    )
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 10 and statuses.count(409) == 40, statuses
    refused = next(r for r in responses if r.status_code == 409)
    assert refused.json()["details"] == [
        {"productId": product["id"], "requested": 1, "available": 0}
    ]
    assert await stock_of(product["id"]) == 0


async def test_concurrent_orders_over_the_same_products_in_any_order(
    reserve, create_product, stock_of
):
    # Orders naming the same products in opposite orders: no deadlock, no oversell.
    a = await create_product(stock=6)
    b = await create_product(stock=6)
    calls = [
        reserve(
            uuid.uuid4(), *(((a["id"], 1), (b["id"], 1)) if i % 2 else ((b["id"], 1), (a["id"], 1)))
        )
        for i in range(10)
    ]
    responses = await asyncio.gather(*calls)
    assert [r.status_code for r in responses].count(200) == 6
    assert {r.status_code for r in responses} == {200, 409}
    assert await stock_of(a["id"]) == 0 and await stock_of(b["id"]) == 0


async def test_concurrent_identical_reservations_take_once(
    reserve, create_product, stock_of, count_rows
):
    product = await create_product(stock=10)
    order_id = uuid.uuid4()
    responses = await asyncio.gather(*(reserve(order_id, (product["id"], 3)) for _ in range(10)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.text for r in responses}) == 1
    assert await stock_of(product["id"]) == 7
    assert await count_rows("stock_reservations") == 1


async def test_release_gives_back_exactly_what_was_taken_once(
    reserve, release, create_product, client, admin_headers, stock_of, engine
):
    a = await create_product(stock=5)
    b = await create_product(stock=3)
    order_id = uuid.uuid4()
    await reserve(order_id, (a["id"], 2), (b["id"], 3))
    # Stock moves for other reasons in between: the release gives back only its own.
    await client.patch(f"/api/products/{a['id']}/stock", json={"delta": 10}, headers=admin_headers)
    response = await release(order_id)
    assert response.status_code == 200
    assert response.json() == {"orderId": str(order_id), "released": True}
    assert await stock_of(a["id"]) == 15 and await stock_of(b["id"]) == 3
    again = await release(order_id)
    assert again.json() == {"orderId": str(order_id), "released": False}
    assert await stock_of(a["id"]) == 15 and await stock_of(b["id"]) == 3
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text("SELECT status, released_at FROM stock_reservations WHERE order_id = :id"),
                {"id": order_id},
            )
        ).one()
    assert row.status == "released" and row.released_at is not None


async def test_release_gives_back_to_a_product_deleted_meanwhile(
    reserve, release, create_product, client, admin_headers, stock_of
):
    product = await create_product(stock=4)
    order_id = uuid.uuid4()
    await reserve(order_id, (product["id"], 4))
    await client.delete(f"/api/products/{product['id']}", headers=admin_headers)
    assert (await release(order_id)).json()["released"] is True
    assert await stock_of(product["id"]) == 4


async def test_concurrent_releases_give_back_once(reserve, release, create_product, stock_of):
    product = await create_product(stock=10)
    order_id = uuid.uuid4()
    await reserve(order_id, (product["id"], 4))
    responses = await asyncio.gather(*(release(order_id) for _ in range(10)))
    assert [r.json()["released"] for r in responses].count(True) == 1
    assert await stock_of(product["id"]) == 10


async def test_release_of_an_unknown_order_is_a_no_op_that_blocks_a_late_reservation(
    reserve, release, create_product, stock_of
):
    product = await create_product(stock=5)
    order_id = uuid.uuid4()
    response = await release(order_id)
    assert response.status_code == 200
    assert response.json() == {"orderId": str(order_id), "released": False}
    assert await stock_of(product["id"]) == 5
    # A reservation for that order arriving after its release (a retry that crossed it)
    # must not take stock nobody will ever give back.
    late = await reserve(order_id, (product["id"], 1))
    assert late.status_code == 409
    assert late.json() == {"error": "Reservation already released"}
    assert await stock_of(product["id"]) == 5


async def test_a_reservation_released_cannot_be_taken_again(
    reserve, release, create_product, stock_of
):
    product = await create_product(stock=5)
    order_id = uuid.uuid4()
    await reserve(order_id, (product["id"], 2))
    await release(order_id)
    again = await reserve(order_id, (product["id"], 2))
    assert again.status_code == 409
    assert again.json() == {"error": "Reservation already released"}
    assert await stock_of(product["id"]) == 5


async def test_reserve_and_release_racing_leave_the_stock_whole(
    reserve, release, create_product, stock_of
):
    product = await create_product(stock=20)
    orders = [uuid.uuid4() for _ in range(10)]
    await asyncio.gather(
        *(reserve(order, (product["id"], 2)) for order in orders),
        *(release(order) for order in orders),
    )
    # Whichever came first, every order ends released: nothing stays taken.
    await asyncio.gather(*(release(order) for order in orders))
    assert await stock_of(product["id"]) == 20


@pytest.mark.parametrize(
    "body",
    [
        {"orderId": "not-a-uuid", "items": [{"productId": str(uuid.uuid4()), "quantity": 1}]},
        {"orderId": str(uuid.uuid4()), "items": []},
        {"orderId": str(uuid.uuid4()), "items": [{"productId": str(uuid.uuid4()), "quantity": 0}]},
        {"orderId": str(uuid.uuid4()), "items": [{"productId": str(uuid.uuid4()), "quantity": -1}]},
        {"items": [{"productId": str(uuid.uuid4()), "quantity": 1}]},
        {
            "orderId": str(uuid.uuid4()),
            "items": [{"productId": str(uuid.uuid4()), "quantity": 1}] * 101,
        },
    ],
)
async def test_reserve_validates(client, internal_headers, count_rows, body):
    response = await client.post("/api/internal/reserve", json=body, headers=internal_headers)
    assert response.status_code == 400
    assert response.json()["error"] == "Validation error"
    assert await count_rows("stock_reservations") == 0


async def test_release_validates(client, internal_headers):
    response = await client.post(
        "/api/internal/release", json={"orderId": "42"}, headers=internal_headers
    )
    assert response.status_code == 400
    assert response.json()["details"][0]["field"] == "orderId"


async def test_reserve_ignores_what_it_does_not_need(client, internal_headers, create_product):
    # The original's order lines carry the client's productName: not refused, not used.
    product = await create_product(name="Phone", stock=2)
    response = await client.post(
        "/api/internal/reserve",
        json={
            "orderId": str(uuid.uuid4()),
            "items": [{"productId": product["id"], "productName": "Free", "quantity": 1}],
        },
        headers=internal_headers,
    )
    assert response.status_code == 200
    assert response.json()["items"][0]["name"] == "Phone"


async def test_refused_reservations_are_counted_by_reason(client, reserve, release, create_product):
    async def refused(reason: str) -> float:
        text_ = (await client.get("/metrics")).text
        return sample(read_samples(text_), "stock_reservations_refused_total", reason=reason)

    before = {reason: await refused(reason) for reason in ("out_of_stock", "released", "mismatch")}
    product = await create_product(stock=2)
    assert (await reserve(uuid.uuid4(), (product["id"], 3))).status_code == 409
    reserved = uuid.uuid4()
    assert (await reserve(reserved, (product["id"], 1))).status_code == 200
    assert (await reserve(reserved, (product["id"], 1))).status_code == 200  # a retry: no refusal
    assert (await reserve(reserved, (product["id"], 2))).status_code == 409
    late = uuid.uuid4()
    assert (await release(late)).status_code == 200
    assert (await reserve(late, (product["id"], 1))).status_code == 409

    assert await refused("out_of_stock") - before["out_of_stock"] == 1
    assert await refused("mismatch") - before["mismatch"] == 1
    assert await refused("released") - before["released"] == 1


async def test_each_line_records_what_its_take_found_in_the_order_of_the_request(
    reserve, create_product, engine
):
    """The take and the line are one statement: the line's name and price are the ones
    the row held when its stock was taken, whatever order the rows were locked in."""
    first, second = sorted(
        [
            await create_product(name="Kettle", price="2500.00", stock=5),
            await create_product(name="Toaster", price="4100.50", stock=5),
        ],
        key=lambda product: product["id"],
        reverse=True,  # the request lists the larger id first; rows are locked by id
    )
    order_id = uuid.uuid4()
    response = await reserve(order_id, (first["id"], 2), (second["id"], 1))
    assert response.status_code == 200, response.text
    assert response.json()["items"] == [
        {"productId": first["id"], "name": first["name"], "price": first["price"], "quantity": 2},
        {
            "productId": second["id"],
            "name": second["name"],
            "price": second["price"],
            "quantity": 1,
        },
    ]
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                text(
                    "SELECT product_id, position, product_name, unit_price"
                    " FROM stock_reservation_items WHERE order_id = :id ORDER BY position"
                ),
                {"id": order_id},
            )
        ).all()
    assert [(str(r.product_id), r.position, r.product_name, str(r.unit_price)) for r in rows] == [
        (first["id"], 0, first["name"], first["price"]),
        (second["id"], 1, second["name"], second["price"]),
    ]
