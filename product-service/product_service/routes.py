"""HTTP in, HTTP out: the product service's routes."""

from fastapi import APIRouter

router = APIRouter(prefix="/api", tags=["product"])
internal_router = APIRouter(prefix="/api/internal", tags=["internal"])
