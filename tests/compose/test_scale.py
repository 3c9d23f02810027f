"""More than one replica, for real: two of the gateway, product, order and payment
services (Redis holding the gateway's rate limits), then 200 concurrent one-unit orders
for a product with stock 100 and an M-Pesa payment for each order placed.

How the gateway finds the replicas: Compose's DNS answers a service's name with every
replica's address. The gateway's client (httpx on aiohttp's connector) caches that
answer for 10 s and rotates it for each new connection, so new connections alternate
between replicas; a pooled keep-alive connection stays with the replica it was opened
to (and is closed after 5 s idle). Under concurrency the pool holds connections to
each replica, so requests spread; the test measures it on each replica's /metrics.
"""

import asyncio
import itertools
import re
import uuid
from decimal import Decimal

import httpx
import pytest

from scripts.services import ROOT
from tests.compose.conftest import (
    ADMIN,
    DEV_FILE,
    bearer,
    record_figure,
    running,
    wait_until,
)

SCALE_FILE = ROOT / "tests" / "compose" / "scale.yml"
SCALED = ("api-gateway", "product-service", "order-service", "payment-service")
GATEWAYS = ("http://127.0.0.1:5000", "http://127.0.0.1:5001")
SERVICE_PORTS = {"product-service": 3002, "order-service": 3003, "payment-service": 3004}
STOCK = 100
ORDERS = 200
CUSTOMERS = 10
AUTH_LIMIT = 40  # RATE_LIMIT_AUTH in scale.yml
PHONE = "254708374149"  # the simulator pays it
RETRIES = 4
ADDRESS = {"street": "Moi Avenue 1", "city": "Nairobi", "country": "Kenya", "postalCode": "00100"}
_REQUESTS = re.compile(
    r'^http_requests_total\{method="(\w+)",route="([^"]+)",status="(\d+)"\} (\S+)$'
)


@pytest.fixture(scope="module")
def scaled(project_factory, built_images):
    project = project_factory([DEV_FILE, SCALE_FILE])
    scale = [arg for name in SCALED for arg in ("--scale", f"{name}=2")]
    with running(project, *scale, figure="scale_up_wait_seconds") as project:
        yield project


# The one client all the test's requests come from (see TRUSTED_PROXIES in scale.yml).
CLIENT = {"X-Forwarded-For": "203.0.113.7"}


def clients() -> list[httpx.Client]:
    return [httpx.Client(base_url=url, timeout=60, headers=CLIENT) for url in GATEWAYS]


def requests_served(project, service: str, index: int, route: str | None = None) -> int:
    """Requests a replica answered for the shop (health probes and /metrics aside), or
    those of one route."""
    text = project.exec(
        service,
        "python",
        "-c",
        "import urllib.request; print(urllib.request.urlopen("
        f"'http://127.0.0.1:{SERVICE_PORTS[service]}/metrics', timeout=5).read().decode())",
        index=index,
    )
    total = 0.0
    for line in text.splitlines():
        match = _REQUESTS.match(line)
        if not match:
            continue
        if (route is None and match.group(2) not in ("/health", "/ready", "/metrics")) or (
            match.group(2) == route
        ):
            total += float(match.group(4))
    return int(total)


def test_replicas_oversell_nothing_pay_once_and_share_the_load(scaled):
    for name in SCALED:
        assert len(scaled.container_ids(name)) == 2, name
    gateways = clients()
    try:
        run_the_rehearsal(scaled, gateways)
    finally:
        for client in gateways:
            client.close()


