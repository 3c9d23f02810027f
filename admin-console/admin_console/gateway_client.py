"""The console's client of the shop's public API, through the gateway.

Every call carries the signed-in admin's token, and the address of the person at the
browser (`X-Forwarded-For`) with an internal token that tells the gateway the console
vouches for it: the gateway's rate limits then count each person, not the console. Every
answer that is not a success becomes an `ApiError` with the API's own message, which the
pages show as it is."""

from typing import Any

import httpx

from admin_console.exceptions import ApiError
from shared.http_client import ServiceClient

SERVICE_NAME = "admin-console"  # the issuer of its internal tokens (the gateway checks it)


class ShopApi:
    """The API as one signed-in person uses it (or nobody yet, to sign in)."""

    def __init__(
        self, client: ServiceClient, base_url: str, *, token: str | None, client_ip: str | None
    ) -> None:
        self._client = client
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._client_ip = client_ip

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
    ) -> dict[str, Any]:
        headers = {}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if self._client_ip:
            headers["X-Forwarded-For"] = self._client_ip
        query = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        try:
            response = await self._client.request(
                method, self._base_url + path, params=query, json=json, headers=headers
            )
        except httpx.TimeoutException:
            raise ApiError(504, "The shop's API took too long to answer. Try again.") from None
        except httpx.TransportError:
            raise ApiError(503, "The shop's API does not answer. Try again shortly.") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_success and isinstance(body, dict):
            return body
        message = body.get("error") if isinstance(body, dict) else None
        raise ApiError(
            response.status_code,
            str(message or f"The API answered {response.status_code}"),
            details=body.get("details") if isinstance(body, dict) else None,
            retry_after=response.headers.get("retry-after"),
            extra=body if isinstance(body, dict) else {},
        )

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        return await self.call("GET", path, params=params)

    async def post(self, path: str, json: Any) -> dict[str, Any]:
        return await self.call("POST", path, json=json)

    async def put(self, path: str, json: Any) -> dict[str, Any]:
        return await self.call("PUT", path, json=json)

    async def patch(self, path: str, json: Any) -> dict[str, Any]:
        return await self.call("PATCH", path, json=json)

    async def delete(self, path: str) -> dict[str, Any]:
        return await self.call("DELETE", path)
