"""The admin console's word for the address of the people signed in to it (any other
client's address: shared.client_address, X-Forwarded-For believed only from
TRUSTED_PROXIES)."""

import ipaddress
from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from starlette.requests import Request

from shared.http_client import INTERNAL_TOKEN_HEADER
from shared.tokens import InvalidToken, decode_internal_token

# The admin console calls this API for the people signed in to it: it sends their address
# in X-Forwarded-For, with an internal token to show that the console says so.
CONSOLE = "admin-console"
GATEWAY = "gateway"  # the audience of the console's tokens


def console_vouched_ip(
    request: Request, internal_keys: Mapping[str, Ed25519PublicKey]
) -> str | None:
    """The address of the person the admin console calls for (its X-Forwarded-For, one
    address), when the call carries the console's internal token (signed with the
    console's own key, for the gateway); None for anyone else.
    Rate limits then count that person, not the console, whose address every signed-in
    admin shares."""
    token = request.headers.get(INTERNAL_TOKEN_HEADER)
    forwarded_for = request.headers.get("x-forwarded-for")
    if not token or not forwarded_for:
        return None
    try:
        caller = decode_internal_token(token, audience=GATEWAY, public_keys=internal_keys)
        if caller != CONSOLE:
            return None
        return str(ipaddress.ip_address(forwarded_for.split(",")[-1].strip()))
    except (InvalidToken, ValueError):
        return None
