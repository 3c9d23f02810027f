"""HTTP in, HTTP out: the order service's routes."""

from fastapi import APIRouter

router = APIRouter(prefix="/api", tags=["order"])
internal_router = APIRouter(prefix="/api/internal", tags=["internal"])
