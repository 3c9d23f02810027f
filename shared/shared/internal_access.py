"""Which service may call which internal route: the one table (docs/internal-api.md
shows the same).

An internal token proves who the caller is (shared.auth.internal_caller); this table says
what that caller may do. A route answers only the callers listed for it; every other
caller gets 403 and one warning line in the log. A route missing from the table answers
nobody (each service's tests check that every internal route has an entry).

The callers are the ones the code has: `<svc>_client.py` of each service, the user status
lookup of shared.auth_client (every service but auth, and the gateway).
"""

import logging
import re
from collections.abc import Mapping

logger = logging.getLogger(__name__)

# Every identity that can hold an internal token.
GATEWAY = "gateway"
AUTH = "auth"
PRODUCT = "product"
CART = "cart"
ORDER = "order"
PAYMENT = "payment"
ADMIN_CONSOLE = "admin-console"
IDENTITIES = (GATEWAY, AUTH, PRODUCT, CART, ORDER, PAYMENT, ADMIN_CONSOLE)

# The services whose requests carry users' tokens: each checks the user's current status.
USER_STATUS_READERS = frozenset({GATEWAY, PRODUCT, CART, ORDER, PAYMENT})

# (called service, method, route path) -> the callers it answers.
INTERNAL_ROUTES: Mapping[tuple[str, str, str], frozenset[str]] = {
    # auth
    (AUTH, "GET", "/api/internal/users/{user_id}"): USER_STATUS_READERS,
    # product
    (PRODUCT, "POST", "/api/internal/check-stock"): frozenset({ORDER}),
    (PRODUCT, "POST", "/api/internal/products/lookup"): frozenset({CART}),
    (PRODUCT, "POST", "/api/internal/reserve"): frozenset({ORDER}),
    (PRODUCT, "POST", "/api/internal/release"): frozenset({ORDER}),
    (PRODUCT, "POST", "/api/internal/update-stock"): frozenset({ORDER}),
    # cart
    (CART, "POST", "/api/internal/cart/checkout"): frozenset({ORDER}),
    (CART, "POST", "/api/internal/cart/clear"): frozenset({ORDER}),
    # order
    (ORDER, "GET", "/api/internal/orders/{order_id}"): frozenset({PAYMENT}),
    (ORDER, "POST", "/api/internal/update-status"): frozenset({PAYMENT}),
    (ORDER, "GET", "/api/internal/orders"): frozenset({PAYMENT}),
}


def _template(path: str) -> re.Pattern[str]:
    """`/api/internal/users/{user_id}` -> a pattern of the paths it stands for."""
    return re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)))


_PATTERNS = [
    (service, method, path, _template(path), callers)
    for (service, method, path), callers in INTERNAL_ROUTES.items()
]


def route_of(service: str, method: str, path: str) -> tuple[str, frozenset[str]] | None:
    """The table's route (its path template) that a request to `path` is, and its callers."""
    for callee, listed_method, template, pattern, callers in _PATTERNS:
        if callee == service and listed_method == method.upper() and pattern.fullmatch(path):
            return template, callers
    return None


def may_call(caller: str, service: str, method: str, path: str) -> bool:
    """Whether `caller` may call `method path` (the requested path) on `service`; logs
    every refusal, naming the route as the table does."""
    found = route_of(service, method, path)
    if found is not None and caller in found[1]:
        return True
    route = found[0] if found is not None else path
    logger.warning(
        "internal call refused: caller=%s route=%s %s %s", caller, service, method.upper(), route
    )
    return False


def callers_of(service: str) -> frozenset[str]:
    """Every caller of any internal route of `service` (what its network policy admits)."""
    return frozenset().union(
        *(callers for (callee, _, _), callers in INTERNAL_ROUTES.items() if callee == service)
    )
