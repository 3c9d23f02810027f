"""The product service, seen from here: an order's stock reserved (all or nothing, under
the order's id) and released (through the outbox)."""

import logging
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from order_service.exceptions import DeliveryRefused
from shared.http_client import ServiceClient, json_object

logger = logging.getLogger(__name__)

OUT_OF_STOCK = "Some items are out of stock"


@dataclass(frozen=True)
class ReservedLine:
    product_id: uuid.UUID
    name: str
    price: Decimal
    quantity: int


@dataclass(frozen=True)
class Reserved:
    lines: list[ReservedLine]


@dataclass(frozen=True)
class OutOfStock:
    details: Any


@dataclass(frozen=True)
class NotReserved:
    """Nothing is taken: the request never left, or the product service refused it for
    another reason than stock."""


@dataclass(frozen=True)
class ReservationUnknown:
    """The request may have been served (timeout, 5xx, an answer we cannot read): stock
    may be taken for this order and must be released."""

    reason: str


ReserveOutcome = Reserved | OutOfStock | NotReserved | ReservationUnknown


class ProductClient:
    def __init__(self, services: ServiceClient, base_url: str) -> None:
        self._services = services
        self._url = base_url.rstrip("/")

    async def reserve(self, order_id: uuid.UUID, lines: dict[uuid.UUID, int]) -> ReserveOutcome:
        body = {
            "orderId": str(order_id),
            "items": [
                {"productId": str(product_id), "quantity": quantity}
                for product_id, quantity in lines.items()
            ],
        }
        try:
            response = await self._services.request(
                "POST", f"{self._url}/api/internal/reserve", json=body
            )
        except (httpx.ConnectError, httpx.ConnectTimeout):
            return NotReserved()
        except httpx.TransportError as exc:
            return ReservationUnknown(type(exc).__name__)
        if response.status_code == 409:
            refusal = json_object(response) or {}
            if refusal.get("error") == OUT_OF_STOCK:
                return OutOfStock(refusal.get("details", []))
            # "Reservation already released" (a release for this order came first) or
            # "... reservation with other items": refused, nothing taken for this call.
            logger.warning(
                "reserve refused", extra={"orderId": str(order_id), "reason": refusal.get("error")}
            )
            return NotReserved()
        if response.status_code != 200:
            logger.warning(
                "reserve refused", extra={"orderId": str(order_id), "status": response.status_code}
            )
            return ReservationUnknown(f"HTTP {response.status_code}")
        try:
            reserved = _reserved_lines((json_object(response) or {}), lines)
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            logger.error(
                "reserve answer does not match the request",
                extra={"orderId": str(order_id), "reason": str(exc)},
            )
            return ReservationUnknown("unexpected reserve answer")
        return Reserved(reserved)

    async def release(self, order_id: uuid.UUID | str) -> None:
        """Gives back what the order's reservation took (once; idempotent on the product
        side). Raises when the product service does not acknowledge."""
        try:
            response = await self._services.request(
                "POST", f"{self._url}/api/internal/release", json={"orderId": str(order_id)}
            )
        except httpx.TransportError as exc:
            raise DeliveryRefused(f"release: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise DeliveryRefused(f"release: HTTP {response.status_code}")


def _reserved_lines(body: dict[str, Any], requested: dict[uuid.UUID, int]) -> list[ReservedLine]:
    """The reservation's lines, which must be exactly what was asked for."""
    lines = [
        ReservedLine(
            product_id=uuid.UUID(str(item["productId"])),
            name=str(item["name"]),
            price=Decimal(str(item["price"])),
            quantity=int(item["quantity"]),
        )
        for item in body["items"]
    ]
    answered = {line.product_id: line.quantity for line in lines}
    if answered != requested or len(lines) != len(requested):
        raise ValueError("reserved lines differ from the requested ones")
    if any(not line.price.is_finite() or line.price < 0 for line in lines):
        raise ValueError("a reserved price is not a price")
    order = list(requested)
    return sorted(lines, key=lambda line: order.index(line.product_id))
