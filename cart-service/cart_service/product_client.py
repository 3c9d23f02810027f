"""The product service, seen from the cart: what the cart knows of products is always
asked from it, through its internal `POST /api/internal/products/lookup`
(docs/internal-api.md).

The lookup rather than the public `GET /api/products/{id}`: one call answers every line
of a cart (a cart of 30 lines is one request, not 30), it tells an inactive product from
an unknown one (`isActive`; the public route answers 404 for both) and it gives the
stock, which the cart checks quantities against.

What it answered is remembered for `max_age` seconds (CART_PRICE_MAX_AGE, default 1):
a cart read (`lookup_recent`) takes products from there, so that a client reading its
cart again and again does not cost a lookup each time. A change always asks (`lookup`).
"""

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterable

import httpx
from pydantic import ValidationError

from cart_service.exceptions import ProductServiceUnavailable
from cart_service.schemas import CatalogueProduct, LookupResponse
from shared.http_client import ServiceClient

logger = logging.getLogger(__name__)

LOOKUP_PATH = "/api/internal/products/lookup"
# The lookup answers at most this many ids per call.
LOOKUP_BATCH_SIZE = 100
# Products remembered at most; beyond, the oldest are forgotten first.
REMEMBERED_PRODUCTS = 10_000


# Every id asked for: the product, or None when the product service does not know it.
Catalogue = dict[uuid.UUID, CatalogueProduct | None]


class ProductClient:
    def __init__(
        self,
        services: ServiceClient,
        base_url: str,
        *,
        max_age: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._services = services
        self._url = base_url.rstrip("/")
        self._max_age = max_age
        self._clock = clock
        # product id -> (when it was looked up, what the product service answered)
        self._recent: dict[uuid.UUID, tuple[float, CatalogueProduct | None]] = {}

    async def lookup_recent(self, product_ids: Iterable[uuid.UUID], *, timeout: float) -> Catalogue:
        """For a read: products looked up less than `max_age` seconds ago as they were
        then, the others asked now (`lookup`)."""
        now = self._clock()
        catalogue: Catalogue = {}
        missing = []
        for product_id in dict.fromkeys(product_ids):
            remembered = self._recent.get(product_id)
            if remembered is not None and now - remembered[0] < self._max_age:
                catalogue[product_id] = remembered[1]
            else:
                missing.append(product_id)
        if missing:
            catalogue.update(await self.lookup(missing, timeout=timeout))
        return catalogue

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
        self._remember(catalogue)
        return catalogue

    def _remember(self, catalogue: Catalogue) -> None:
        if self._max_age <= 0:
            return
        now = self._clock()
        for product_id, product in catalogue.items():
            self._recent.pop(product_id, None)  # re-inserted last: the newest
            if len(self._recent) >= REMEMBERED_PRODUCTS:
                del self._recent[next(iter(self._recent))]
            self._recent[product_id] = (now, product)

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
