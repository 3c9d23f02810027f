"""Dependencies that validate and load."""

import uuid
from typing import Annotated

from fastapi import Depends, Request

from cart_service.service import CartService
from shared.errors import NotFound


async def cart_service(request: Request) -> CartService:
    state = request.app.state
    return CartService(state.sessionmaker, state.services, state.settings)


async def valid_item_id(item_id: str) -> uuid.UUID:
    """An id that is not a UUID names no line of any cart: 404, as an unknown one."""
    try:
        return uuid.UUID(item_id)
    except ValueError:
        raise NotFound("Item not found in cart") from None


Carts = Annotated[CartService, Depends(cart_service)]
ItemId = Annotated[uuid.UUID, Depends(valid_item_id)]
