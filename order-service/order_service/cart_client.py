"""The cart service, seen from here: the cart as an order (checkout) and emptying it once
the order exists (through the outbox)."""

import logging
import uuid

import httpx

from order_service.exceptions import CartServiceUnavailable, DeliveryRefused
from shared.http_client import ServiceClient, json_object

logger = logging.getLogger(__name__)


class CartClient:
    def __init__(self, services: ServiceClient, base_url: str) -> None:
        self._services = services
        self._url = base_url.rstrip("/")

    async def checkout(self, user_id: uuid.UUID) -> list[tuple[uuid.UUID, int]]:
        """The (productId, quantity) lines of the user's cart; [] when it is empty."""
        try:
            response = await self._services.request(
                "POST", f"{self._url}/api/internal/cart/checkout", json={"userId": str(user_id)}
            )
        except httpx.TransportError as exc:
            raise CartServiceUnavailable() from exc
        if response.status_code == 404:
            return []
        if response.status_code != 200:
            raise CartServiceUnavailable()
        try:
            items = (json_object(response) or {})["cart"].get("items") or []
            return [(uuid.UUID(str(item["productId"])), int(item["quantity"])) for item in items]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            logger.error("cart checkout answer unreadable", extra={"reason": str(exc)})
            raise CartServiceUnavailable() from exc

    async def clear(self, user_id: uuid.UUID | str) -> None:
        try:
            response = await self._services.request(
                "POST", f"{self._url}/api/internal/cart/clear", json={"userId": str(user_id)}
            )
        except httpx.TransportError as exc:
            raise DeliveryRefused(f"cart clear: {type(exc).__name__}") from exc
        # 404: there is no cart any more, which is what was asked.
        if response.status_code not in (200, 404):
            raise DeliveryRefused(f"cart clear: HTTP {response.status_code}")
