"""The order service, seen from here: read an order before charging for it, tell it what
a payment became (the outbox's sender, never directly from a request), and list the
orders of a window (the money reconciliation)."""

import logging
import uuid
from datetime import datetime
from typing import Any

import httpx

from payment_service.exceptions import OrderServiceUnavailable, OrderUpdateRefused
from shared.http_client import ServiceClient

logger = logging.getLogger(__name__)

# Statuses and payment statuses of an order whose money has already been received.
PAID_ORDER_STATUSES = frozenset({"paid", "processing", "shipped", "delivered"})
PAID_PAYMENT_STATUSES = frozenset({"paid", "refunded", "refund_pending"})
CLOSED_ORDER_STATUSES = frozenset({"cancelled", "failed"})


class OrderClient:
    def __init__(self, services: ServiceClient, base_url: str) -> None:
        self._services = services
        self._url = base_url.rstrip("/")

    async def fetch_order(self, order_id: uuid.UUID) -> dict[str, Any] | None:
        """The order as the order service shows it; None when it has no such order."""
        response = await self._get(f"/api/internal/orders/{order_id}", allow_missing=True)
        return None if response is None else dict(response["order"])

    async def update_status(self, payload: dict[str, Any]) -> None:
        """The outbox's sender: returns when the order service has the update (applied now
        or before), raises to be retried later. A 404 or 409 will never succeed: logged
        loudly for a person to look at, and not retried forever."""
        response = await self._services.request(
            "POST", f"{self._url}/api/internal/update-status", json=payload
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

    async def list_orders(
        self, created_from: datetime, created_to: datetime, page_size: int = 100
    ) -> list[dict[str, Any]]:
        """Every order created in [created_from, created_to), page by page."""
        orders: list[dict[str, Any]] = []
        page = 1
        while True:
            body = await self._get(
                "/api/internal/orders",
                params={
                    "from": created_from.isoformat(),
                    "to": created_to.isoformat(),
                    "page": page,
                    "limit": page_size,
                },
            )
            assert body is not None  # only a missing order may be None
            orders += body["orders"]
            if page >= body["totalPages"]:
                return orders
            page += 1

    async def _get(
        self, path: str, *, allow_missing: bool = False, params: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        try:
            response = await self._services.request("GET", self._url + path, params=params)
        except httpx.TransportError as exc:
            raise OrderServiceUnavailable() from exc
        if allow_missing and response.status_code == 404:
            return None
        if response.status_code != 200:
            logger.warning("order service answered %s", response.status_code)
            raise OrderServiceUnavailable()
        body: dict[str, Any] = response.json()
        return body
