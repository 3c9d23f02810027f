"""The order service, seen from here: read an order before charging for it, and tell it
what a payment became (through the outbox, never directly from a request)."""

import logging
import uuid
from datetime import datetime
from typing import Any

import httpx

from shared.errors import ServiceUnavailable
from shared.http_client import ServiceClient

logger = logging.getLogger(__name__)

UPDATE_STATUS_TOPIC = "order.update-status"
# Statuses and payment statuses of an order whose money has already been received.
PAID_ORDER_STATUSES = frozenset({"paid", "processing", "shipped", "delivered"})
PAID_PAYMENT_STATUSES = frozenset({"paid", "refunded", "refund_pending"})


class OrderUpdateRefused(Exception):
    pass


async def fetch_order(
    services: ServiceClient, order_service_url: str, order_id: uuid.UUID
) -> dict[str, Any] | None:
    try:
        response = await services.request(
            "GET", f"{order_service_url}/api/internal/orders/{order_id}"
        )
    except httpx.TransportError as exc:
        raise ServiceUnavailable("Order service unavailable") from exc
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        logger.warning("order service answered %s", response.status_code)
        raise ServiceUnavailable("Order service unavailable")
    return response.json()["order"]


def update_status_sender(services: ServiceClient, order_service_url: str):
    """The outbox sender: returns when the order service has the update (applied now or
    before), raises to be retried later. A 404 or 409 will never succeed: logged loudly for
    a person to look at, and not retried forever."""

    async def send(payload: dict[str, Any]) -> None:
        response = await services.request(
            "POST", f"{order_service_url}/api/internal/update-status", json=payload
        )
        if response.status_code == 200:
            return
        if response.status_code == 409 and payload.get("paymentStatus") == "refunded":
            # The order may not have heard "paid" yet (that message is being retried).
            raise OrderUpdateRefused("update-status answered 409; the order is not paid yet")
        if response.status_code in (404, 409):
            logger.error(
                "order service refused a payment update",
                extra={
                    "orderId": payload.get("orderId"),
                    "paymentId": payload.get("paymentId"),
                    "status": response.status_code,
                    "reason": response.text[:500],
                },
            )
            return
        raise OrderUpdateRefused(f"update-status answered HTTP {response.status_code}")

    return send


async def list_orders(
    services: ServiceClient,
    order_service_url: str,
    created_from: datetime,
    created_to: datetime,
    page_size: int = 100,
) -> list[dict[str, Any]]:
    """Every order created in [created_from, created_to), page by page (reconciliation)."""
    orders: list[dict[str, Any]] = []
    page = 1
    while True:
        body = await _get(
            services,
            f"{order_service_url}/api/internal/orders",
            params={
                "from": created_from.isoformat(),
                "to": created_to.isoformat(),
                "page": page,
                "limit": page_size,
            },
        )
        orders += body["orders"]
        if page >= body["totalPages"]:
            return orders
        page += 1


async def _get(services: ServiceClient, url: str, **kwargs: Any) -> dict[str, Any]:
    try:
        response = await services.request("GET", url, **kwargs)
    except httpx.TransportError as exc:
        raise ServiceUnavailable("Order service unavailable") from exc
    if response.status_code != 200:
        logger.warning("order service answered %s", response.status_code)
        raise ServiceUnavailable("Order service unavailable")
    return response.json()
