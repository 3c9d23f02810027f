"""The auth service, seen from every other service: a user's current status, from its
internal `GET /api/internal/users/{id}` (docs/internal-api.md), and the public keys user
tokens are verified with, from its `GET /.well-known/jwks.json`."""

import uuid
from typing import Any

import httpx

from shared.errors import ServiceUnavailable
from shared.http_client import ServiceClient
from shared.user_status import UserStatus, UserStatusSource
from shared.user_token_keys import JwksSource

JWKS_PATH = "/.well-known/jwks.json"

AUTH_UNAVAILABLE = "Auth service unavailable"


def auth_service_status_source(client: ServiceClient, auth_service_url: str) -> UserStatusSource:
    """Reads a user's status from the auth service's internal route."""

    async def fetch(user_id: uuid.UUID) -> UserStatus | None:
        try:
            response = await client.request(
                "GET", f"{auth_service_url}/api/internal/users/{user_id}"
            )
        except httpx.TransportError as exc:
            raise ServiceUnavailable(AUTH_UNAVAILABLE) from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ServiceUnavailable(AUTH_UNAVAILABLE)
        user = response.json()["user"]
        return UserStatus(
            role=user["role"],
            is_active=user["isActive"],
            tokens_valid_after=user.get("tokensValidAfter", 0),
        )

    return fetch


def auth_service_jwks(client: ServiceClient, auth_service_url: str) -> JwksSource:
    """Fetches the auth service's JWKS (public: no internal token)."""

    async def fetch() -> Any:
        response = await client.request("GET", f"{auth_service_url}{JWKS_PATH}", internal=False)
        response.raise_for_status()
        return response.json()

    return fetch
