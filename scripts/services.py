"""The table of this system's processes: what `make run` starts, in order."""

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Service:
    name: str  # short name: log prefix, internal-token issuer
    directory: str  # folder in the repository
    package: str  # import package; `python -m <package>` starts it
    port_env: str
    default_port: int
    url_env: str  # how the other processes reach it
    database_env: str | None = None
    default_database: str | None = None

    @property
    def path(self) -> Path:
        return ROOT / self.directory

    @property
    def listen_fd_env(self) -> str:
        """`<NAME>_LISTEN_FD`: a listening socket handed to `make run` for this service."""
        return self.port_env.removesuffix("_PORT") + "_LISTEN_FD"

    def exists(self) -> bool:
        return (self.path / self.package / "__main__.py").is_file()


SERVICES: tuple[Service, ...] = (
    Service(
        "auth",
        "auth-service",
        "auth_service",
        "AUTH_PORT",
        3001,
        "AUTH_SERVICE_URL",
        "AUTH_DATABASE_URL",
        "ecommerce_auth",
    ),
    Service(
        "product",
        "product-service",
        "product_service",
        "PRODUCT_PORT",
        3002,
        "PRODUCT_SERVICE_URL",
        "PRODUCT_DATABASE_URL",
        "ecommerce_product",
    ),
    Service(
        "cart",
        "cart-service",
        "cart_service",
        "CART_PORT",
        3005,
        "CART_SERVICE_URL",
        "CART_DATABASE_URL",
        "ecommerce_cart",
    ),
    Service(
        "order",
        "order-service",
        "order_service",
        "ORDER_PORT",
        3003,
        "ORDER_SERVICE_URL",
        "ORDER_DATABASE_URL",
        "ecommerce_order",
    ),
    Service(
        "payment",
        "payment-service",
        "payment_service",
        "PAYMENT_PORT",
        3004,
        "PAYMENT_SERVICE_URL",
        "PAYMENT_DATABASE_URL",
        "ecommerce_payment",
    ),
    # A development tool, started only when M-Pesa runs against it (see scripts/stack.py).
    Service(
        "mpesa-simulator",
        "mpesa-simulator",
        "mpesa_simulator",
        "MPESA_SIMULATOR_PORT",
        3010,
        "MPESA_SIMULATOR_URL",
    ),
    # The shop's admin console; the gateway serves it at /admin/.
    Service(
        "console", "admin-console", "admin_console", "ADMIN_CONSOLE_PORT", 3006, "ADMIN_CONSOLE_URL"
    ),
    Service("gateway", "api-gateway", "api_gateway", "GATEWAY_PORT", 5000, "GATEWAY_URL"),
)
MPESA_SIMULATOR = "mpesa-simulator"


def present_services() -> list[Service]:
    """The services that exist in this checkout (later issues add the others)."""
    return [service for service in SERVICES if service.exists()]
