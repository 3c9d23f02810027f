"""HTTP in, HTTP out: the payment service's routes."""

from fastapi import APIRouter

router = APIRouter(prefix="/api", tags=["payment"])
internal_router = APIRouter(prefix="/api/internal", tags=["internal"])
