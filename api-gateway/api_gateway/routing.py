"""The gateway's route table: which service answers a path, what path it sees
there, and who may call it.

Paths are mapped as the original gateway did (see the README's table): the
auth service sees `/api/auth/register` as `/api/register`, the order service
sees `/api/orders/admin/...` as `/api/admin/...`, and so on.
"""

from dataclasses import dataclass
from enum import Enum
from functools import lru_cache


class Access(Enum):
    PUBLIC = "public"  # no token needed
    USER = "user"  # any valid token of an active user
    ADMIN = "admin"  # an active admin


class RateClass(Enum):
    DEFAULT = "default"
    AUTH = "auth"  # login and register: stricter, against password guessing
    WEBHOOK = "webhook"  # payment providers


@dataclass(frozen=True)
class Upstream:
    prefix: str  # gateway path prefix
    service: str  # key of the service's URL in the settings
    display_name: str  # as in "<Name> service unavailable"
    rewrite_to: str | None = None  # the prefix the service sees; None keeps the path


# Longest prefix first.
UPSTREAMS: tuple[Upstream, ...] = (
    Upstream("/api/orders/admin", "order", "Order", rewrite_to="/api/admin"),
    Upstream("/api/payments/webhook", "payment", "Payment", rewrite_to="/api/webhook"),
    Upstream("/api/payments/admin", "payment", "Payment", rewrite_to="/api/admin"),
    Upstream("/api/auth", "auth", "Auth", rewrite_to="/api"),
    Upstream("/api/products", "product", "Product"),
    Upstream("/api/cart", "cart", "Cart"),
    Upstream("/api/orders", "order", "Order"),
    Upstream("/api/payments", "payment", "Payment"),
    # The auth service's public keys (user tokens), at the well-known path.
    Upstream("/.well-known/jwks.json", "auth", "Auth"),
    # The admin console's pages: it signs its users in and calls this API with their token.
    Upstream("/admin", "console", "Admin console"),
)

ANY = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
READ = frozenset({"GET", "HEAD"})

# First match wins; a path matching none needs a user token.
# `*` is one path segment, `**` any number of segments (zero included).
ACCESS_RULES: tuple[tuple[frozenset[str], str, Access], ...] = (
    (frozenset({"POST"}), "/api/auth/register", Access.PUBLIC),
    (frozenset({"POST"}), "/api/auth/login", Access.PUBLIC),
    (frozenset({"POST"}), "/api/auth/verify", Access.PUBLIC),  # checks the token itself
    (READ, "/api/products", Access.PUBLIC),
    (READ, "/api/products/*", Access.PUBLIC),
    (frozenset({"POST"}), "/api/payments/webhook/**", Access.PUBLIC),
    (ANY, "/admin/**", Access.PUBLIC),
    (READ, "/.well-known/jwks.json", Access.PUBLIC),
    (ANY, "/api/auth/admin/**", Access.ADMIN),
    (frozenset({"POST"}), "/api/products", Access.ADMIN),
    # Exactly the admin's routes: another method on a product (PATCH /api/products/{id}) goes
    # to the service, which answers 405 with Allow, not this rule's 403.
    (frozenset({"PUT", "DELETE"}), "/api/products/*", Access.ADMIN),
    (frozenset({"PATCH"}), "/api/products/*/stock", Access.ADMIN),
    (ANY, "/api/orders/admin/**", Access.ADMIN),
    (ANY, "/api/payments/admin/**", Access.ADMIN),
    (frozenset({"POST"}), "/api/payments/*/refund", Access.ADMIN),
)

RATE_RULES: tuple[tuple[frozenset[str], str, RateClass], ...] = (
    (frozenset({"POST"}), "/api/auth/login", RateClass.AUTH),
    (frozenset({"POST"}), "/api/auth/register", RateClass.AUTH),
    (frozenset({"POST"}), "/api/auth/change-password", RateClass.AUTH),
    (frozenset({"POST"}), "/api/payments/webhook/**", RateClass.WEBHOOK),
)


@dataclass(frozen=True)
class Route:
    upstream: Upstream
    upstream_path: str
    access: Access
    rate_class: RateClass


def _segments(path: str) -> list[str]:
    return [segment for segment in path.split("/") if segment]


def _matches(pattern: list[str], path: list[str]) -> bool:
    if not pattern:
        return not path
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_matches(rest, path[i:]) for i in range(len(path) + 1))
    if not path:
        return False
    return (head == "*" or head == path[0]) and _matches(rest, path[1:])


def path_matches(pattern: str, path: str) -> bool:
    return _matches(_segments(pattern), _segments(path))


def is_forbidden_path(path: str) -> bool:
    """Internal routes are never proxied, and paths that a server could normalise into
    another (dot segments, empty segments, backslashes, encoded slashes) are refused."""
    if "\\" in path or "%2f" in path.lower() or "%5c" in path.lower():
        return True
    segments = path.split("/")[1:]
    if any(segment.lower() == "internal" or segment in {".", ".."} for segment in segments):
        return True
    return "" in segments[:-1]


@lru_cache(maxsize=8192)
def resolve(method: str, path: str) -> Route | None:
    """The route for a gateway request, or None (404)."""
    if is_forbidden_path(path):
        return None
    for upstream in UPSTREAMS:
        if path == upstream.prefix or path.startswith(upstream.prefix + "/"):
            break
    else:
        return None
    rest = path[len(upstream.prefix) :]
    upstream_path = (upstream.rewrite_to + rest) if upstream.rewrite_to is not None else path
    access = next(
        (
            rule
            for methods, pattern, rule in ACCESS_RULES
            if method in methods and path_matches(pattern, path)
        ),
        Access.USER,
    )
    rate_class = next(
        (
            rule
            for methods, pattern, rule in RATE_RULES
            if method in methods and path_matches(pattern, path)
        ),
        RateClass.DEFAULT,
    )
    return Route(upstream, upstream_path, access, rate_class)
