"""The product service, seen from the cart: what the cart knows of products is always
asked from it, through its internal `POST /api/internal/products/lookup`
(docs/internal-api.md).

The lookup rather than the public `GET /api/products/{id}`: one call answers every line
of a cart (a cart of 30 lines is one request, not 30), it tells an inactive product from
an unknown one (`isActive`; the public route answers 404 for both) and it gives the
stock, which the cart checks quantities against.
"""

import asyncio
import logging
import uuid
from collections.abc import Iterable

import httpx
from pydantic import ValidationError

from cart_service.exceptions import ProductServiceUnavailable
from cart_service.schemas import CatalogueProduct, LookupResponse
from shared.http_client import ServiceClient

logger = logging.getLogger(__name__)

LOOKUP_PATH = "/api/internal/products/lookup"
# The lookup answers at most this many ids per call.
LOOKUP_BATCH_SIZE = 100


# Every id asked for: the product, or None when the product service does not know it.
Catalogue = dict[uuid.UUID, CatalogueProduct | None]


class ProductClient:
    def __init__(self, services: ServiceClient, base_url: str) -> None:
        self._services = services
        self._url = base_url.rstrip("/")

    async def lookup(self, product_ids: Iterable[uuid.UUID], *, timeout: float) -> Catalogue:
        """The current state of these products, by id (None for an id the product service
        does not know). `ProductServiceUnavailable` when the product service cannot answer
        within `timeout`."""
        ids = list(dict.fromkeys(product_ids))
        if not ids:
            return {}
        batches = [ids[i : i + LOOKUP_BATCH_SIZE] for i in range(0, len(ids), LOOKUP_BATCH_SIZE)]
        try:
            async with asyncio.timeout(timeout):
                answers = await asyncio.gather(
                    *(self._lookup_batch(batch, timeout=timeout) for batch in batches)
                )
        except TimeoutError as exc:
            logger.warning("product lookup timed out", extra={"timeoutSeconds": timeout})
            raise ProductServiceUnavailable() from exc
        catalogue: Catalogue = {}
        for answer in answers:
            catalogue.update(answer)
        return catalogue

    async def _lookup_batch(self, ids: list[uuid.UUID], *, timeout: float) -> Catalogue:
        try:
            response = await self._services.request(
                "POST",
                f"{self._url}{LOOKUP_PATH}",
                json={"productIds": [str(product_id) for product_id in ids]},
                timeout=timeout,
            )
        except httpx.TransportError as exc:
            logger.warning("product service unreachable", extra={"error": type(exc).__name__})
            raise ProductServiceUnavailable() from exc
        if response.status_code != 200:
            logger.warning("product lookup failed", extra={"status": response.status_code})
            raise ProductServiceUnavailable()
        try:
            products = LookupResponse.model_validate_json(response.content).products
        except ValidationError as exc:
            logger.warning("product lookup answered an unexpected body")
            raise ProductServiceUnavailable() from exc
        found = {product.id: product for product in products}
        return {product_id: found.get(product_id) for product_id in ids}
