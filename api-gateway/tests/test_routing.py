"""The route table itself: which service, which path there, who may call."""

import pytest

from api_gateway.routing import Access, RateClass, path_matches, resolve


@pytest.mark.parametrize(
    ("method", "path", "service", "upstream_path", "access"),
    [
        ("POST", "/api/auth/register", "auth", "/api/register", Access.PUBLIC),
        ("POST", "/api/auth/login", "auth", "/api/login", Access.PUBLIC),
        ("GET", "/api/auth/profile", "auth", "/api/profile", Access.USER),
        ("PUT", "/api/auth/profile", "auth", "/api/profile", Access.USER),
        ("POST", "/api/auth/change-password", "auth", "/api/change-password", Access.USER),
        ("GET", "/api/auth/admin/users", "auth", "/api/admin/users", Access.ADMIN),
        ("GET", "/api/products", "product", "/api/products", Access.PUBLIC),
        ("GET", "/api/products/42", "product", "/api/products/42", Access.PUBLIC),
        ("POST", "/api/products", "product", "/api/products", Access.ADMIN),
        ("PUT", "/api/products/42", "product", "/api/products/42", Access.ADMIN),
        ("DELETE", "/api/products/42", "product", "/api/products/42", Access.ADMIN),
        ("PATCH", "/api/products/42/stock", "product", "/api/products/42/stock", Access.ADMIN),
        # No such route: a user's request goes on, and the service answers 405 with Allow.
        ("PATCH", "/api/products/42", "product", "/api/products/42", Access.USER),
        ("GET", "/api/cart", "cart", "/api/cart", Access.USER),
        ("POST", "/api/cart/items", "cart", "/api/cart/items", Access.USER),
        ("POST", "/api/orders", "order", "/api/orders", Access.USER),
        ("GET", "/api/orders/7", "order", "/api/orders/7", Access.USER),
        ("PUT", "/api/orders/7/cancel", "order", "/api/orders/7/cancel", Access.USER),
        ("GET", "/api/orders/admin/orders", "order", "/api/admin/orders", Access.ADMIN),
        ("POST", "/api/payments/mpesa", "payment", "/api/payments/mpesa", Access.USER),
        ("GET", "/api/payments/order/7", "payment", "/api/payments/order/7", Access.USER),
        ("POST", "/api/payments/webhook/stripe", "payment", "/api/webhook/stripe", Access.PUBLIC),
        (
            "POST",
            "/api/payments/webhook/mpesa/s3cr3t",
            "payment",
            "/api/webhook/mpesa/s3cr3t",
            Access.PUBLIC,
        ),
        ("GET", "/api/payments/admin/payments", "payment", "/api/admin/payments", Access.ADMIN),
        ("POST", "/api/payments/7/refund", "payment", "/api/payments/7/refund", Access.ADMIN),
        # The admin console signs its users in itself and calls this API with their token.
        ("GET", "/admin", "console", "/admin", Access.PUBLIC),
        ("GET", "/admin/", "console", "/admin/", Access.PUBLIC),
        ("POST", "/admin/login", "console", "/admin/login", Access.PUBLIC),
        ("GET", "/admin/static/console.css", "console", "/admin/static/console.css", Access.PUBLIC),
    ],
)
def test_route_table(method, path, service, upstream_path, access):
    route = resolve(method, path)
    assert route is not None
    assert (route.upstream.service, route.upstream_path, route.access) == (
        service,
        upstream_path,
        access,
    )


@pytest.mark.parametrize(
    "path",
    [
        "/api/unknown",
        "/api",
        "/apix/auth/login",
        "/api/cartoon",
        "/api/auth/internal/users/1",
        "/api/products/internal/check-stock",
        "/api/products/INTERNAL/reserve",
        "/api/products/../internal/x",
        "/api/products/./x",
        "/api/orders//admin/orders",
        "/api/products/a%2Fb",
        "/api/products/a\\b",
        "/administrator",
        "/admin/internal/x",
    ],
)
def test_unknown_and_internal_paths_resolve_to_nothing(path):
    assert resolve("GET", path) is None


def test_rate_classes():
    assert resolve("POST", "/api/auth/login").rate_class is RateClass.AUTH
    assert resolve("POST", "/api/auth/register").rate_class is RateClass.AUTH
    assert resolve("GET", "/api/auth/profile").rate_class is RateClass.DEFAULT
    assert resolve("POST", "/api/payments/webhook/stripe").rate_class is RateClass.WEBHOOK


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("/api/products/*", "/api/products/1", True),
        ("/api/products/*", "/api/products/1/stock", False),
        ("/api/products/**", "/api/products/1/stock", True),
        ("/api/products/**", "/api/products", True),
        ("/api/payments/*/refund", "/api/payments/9/refund", True),
    ],
)
def test_patterns(pattern, path, expected):
    assert path_matches(pattern, path) is expected
