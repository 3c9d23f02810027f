"""Dependencies that validate and load: the API as the signed-in admin uses it."""

from typing import Annotated, Any

from fastapi import Depends, Request

from admin_console.exceptions import ApiError, SignInRequired
from admin_console.gateway_client import ShopApi
from admin_console.session import SessionToken, current_path
from admin_console.state import console_settings, console_state

ADMIN_ONLY = "Access denied. Admin only."


def client_ip(request: Request) -> str | None:
    """The address of the person at the browser: the gateway's X-Real-IP (it always sets
    it, from TRUSTED_PROXIES); the console is reachable only through the gateway."""
    return request.headers.get("x-real-ip") or (request.client.host if request.client else None)


class AdminApi(ShopApi):
    """The API with the session's token. A token the API no longer accepts (expired,
    revoked, its user deactivated or demoted) ends the session: back to sign-in, with the
    page remembered."""

    def __init__(self, request: Request, token: str | None) -> None:
        super().__init__(
            console_state(request).gateway,
            console_settings(request).gateway_url,
            token=token,
            client_ip=client_ip(request),
        )
        self._next_path = current_path(request) if request.method == "GET" else None

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
    ) -> dict[str, Any]:
        try:
            return await super().call(method, path, params=params, json=json)
        except ApiError as error:
            if self._token and error.status == 401:
                raise SignInRequired(self._next_path or "/admin/", "expired") from None
            if self._token and error.status == 403 and error.message == ADMIN_ONLY:
                raise SignInRequired(self._next_path or "/admin/", "not-admin") from None
            raise


async def admin_api(request: Request, token: SessionToken) -> AdminApi:
    return AdminApi(request, token)


async def anonymous_api(request: Request) -> ShopApi:
    return ShopApi(
        console_state(request).gateway,
        console_settings(request).gateway_url,
        token=None,
        client_ip=client_ip(request),
    )


Api = Annotated[AdminApi, Depends(admin_api)]
AnonymousApi = Annotated[ShopApi, Depends(anonymous_api)]
