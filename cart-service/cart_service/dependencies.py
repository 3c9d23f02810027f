"""Dependencies that validate and load."""

import uuid
from typing import Annotated

from fastapi import Depends

from cart_service.exceptions import CartItemNotFound
from cart_service.state import CartState
from shared.openapi import answers
from shared.state import state_dependency

State = Annotated[CartState, Depends(state_dependency(CartState))]


@answers((404, "Item not found in cart"))
async def valid_item_id(item_id: str) -> uuid.UUID:
    """An id that is not a UUID names no line of any cart: 404, as an unknown one."""
    try:
        return uuid.UUID(item_id)
    except ValueError:
        raise CartItemNotFound() from None


ItemId = Annotated[uuid.UUID, Depends(valid_item_id)]
