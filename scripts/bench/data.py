"""What the benchmark reads and writes: the catalogue of 10,000 products (inserted straight
into the product service's throwaway database, as scripts/bench_catalogue.py does), the
checkout product, a customer with a cart of two lines, the buyers and their orders."""

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from scripts.bench_catalogue import RARE, SEED
from shared.settings import database_url_for_asyncpg

PRODUCTS = 10_000
# "kettle" is one of the 25 nouns of the seeded names: 1 product in 25 matches it.
SEARCH_WORD = "kettle"
CHECKOUT_STOCK = 1_000_000  # more than any machine orders in the run
CHECKOUT_PRICE = "100.00"  # whole shillings: M-Pesa takes no cents
ADDRESS = {"street": "1 Bench Road", "city": "Nairobi", "country": "Kenya", "postalCode": "00100"}
# Any number but the simulator's test numbers pays (mpesa_simulator.numbers).
MPESA_PHONE = "254712345678"
# Orders still holding their stock (order_service.lifecycle): every status but cancelled.
RELEASED_STATUSES = {"cancelled"}


@dataclass(frozen=True)
class User:
    id: str
    token: str

    @property
    def authorization(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class Catalogue:
    product_id: str  # an active seeded product (GET /api/products/:id)
    cart_products: tuple[str, str]  # the customer's two cart lines
    active: int
    matching: int  # active products matching SEARCH_WORD


async def _seed(url: str) -> Catalogue:
    engine = create_async_engine(database_url_for_asyncpg(url))
    try:
        async with engine.begin() as connection:
            await connection.execute(SEED, {"count": PRODUCTS})
            await connection.execute(RARE)
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("VACUUM ANALYZE products"))
            ids = dict(
                (
                    await connection.execute(
                        text(
                            "SELECT sku, id::text FROM products"
                            " WHERE sku IN ('SKU-1234', 'SKU-2', 'SKU-3') AND is_active"
                        )
                    )
                ).all()
            )
            active = await connection.scalar(text("SELECT count(*) FROM products WHERE is_active"))
            matching = await connection.scalar(
                text("SELECT count(*) FROM products WHERE is_active AND name ILIKE :word"),
                {"word": f"%{SEARCH_WORD}%"},
            )
        return Catalogue(
            ids["SKU-1234"], (ids["SKU-2"], ids["SKU-3"]), int(active or 0), int(matching or 0)
        )
    finally:
        await engine.dispose()


def seed_catalogue(product_database_url: str) -> Catalogue:
    """10,000 products (5 % inactive) in one INSERT ... SELECT, then VACUUM ANALYZE."""
    return asyncio.run(_seed(product_database_url))


def login(gateway: str, email: str, password: str) -> User:
    with httpx.Client(base_url=gateway, timeout=30) as client:
        response = client.post("/api/auth/login", json={"email": email, "password": password})
        response.raise_for_status()
        body = response.json()
        return User(body["user"]["id"], body["token"])


def register(client: httpx.Client, name: str) -> User:
    response = client.post(
        "/api/auth/register",
        json={
            "name": name,
            "email": f"{name.lower().replace(' ', '-')}-{uuid.uuid4().hex[:8]}@example.com",
            "password": "bench-password",
            "phoneNumber": MPESA_PHONE,
        },
    )
    response.raise_for_status()
    body = response.json()
    return User(body["user"]["id"], body["token"])


def checkout_product(gateway: str, admin: User) -> dict:
    """The product every checkout orders: a stock that does not run out, a whole price."""
    with httpx.Client(base_url=gateway, timeout=30) as client:
        response = client.post(
            "/api/products",
            json={
                "name": "Bench checkout mug",
                "description": "What the checkout benchmark orders",
                "price": CHECKOUT_PRICE,
                "stock": CHECKOUT_STOCK,
                "category": "Kitchen",
                "sku": f"BENCH-CHECKOUT-{uuid.uuid4().hex[:8]}",
            },
            headers=admin.authorization,
        )
        response.raise_for_status()
        product: dict = response.json()["product"]
        return product


def customer_with_cart(gateway: str, products: tuple[str, str]) -> User:
    with httpx.Client(base_url=gateway, timeout=30) as client:
        customer = register(client, "Bench customer")
        for product_id in products:
            client.post(
                "/api/cart/items",
                json={"productId": product_id, "quantity": 1},
                headers=customer.authorization,
            ).raise_for_status()
        lines = client.get("/api/cart", headers=customer.authorization).json()["cart"]["items"]
        if len(lines) != 2:
            raise RuntimeError(f"the customer's cart has {len(lines)} lines, not 2")
        return customer


def buyers(gateway: str, count: int) -> list[User]:
    with httpx.Client(base_url=gateway, timeout=30) as client:
        return [register(client, f"Bench buyer {n}") for n in range(count)]


def stock(gateway: str, product_id: str) -> int:
    response = httpx.get(f"{gateway}/api/products/{product_id}", timeout=30)
    response.raise_for_status()
    return int(response.json()["product"]["stock"])


def orders_of(gateway: str, user: User) -> list[dict]:
    """Every order of a user (GET /api/orders, 100 a page)."""
    found: list[dict] = []
    with httpx.Client(base_url=gateway, timeout=30) as client:
        page = 1
        while True:
            response = client.get(
                "/api/orders", params={"page": page, "limit": 100}, headers=user.authorization
            )
            response.raise_for_status()
            body = response.json()
            found += body["orders"]
            if page >= body["totalPages"]:
                return found
            page += 1


def units_ordered(orders: list[dict], product_id: str) -> int:
    """Units of the product held by orders (a cancelled order gave its units back)."""
    return sum(
        item["quantity"]
        for order in orders
        if order["status"] not in RELEASED_STATUSES
        for item in order["items"]
        if item["productId"] == product_id
    )


def place_orders(gateway: str, users: list[User], product: dict, count: int) -> list[dict]:
    """`count` orders of one unit, 16 at a time, the users in turn (the M-Pesa pool)."""
    body = {
        "items": [{"productId": product["id"], "productName": product["name"], "quantity": 1}],
        "shippingAddress": ADDRESS,
    }

    run = uuid.uuid4().hex[:8]

    def place(chunk: list[int]) -> list[dict]:
        placed = []
        with httpx.Client(base_url=gateway, timeout=60) as client:
            for n in chunk:
                # Its own Idempotency-Key: sent again after a 503 (the stack shedding load
                # on a busy machine), it is never a second order.
                headers = {
                    **users[n % len(users)].authorization,
                    "Idempotency-Key": f"bench-pool-{run}-{n}",
                }
                for attempt in range(10):
                    response = client.post("/api/orders", json=body, headers=headers)
                    if response.status_code not in (502, 503, 504) or attempt == 9:
                        break
                    time.sleep(float(response.headers.get("Retry-After", "1")))
                response.raise_for_status()
                placed.append(response.json()["order"])
        return placed

    chunks = [list(range(start, count, 16)) for start in range(16)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        return [order for placed in pool.map(place, chunks) for order in placed]
