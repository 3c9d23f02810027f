"""HTTP in, HTTP out: the cart service's routes (the original's contract; the gateway
passes `/api/cart/...` through unchanged)."""

from fastapi import APIRouter

from cart_service import carts
from cart_service.dependencies import ItemId, State
from cart_service.schemas import (
    AddItemRequest,
    CartEnvelope,
    MessageWithCart,
    UpdateItemRequest,
    UserIdRequest,
)
from shared.auth import CurrentUser, InternalCaller
from shared.openapi import errors

router = APIRouter(prefix="/api", tags=["cart"])
internal_router = APIRouter(prefix="/api/internal", tags=["internal"])


@router.get("/cart", response_model=CartEnvelope)
async def get_cart(user: CurrentUser, state: State) -> CartEnvelope:
    return CartEnvelope(cart=await carts.get(state, user.id))


@router.post(
    "/cart/items",
    response_model=MessageWithCart,
    responses=errors((404, "Product not found")),
)
async def add_item(data: AddItemRequest, user: CurrentUser, state: State) -> MessageWithCart:
    cart = await carts.add_item(state, user.id, data.product_id, data.quantity)
    return MessageWithCart(message="Item added to cart", cart=cart)


@router.put("/cart/items/{item_id}", response_model=MessageWithCart)
async def update_item(
    item_id: ItemId, data: UpdateItemRequest, user: CurrentUser, state: State
) -> MessageWithCart:
    cart = await carts.update_item(state, user.id, item_id, data.quantity)
    return MessageWithCart(message="Cart item updated", cart=cart)


@router.delete("/cart/items/{item_id}", response_model=MessageWithCart)
async def remove_item(item_id: ItemId, user: CurrentUser, state: State) -> MessageWithCart:
    cart = await carts.remove_item(state, user.id, item_id)
    return MessageWithCart(message="Item removed from cart", cart=cart)


@router.delete("/cart", response_model=MessageWithCart)
async def clear_cart(user: CurrentUser, state: State) -> MessageWithCart:
    return MessageWithCart(message="Cart cleared", cart=await carts.clear(state, user.id))


@internal_router.post(
    "/cart/checkout", response_model=CartEnvelope, responses=errors((404, "Cart is empty"))
)
async def checkout_cart(data: UserIdRequest, caller: InternalCaller, state: State) -> CartEnvelope:
    """The order service reads the cart it orders from."""
    return CartEnvelope(cart=await carts.checkout(state, data.user_id))


@internal_router.post("/cart/clear", response_model=MessageWithCart)
async def clear_cart_after_order(
    data: UserIdRequest, caller: InternalCaller, state: State
) -> MessageWithCart:
    """The order service empties the cart after a successful order."""
    return MessageWithCart(message="Cart cleared", cart=await carts.clear(state, data.user_id))
