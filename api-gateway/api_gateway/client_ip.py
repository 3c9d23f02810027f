"""The client's address. `X-Forwarded-For` is believed only when the direct peer is
a trusted proxy, and then read from the right, skipping our own proxies: the
left-most entries are whatever the client chose to send."""

import ipaddress
from collections.abc import Sequence

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
