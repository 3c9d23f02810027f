"""HTTP in, HTTP out: the cart service's routes."""

from fastapi import APIRouter

router = APIRouter(prefix="/api", tags=["cart"])
internal_router = APIRouter(prefix="/api/internal", tags=["internal"])
