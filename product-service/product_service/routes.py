"""HTTP in, HTTP out: the product service's routes (the original's catalogue, the admin's
restock, and the internal stock routes of docs/internal-api.md)."""

from typing import Any

from fastapi import APIRouter, status
from starlette.responses import Response

from product_service import catalogue, reservations, stock
from product_service.dependencies import (
    CatalogueAnswer,
    CatalogueQueryDep,
    State,
    ValidProduct,
    VisibleProduct,
)
from product_service.schemas import (
    CheckStockRequest,
    CheckStockResponse,
    LookupRequest,
    LookupResponse,
    Message,
    MessageWithProduct,
    ProductCreate,
    ProductEnvelope,
    ProductList,
    ProductOut,
    ProductSummary,
    ProductUpdate,
    ReleaseRequest,
    ReleaseResponse,
    ReserveRequest,
    ReserveResponse,
    StockChange,
    UpdateStockRequest,
)
from shared.auth import AdminUser, InternalCaller
from shared.db import SessionDep
from shared.openapi import errors
from shared.schemas import PageDep

router = APIRouter(prefix="/api", tags=["product"])
internal_router = APIRouter(prefix="/api/internal", tags=["internal"])


# Catalogue reads carry an ETag and Cache-Control (public to anonymous callers): see
# dependencies.catalogue_answer.
# The answer of a read whose ETag the client already holds (If-None-Match).
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not Modified: the If-None-Match ETag is current (no body)"}
}


@router.get("/products", response_model=ProductList, responses=NOT_MODIFIED)
async def list_products(
    query: CatalogueQueryDep, page: PageDep, session: SessionDep, answer: CatalogueAnswer
) -> Response:
    products, total = await catalogue.list_products(session, query, page)
    return answer(
        ProductList(
            products=[ProductOut.model_validate(p) for p in products],
            total_pages=page.total_pages(total),
            current_page=page.page,
            total_products=total,
        )
    )


@router.get("/products/{product_id}", response_model=ProductEnvelope, responses=NOT_MODIFIED)
async def get_product(product: VisibleProduct, answer: CatalogueAnswer) -> Response:
    return answer(ProductEnvelope(product=product))


@router.post("/products", status_code=status.HTTP_201_CREATED, response_model=MessageWithProduct)
async def create_product(
    data: ProductCreate, admin: AdminUser, session: SessionDep
) -> MessageWithProduct:
    product = await catalogue.create_product(session, data, admin)
    return MessageWithProduct(message="Product created successfully", product=product)


@router.put("/products/{product_id}", response_model=MessageWithProduct)
async def update_product(
    data: ProductUpdate, admin: AdminUser, product: ValidProduct, session: SessionDep
) -> MessageWithProduct:
    product = await catalogue.update_product(session, product, data, admin)
    return MessageWithProduct(message="Product updated successfully", product=product)


@router.delete("/products/{product_id}", response_model=Message)
async def delete_product(admin: AdminUser, product: ValidProduct, session: SessionDep) -> Message:
    await catalogue.deactivate_product(session, product, admin)
    return Message(message="Product deleted successfully")


@router.patch("/products/{product_id}/stock", response_model=MessageWithProduct)
async def restock(
    change: StockChange, admin: AdminUser, product: ValidProduct, session: SessionDep
) -> MessageWithProduct:
    product = await stock.restock(session, product, change)
    return MessageWithProduct(message="Stock updated", product=product)


@internal_router.post("/check-stock", response_model=CheckStockResponse)
async def check_stock(
    data: CheckStockRequest, caller: InternalCaller, session: SessionDep
) -> CheckStockResponse:
    return await stock.check_stock(session, data.items)


@internal_router.post("/products/lookup", response_model=LookupResponse)
async def lookup_products(
    data: LookupRequest, caller: InternalCaller, session: SessionDep
) -> LookupResponse:
    products = await catalogue.lookup(session, data.product_ids)
    return LookupResponse(products=[ProductSummary.model_validate(p) for p in products])


@internal_router.post(
    "/reserve",
    response_model=ReserveResponse,
    responses=errors((409, "Out of stock, or the reservation changed")),
)
async def reserve(data: ReserveRequest, caller: InternalCaller, state: State) -> ReserveResponse:
    return await reservations.reserve(state.hot_path, data.order_id, data.items, caller)


@internal_router.post("/release", response_model=ReleaseResponse)
async def release(
    data: ReleaseRequest, caller: InternalCaller, session: SessionDep
) -> ReleaseResponse:
    released = await reservations.release(session, data.order_id, caller)
    return ReleaseResponse(order_id=data.order_id, released=released)


@internal_router.post(
    "/update-stock",
    response_model=MessageWithProduct,
    responses=errors((404, "Product not found")),
)
async def update_stock(
    data: UpdateStockRequest, caller: InternalCaller, session: SessionDep
) -> MessageWithProduct:
    product = await stock.change_stock(session, data.product_id, data.quantity)
    return MessageWithProduct(message="Stock updated", product=product)