def run_the_rehearsal(project, gateways: list[httpx.Client]) -> None:
    # --- customers (auth requests: counted against RATE_LIMIT_AUTH) -----------------
    auth_requests = 0
    login = gateways[0].post("/api/auth/login", json=ADMIN)
    auth_requests += 1
    assert login.status_code == 200, login.text
    admin = bearer(login.json()["token"])
    customers = []
    for number, client in zip(range(CUSTOMERS), itertools.cycle(gateways), strict=False):
        registered = client.post(
            "/api/auth/register",
            json={
                "name": f"Customer {number}",
                "email": f"scale-{number}-{uuid.uuid4().hex[:6]}@example.com",
                "password": "password123",
            },
        )
        auth_requests += 1
        assert registered.status_code == 201, registered.text
        customers.append(bearer(registered.json()["token"]))

    # --- the rate limit is one count across both gateway replicas -------------------
    accepted = {url: 0 for url in GATEWAYS}
    for attempt in range(2 * AUTH_LIMIT):
        client = gateways[attempt % 2]
        response = client.post(
            "/api/auth/login", json={"email": "nobody@example.com", "password": "wrong-password"}
        )
        if response.status_code == 429:
            break
        assert response.status_code == 401, response.text
        accepted[str(client.base_url).rstrip("/")] += 1
    record_figure("scale_auth_limit_accepted_per_gateway", accepted)
    assert sum(accepted.values()) == AUTH_LIMIT - auth_requests, accepted
    assert all(accepted.values()), accepted

    # --- 200 concurrent one-unit orders for stock 100 --------------------------------
    product = gateways[0].post(
        "/api/products",
        json={
            "name": "Scale Kettle",
            "description": "Sold out in seconds",
            "price": "250.00",
            "stock": STOCK,
            "category": "kitchen",
            "sku": f"SCALE-{uuid.uuid4().hex[:8]}",
        },
        headers=admin,
    )
    assert product.status_code == 201, product.text
    product_id = product.json()["product"]["id"]
    statuses, orders = asyncio.run(place_orders(product_id, customers))
    record_figure("scale_order_statuses", {str(k): v for k, v in sorted(statuses.items())})
    assert statuses.get(201) == STOCK, statuses
    assert set(statuses) <= {201, 400, 409}, statuses  # refused, never a 5xx (after retries)
    stock = gateways[1].get(f"/api/products/{product_id}").json()["product"]["stock"]
    assert stock == 0
    # No order the client was not told of: the order service holds exactly these.
    product_uuid = uuid.UUID(product_id)  # a UUID, so safe to put in the query
    held = project.sql(
        "order-db",
        "ecommerce_order",
        f"SELECT DISTINCT order_id FROM order_items WHERE product_id = '{product_uuid}'",  # noqa: S608
    )
    assert sorted(row[0] for row in held) == sorted(order_id for _, order_id in orders)

    # --- an M-Pesa payment for each order placed, paid once -------------------------
    payments = asyncio.run(pay(orders))
    assert len(payments) == STOCK

    def all_paid() -> bool:
        return asyncio.run(count_paid(orders)) == len(orders)

    wait_until(all_paid, 180, "every order to be paid")

    completed = project.sql(
        "payment-db",
        "ecommerce_payment",
        "SELECT order_id, count(*) FROM payments WHERE status = 'completed' GROUP BY order_id",
    )
    assert len(completed) == STOCK and all(count == "1" for _, count in completed)
    paid_history = project.sql(
        "order-db",
        "ecommerce_order",
        "SELECT order_id, count(*) FROM order_status_history WHERE to_status = 'paid' "
        "GROUP BY order_id",
    )
    assert len(paid_history) == STOCK and all(count == "1" for _, count in paid_history)

    # Every outbox message delivered and applied once. Each replica's delivery worker
    # claims rows with FOR UPDATE SKIP LOCKED; a message sent by two workers would reach
    # the order service more often than the attempts its row counts (each worker writes
    # the attempts it read, plus one). A retry after a failed send counts as an attempt.
    for database_service, database in (
        ("payment-db", "ecommerce_payment"),
        ("order-db", "ecommerce_order"),
    ):

        def drained(database_service=database_service, database=database):
            [[total, done, attempts]] = project.sql(
                database_service,
                database,
                "SELECT count(*), count(delivered_at), coalesce(sum(attempts), 0) "
                "FROM outbox_messages",
            )
            return total == done and {"messages": int(total), "attempts": int(attempts)}

        record_figure(
            f"scale_outbox_{database}", wait_until(drained, 60, f"{database}'s outbox to drain")
        )
    payment_outbox = drained("payment-db", "ecommerce_payment")
    assert payment_outbox["messages"] == STOCK  # one "paid" message per order
    sends = sum(
        requests_served(project, "order-service", index, route="/api/internal/update-status")
        for index in (1, 2)
    )
    record_figure("scale_order_update_status_requests", sends)
    assert sends <= payment_outbox["attempts"], "a message was sent by two workers"
    [[applied]] = project.sql(
        "order-db", "ecommerce_order", "SELECT count(*) FROM processed_events"
    )
    assert int(applied) == payment_outbox["messages"]

    # The money adds up (the report `make reconcile` prints).
    report = gateways[1].get("/api/payments/admin/reconciliation", headers=admin)
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["ok"] and body["discrepancies"] == [], body
    [kes] = [t for t in body["totals"] if t["currency"] == "KES"]
    assert kes["paymentsCompleted"]["count"] == STOCK
    assert Decimal(kes["difference"]) == 0

    # --- the gateway spread the work over the replicas -----------------------------
    spread = {
        service: [requests_served(project, service, index) for index in (1, 2)]
        for service in SERVICE_PORTS
    }
    record_figure("scale_requests_per_replica", spread)
    for service, counts in spread.items():
        assert min(counts) >= 0.2 * sum(counts), f"{service}: {counts}"


