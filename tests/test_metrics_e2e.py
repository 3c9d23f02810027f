"""The domain figures on every service's /metrics move when the shop is used: orders
created and cancelled, stock refused, payments by provider and status, reconciliation,
webhooks refused, the outboxes drained. Everything through the gateway; each service
scraped directly (the gateway never exposes a service's /metrics)."""

import httpx
import pytest

from scripts.services import MPESA_SIMULATOR
from shared.metrics import read_samples, sample
from tests.conftest import LOST_CALLBACK_PHONE, SUCCESS_PHONE, wait_until

pytestmark = pytest.mark.e2e


def scrape_all(stack) -> dict[str, dict]:
    figures = {}
    for service in stack.ports:
        if service == MPESA_SIMULATOR:
            continue
        response = httpx.get(f"{stack.url(service)}/metrics", timeout=10)
        assert response.status_code == 200, service
        figures[service] = read_samples(response.text)
    return figures


def requests_answered(samples) -> float:
    return sum(v for (name, _), v in samples.items() if name == "http_requests_total")


def test_the_domain_figures_move_with_an_order_and_its_payments(stack, shop):
    before = scrape_all(stack)
    client = shop.client

    def moved(service: str, name: str, **labels) -> float:
        return sample(after[service], name, **labels) - sample(before[service], name, **labels)

    paid = shop.order("1500.00")
    product_id = paid["items"][0]["productId"]
    too_many = client.post(
        "/api/orders",
        json={
            "items": [{"productId": product_id, "quantity": 50}],
            "shippingAddress": {"street": "Kenyatta Ave 2", "city": "Nairobi", "country": "Kenya"},
        },
        headers=shop.customer,
    )
    assert too_many.status_code == 400, too_many.text
    assert too_many.json()["error"] == "Some items are out of stock"

    first = shop.pay_mpesa(paid["id"], SUCCESS_PHONE)
    reconciled = shop.order("900.00")
    lost = shop.pay_mpesa(reconciled["id"], LOST_CALLBACK_PHONE)  # settled by STK Query
    cancelled = shop.order("300.00")
    assert (
        client.put(f"/api/orders/{cancelled['id']}/cancel", headers=shop.customer).status_code
        == 200
    )
    forged = client.post(
        "/api/payments/webhook/mpesa/not-the-secret", json={"Body": {"stkCallback": {}}}
    )
    assert forged.status_code == 403
    unsigned = client.post(
        "/api/payments/webhook/stripe",
        content=b'{"id": "evt_1"}',
        headers={"Stripe-Signature": "t=1,v1=00"},
    )
    assert unsigned.status_code == 400
    for payment in (first, lost):
        assert shop.payment_settles(payment["payment"]["id"], timeout=40)["status"] == "completed"
    for order in (paid, reconciled):
        shop.order_reaches(order["id"], "status", "paid")
    # The order service heard of both payments: the payment service's outbox is drained.
    after = wait_until(
        lambda: (
            (figures := scrape_all(stack))["payment"].get(("outbox_backlog", frozenset())) == 0
            and figures
        ),
        what="the payment outbox to drain",
    )

    assert moved("order", "orders_created_total") == 3
    assert moved("order", "orders_cancelled_total", reason="customer") == 1
    assert moved("product", "stock_reservations_refused_total", reason="out_of_stock") == 1
    for status in ("pending", "processing", "completed"):
        assert moved("payment", "payments_total", provider="mpesa", status=status) >= 2, status
    assert moved("payment", "mpesa_reconciliation_queries_total", result="completed") >= 1
    assert moved("payment", "mpesa_reconciliations_total", outcome="completed") >= 1
    rejected = "webhooks_rejected_total"
    assert moved("payment", rejected, provider="mpesa", reason="bad_secret") == 1
    assert moved("payment", rejected, provider="stripe", reason="bad_signature") == 1
    for service in ("order", "payment"):
        assert ("outbox_backlog", frozenset()) in after[service]
        assert ("outbox_oldest_age_seconds", frozenset()) in after[service]
    assert ("outbox_backlog", frozenset()) not in after["auth"]
    for service in after:
        assert requests_answered(after[service]) > requests_answered(before[service]), service
