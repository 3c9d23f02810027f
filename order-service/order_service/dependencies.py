"""Dependencies that validate and load."""

from functools import cache
from typing import Annotated
from zoneinfo import ZoneInfo, available_timezones

from fastapi import Depends, Query

from order_service import orders
from order_service.schemas import OrderDetailOut
from order_service.state import OrderState
from shared.auth import AdminUser, CurrentUser
from shared.errors import BadRequest
from shared.openapi import answers
from shared.state import state_dependency

State = Annotated[OrderState, Depends(state_dependency(OrderState))]


@answers((404, "Order not found"))
async def own_order(order_id: str, user: CurrentUser, state: State) -> OrderDetailOut:
    """The caller's order, or 404 (another user's order is as unknown as a missing one)."""
    return await orders.get_own_order(state, user, order_id)


@answers((404, "Order not found"))
async def any_order(order_id: str, admin: AdminUser, state: State) -> OrderDetailOut:
    return await orders.get_any_order(state, order_id)


OwnOrder = Annotated[OrderDetailOut, Depends(own_order)]
AnyOrder = Annotated[OrderDetailOut, Depends(any_order)]


@cache
def _time_zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


async def time_zone(
    timezone: Annotated[
        str,
        Query(
            max_length=64,
            description="An IANA time zone (Africa/Nairobi): the days are its calendar days.",
            json_schema_extra={"enum": sorted(_time_zone_names())},
        ),
    ] = "UTC",
) -> ZoneInfo:
    # Only names of the time zone database, never a path ZoneInfo would try to read.
    if timezone not in _time_zone_names():
        raise BadRequest(
            "Validation error", details=[{"field": "timezone", "message": "unknown time zone"}]
        )
    return ZoneInfo(timezone)


TimeZone = Annotated[ZoneInfo, Depends(time_zone)]
