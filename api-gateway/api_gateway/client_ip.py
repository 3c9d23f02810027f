"""The client's address. `X-Forwarded-For` is believed only when the direct peer is
a trusted proxy, and then read from the right, skipping our own proxies: the
left-most entries are whatever the client chose to send."""

import ipaddress
from collections.abc import Sequence

from starlette.requests import Request

from shared.http_client import INTERNAL_TOKEN_HEADER
from shared.tokens import InvalidToken, decode_internal_token

# The admin console calls this API for the people signed in to it: it sends their address
# in X-Forwarded-For, with an internal token to show that the console says so.
CONSOLE = "admin-console"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_ip(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    peer = peer or "unknown"
    if not forwarded_for or not trusted or not is_trusted(peer, trusted):
        return peer
    chain = [part.strip() for part in forwarded_for.split(",") if part.strip()]
    for address in reversed(chain):
        if not is_trusted(address, trusted):
            try:
                return str(ipaddress.ip_address(address))
            except ValueError:
                return peer  # garbage in the header: fall back to what we know
    return chain[0] if chain else peer


def console_vouched_ip(request: Request, internal_secret: str) -> str | None:
    """The address of the person the admin console calls for (its X-Forwarded-For, one
    address), when the call carries the console's internal token; None for anyone else.
    Rate limits then count that person, not the console, whose address every signed-in
    admin shares."""
    token = request.headers.get(INTERNAL_TOKEN_HEADER)
    forwarded_for = request.headers.get("x-forwarded-for")
    if not token or not forwarded_for:
        return None
    try:
        if decode_internal_token(token, internal_secret) != CONSOLE:
            return None
        return str(ipaddress.ip_address(forwarded_for.split(",")[-1].strip()))
    except (InvalidToken, ValueError):
        return None
