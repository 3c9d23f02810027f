"""The catalogue: products as the public and the admins see them, and the admins'
changes. Each function is one transaction of the caller's `session`."""

import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from product_service import repository
from product_service.exceptions import ProductNotFound
from product_service.models import Product
from product_service.repository import CatalogueQuery
from product_service.schemas import ProductCreate, ProductUpdate
from shared.auth import AuthenticatedUser
from shared.schemas import Page

logger = logging.getLogger(__name__)


def can_see_inactive(user: AuthenticatedUser | None) -> bool:
    return user is not None and user.is_admin


async def list_products(
    session: AsyncSession, query: CatalogueQuery, page: Page
) -> tuple[list[Product], int]:
    return await repository.list_products(session, query, offset=page.offset, limit=page.limit)


async def get_product(session: AsyncSession, product_id: uuid.UUID) -> Product:
    """The product, active or not (for admin routes)."""
    product = await repository.get_product(session, product_id)
    if product is None:
        raise ProductNotFound()
    return product


async def get_visible_product(
    session: AsyncSession, product_id: uuid.UUID, viewer: AuthenticatedUser | None
) -> Product:
    """A product as the viewer may see it: inactive ones exist for admins only."""
    product = await repository.get_product(session, product_id)
    if product is None or not (product.is_active or can_see_inactive(viewer)):
        raise ProductNotFound()
    return product


async def lookup(session: AsyncSession, product_ids: list[uuid.UUID]) -> list[Product]:
    """The products of these ids that exist, active or not (the internal lookup)."""
    return await repository.get_products(session, product_ids)


async def create_product(
    session: AsyncSession, data: ProductCreate, admin: AuthenticatedUser
) -> Product:
    product = Product(id=uuid.uuid4(), **data.model_dump())
    session.add(product)
    await session.flush()  # a taken sku fails here: 400 "Resource already exists"
    await session.refresh(product)
    logger.info("product created", extra={"productId": str(product.id), "adminId": str(admin.id)})
    return product


async def update_product(
    session: AsyncSession, product: Product, data: ProductUpdate, admin: AuthenticatedUser
) -> Product:
    changes = data.changes()
    for name, value in changes.items():
        setattr(product, name, value)
    await session.flush()
    await session.refresh(product)
    logger.info(
        "product updated",
        extra={"productId": str(product.id), "adminId": str(admin.id), "fields": sorted(changes)},
    )
    return product


async def deactivate_product(
    session: AsyncSession, product: Product, admin: AuthenticatedUser
) -> None:
    """Soft delete: the product leaves the catalogue; orders and carts keep their lines."""
    product.is_active = False
    await session.flush()
    logger.info("product deleted", extra={"productId": str(product.id), "adminId": str(admin.id)})