async def send(client: httpx.AsyncClient, url: str, body: dict, headers: dict, retried: list):
    """A POST as a careful client sends it: with an Idempotency-Key, and again with the
    same key after a 502, 503 or 504 (an overloaded machine's answers: the service may or
    may not have done it; the key makes the retry answer what the first did, never do it
    twice), once Retry-After has passed."""
    headers = {**headers, "Idempotency-Key": str(uuid.uuid4())}
    for _ in range(RETRIES):
        response = await client.post(url, json=body, headers=headers)
        if response.status_code not in (502, 503, 504):
            return response
        retried.append(f"{url}: {response.status_code} {response.text[:200]}")
        await asyncio.sleep(float(response.headers.get("Retry-After") or 1))
    return response


async def place_orders(product_id: str, customers: list[dict]) -> tuple[dict[int, int], list]:
    retried: list[str] = []
    async with httpx.AsyncClient(timeout=120, headers=CLIENT) as client:

        async def one(number: int):
            body = {"items": [{"productId": product_id, "quantity": 1}], "shippingAddress": ADDRESS}
            customer = customers[number % len(customers)]
            url = f"{GATEWAYS[number % 2]}/api/orders"
            return number, await send(client, url, body, customer, retried)

        results = await asyncio.gather(*(one(number) for number in range(ORDERS)))
    record_figure("scale_order_retries", len(retried))
    for line in retried:
        print(f"retried: {line}")
    statuses: dict[int, int] = {}
    orders = []
    for number, response in results:
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if response.status_code == 201:
            orders.append((customers[number % len(customers)], response.json()["order"]["id"]))
    return statuses, orders


async def pay(orders: list) -> list[dict]:
    limit = asyncio.Semaphore(25)
    retried: list[str] = []
    async with httpx.AsyncClient(timeout=120, headers=CLIENT) as client:

        async def one(number: int, customer: dict, order_id: str) -> dict:
            async with limit:
                url = f"{GATEWAYS[number % 2]}/api/payments/mpesa"
                body = {"orderId": order_id, "phoneNumber": PHONE}
                response = await send(client, url, body, customer, retried)
            assert response.status_code == 200, response.text
            return response.json()["payment"]

        payments = await asyncio.gather(
            *(one(number, customer, order_id) for number, (customer, order_id) in enumerate(orders))
        )
    record_figure("scale_payment_retries", len(retried))
    return payments


async def count_paid(orders: list) -> int:
    limit = asyncio.Semaphore(25)
    async with httpx.AsyncClient(timeout=60, headers=CLIENT) as client:

        async def status(number: int, customer: dict, order_id: str) -> str:
            async with limit:
                response = await client.get(
                    f"{GATEWAYS[number % 2]}/api/orders/{order_id}", headers=customer
                )
            return response.json()["order"]["status"]

        found = await asyncio.gather(
            *(
                status(number, customer, order_id)
                for number, (customer, order_id) in enumerate(orders)
            )
        )
    return sum(1 for value in found if value == "paid")
