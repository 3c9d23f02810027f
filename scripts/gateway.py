"""What the scripts that use a running system (`make seed`, `make reconcile`) share: the
gateway's address, the admin's credentials as `make run` has them, logging in."""

from collections.abc import Mapping

import httpx

from scripts.stack import DEFAULT_ADMIN_EMAIL, dev_secrets_file, stored_development_secrets


class ScriptError(Exception):
    """Something the person running the script must fix; said in one sentence."""


def gateway_url(env: Mapping[str, str]) -> str:
    """GATEWAY_URL, else http://127.0.0.1:GATEWAY_PORT (5000)."""
    return env.get("GATEWAY_URL") or f"http://127.0.0.1:{env.get('GATEWAY_PORT') or 5000}"


def check_gateway(client: httpx.Client) -> None:
    try:
        client.get("/health").raise_for_status()
    except httpx.HTTPError as exc:
        raise ScriptError(
            f"the gateway at {client.base_url} does not answer ({exc}): `make run` first"
        ) from None


def admin_credentials(env: Mapping[str, str]) -> tuple[str, str]:
    """ADMIN_EMAIL / ADMIN_PASSWORD, else the development admin `make run` made."""
    email = env.get("ADMIN_EMAIL") or DEFAULT_ADMIN_EMAIL
    password = env.get("ADMIN_PASSWORD") or stored_development_secrets(env).get("ADMIN_PASSWORD")
    if not password:
        raise ScriptError(
            "no admin password: set ADMIN_EMAIL and ADMIN_PASSWORD (as for `make run`), "
            f"or start `make run` once so that it makes the development admin "
            f"(its password goes to {dev_secrets_file(env)})"
        )
    return email, password


def login(client: httpx.Client, email: str, password: str, who: str) -> str:
    response = client.post("/api/auth/login", json={"email": email, "password": password})
    if response.status_code != 200:
        raise ScriptError(
            f"cannot log in as the {who} {email} ({response.status_code} "
            f"{response.text[:200]}): is `make run` running with the same settings?"
        )
    return response.json()["token"]
