"""The address of the client behind a request. `X-Forwarded-For` / `X-Real-IP` are
believed only when the direct peer is a trusted proxy (`TRUSTED_PROXIES`: IPs or CIDRs);
X-Forwarded-For is then read from the right, skipping trusted proxies: the left-most
entries are whatever the client chose to send."""

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str | Sequence[str]) -> list[Network]:
    """`"10.0.0.0/8, 127.0.0.1"` (or its items) as networks; ValueError for anything else."""
    items = text.split(",") if isinstance(text, str) else text
    return [ipaddress.ip_network(item.strip(), strict=False) for item in items if item.strip()]


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


def behind_proxies(
    peer: str | None,
    real_ip: str | None,
    forwarded_for: str | None,
    trusted: Sequence[Network],
) -> str | None:
    """The client of a service behind the gateway: the direct peer, unless that peer is a
    trusted proxy; then its `X-Real-IP` (the gateway's verdict) or, without one, its
    X-Forwarded-For read as `client_ip` does."""
    if peer is None or not is_trusted(peer, trusted):
        return peer
    if real_ip and real_ip.strip():
        try:
            return str(ipaddress.ip_address(real_ip.strip()))
        except ValueError:
            return peer
    return client_ip(peer, forwarded_for, trusted)
