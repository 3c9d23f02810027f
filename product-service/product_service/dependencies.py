"""Dependencies that validate and load."""

import logging
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated

from fastapi import Depends, Header, Query, Request
from pydantic import BaseModel, BeforeValidator, StringConstraints, WithJsonSchema
from starlette.responses import Response

from product_service import catalogue
from product_service.exceptions import ProductNotFound
from product_service.models import Product
from product_service.repository import CatalogueQuery
from product_service.schemas import MAX_STOCK, Sort
from product_service.state import ProductState
from shared.auth import AuthenticatedUser, optional_user
from shared.db import SessionDep
from shared.errors import BadRequest, ServiceUnavailable
from shared.http_cache import cacheable_json
from shared.openapi import answers
from shared.schemas import MONEY_PATTERN, parse_money
from shared.state import state_dependency, state_of

logger = logging.getLogger(__name__)

State = Annotated[ProductState, Depends(state_dependency(ProductState))]


async def catalogue_viewer(request: Request) -> AuthenticatedUser | None:
    """Who browses the catalogue: an admin sees inactive products too; anyone else, or a
    token that does not hold, is the public. When the auth service cannot say who the
    token's holder is, the catalogue stays readable as the public sees it."""
    try:
        return await optional_user(request)
    except ServiceUnavailable:
        logger.warning("user status unavailable; serving the public catalogue")
        return None


Viewer = Annotated[AuthenticatedUser | None, Depends(catalogue_viewer)]


def parse_product_id(product_id: str) -> uuid.UUID:
    """A path id that is no UUID names no product: 404, as an unknown one."""
    try:
        return uuid.UUID(product_id)
    except ValueError:
        raise ProductNotFound() from None


@answers((404, "Product not found"))
async def valid_product_id(product_id: str, session: SessionDep) -> Product:
    """The product of the path, active or not (for admin routes)."""
    return await catalogue.get_product(session, parse_product_id(product_id))


@answers((404, "Product not found"))
async def visible_product(product_id: str, session: SessionDep, viewer: Viewer) -> Product:
    return await catalogue.get_visible_product(session, parse_product_id(product_id), viewer)


ValidProduct = Annotated[Product, Depends(valid_product_id)]
VisibleProduct = Annotated[Product, Depends(visible_product)]

PriceQuery = Annotated[
    Decimal,
    BeforeValidator(parse_money),
    WithJsonSchema({"type": "string", "pattern": MONEY_PATTERN}),
]
TextQuery = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]


async def catalogue_query(
    viewer: Viewer,
    category: Annotated[TextQuery | None, Query()] = None,
    search: Annotated[TextQuery | None, Query()] = None,
    min_price: Annotated[PriceQuery | None, Query(alias="minPrice")] = None,
    max_price: Annotated[PriceQuery | None, Query(alias="maxPrice")] = None,
    max_stock: Annotated[
        int | None,
        Query(alias="maxStock", ge=0, le=MAX_STOCK, description="At most this stock."),
    ] = None,
    sort: Annotated[Sort, Query()] = "newest",
    include_inactive: Annotated[bool, Query(alias="includeInactive")] = False,
) -> CatalogueQuery:
    if min_price is not None and max_price is not None and min_price > max_price:
        raise BadRequest(
            "Validation error",
            details=[{"field": "minPrice", "message": "must not be greater than maxPrice"}],
        )
    return CatalogueQuery(
        category=category or None,
        search=search or None,
        min_price=min_price,
        max_price=max_price,
        max_stock=max_stock,
        sort=sort,
        # Asked for by anyone else, it is simply not granted: the public catalogue.
        include_inactive=include_inactive and catalogue.can_see_inactive(viewer),
    )


CatalogueQueryDep = Annotated[CatalogueQuery, Depends(catalogue_query)]


async def catalogue_answer(
    request: Request,
    _: Annotated[
        str | None,
        Header(
            alias="If-None-Match",
            description="An ETag of an earlier answer: 304 without a body if it is current.",
        ),
    ] = None,
) -> Callable[[BaseModel], Response]:
    """How a catalogue read is answered: JSON with an ETag, public for CATALOGUE_MAX_AGE
    seconds to anonymous callers (the gateway's cache and browsers may keep it), private
    to a token's holder, 304 when the client has it already (shared.http_cache). `async`:
    a plain `def` dependency would run in FastAPI's thread pool on every read."""
    max_age = state_of(request.app, ProductState).settings.catalogue_max_age

    def answer(content: BaseModel) -> Response:
        return cacheable_json(request, content, max_age=max_age)

    return answer


CatalogueAnswer = Annotated[Callable[[BaseModel], Response], Depends(catalogue_answer)]
