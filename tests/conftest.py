"""End-to-end tests: the real processes, started the way `make run` starts them, and the
helpers they share (a shop used through the gateway, a fake of Stripe's API)."""

import json
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from scripts import throwaway_stack
from scripts.fake_stripe import FakeStripe, running_fake_stripe
from scripts.services import present_services
from scripts.throwaway_stack import StackEnvironment, drop_stack_databases


@dataclass
class RunningStack:
    process: subprocess.Popen
    ports: dict[str, int]
    env: dict[str, str]
    lines: list[str] = field(default_factory=list)

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 40) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def pid_of(self, service: str) -> int:
        """The process the supervisor started for `service` (`python -m <package>`), found
        among its children in /proc, not in its log."""
        [package] = [s.package for s in present_services() if s.name == service]
        for pid in child_pids(self.process.pid):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except FileNotFoundError:
                continue  # exited meanwhile
            # `python [-X option] -m <package>`
            if b"-m" in argv and argv[argv.index(b"-m") + 1] == package.encode():
                return pid
        raise AssertionError(f"the supervisor has no {service} process")


def child_pids(parent: int) -> list[int]:
    """The processes whose parent is `parent` (the `PPid` of /proc/<pid>/status)."""
    children = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited meanwhile
        if fields.get("PPid") == str(parent):
            children.append(int(status.parent.name))
    return children


def is_ready(url: str) -> bool:
    """The service at `url` answers its readiness probe (one that accepts a connection
    and does not answer yet, or refuses it, is not ready)."""
    try:
        return httpx.get(f"{url}/ready", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def port_is_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stack_environment(postgres_url: str, **overrides: str) -> StackEnvironment:
    """A throwaway stack's environment (scripts/throwaway_stack.py) on a test's time scale:
    M-Pesa against the simulator, quick to query and expire."""
    on_test_time = dict(
        MPESA_SIMULATOR_CALLBACK_DELAY="0.5",
        MPESA_QUERY_AFTER="2",
        MPESA_EXPIRE_AFTER="8",
        MPESA_RECONCILE_INTERVAL="1",
    )
    return throwaway_stack.stack_environment(postgres_url, "e2e", **{**on_test_time, **overrides})


def start_stack(environment: StackEnvironment, timeout: float = 90) -> RunningStack:
    process = environment.spawn(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stack = RunningStack(process, environment.ports, environment.env)

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            stack.lines.append(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout
    # The banner's last line, not its first: a test may read the whole banner.
    while not any("press Ctrl-C to stop" in line for line in stack.lines):
        if process.poll() is not None or time.monotonic() > deadline:
            stack.stop(signal.SIGTERM)
            pytest.fail(f"the stack did not come up:\n{stack.output()}")
        time.sleep(0.1)
    return stack


@pytest.fixture(scope="session")
def stack(postgres_url, stripe_server):
    """The whole system, once for the session (rate limits off: tests go fast)."""
    environment = stack_environment(
        postgres_url,
        STRIPE_API_BASE=stripe_server.url,
        RATE_LIMIT_ENABLED="false",
        ADMIN_EMAIL=ADMIN["email"],
        ADMIN_PASSWORD=ADMIN["password"],
        USER_STATUS_TTL="1",
    )
    running = start_stack(environment)
    yield running
    try:
        # After the whole suite, every payment is on its order, once.
        with httpx.Client(base_url=running.gateway, timeout=60) as client:
            settled_report(client)
    finally:
        running.stop()
        drop_stack_databases(environment.env)


def reconciliation_report(client: httpx.Client, **params: str) -> dict:
    """The money reconciliation report, asked for as the admin."""
    login = client.post("/api/auth/login", json=ADMIN)
    assert login.status_code == 200, login.text
    response = client.get(
        "/api/payments/admin/reconciliation", params=params, headers=auth(login.json()["token"])
    )
    assert response.status_code == 200, response.text
    return response.json()


def settled_report(client: httpx.Client, timeout: float = 40) -> dict:
    """The report once it is empty: what is still moving (a callback, the outbox, the
    reconciliation workers) is given `timeout` seconds to land. Fails with the report."""
    deadline = time.monotonic() + timeout
    while True:
        report = reconciliation_report(client)
        if report["ok"]:
            return report
        if time.monotonic() > deadline:
            pytest.fail(f"the reconciliation report is not empty: {json.dumps(report, indent=1)}")
        time.sleep(0.5)


@pytest.fixture
def gateway(stack):
    with httpx.Client(base_url=stack.gateway, timeout=30) as client:
        yield client


# --- Using the shop through the gateway ------------------------------------------------

ADMIN = {"email": "admin@shop.example.com", "password": "admin-password-123"}
SUCCESS_PHONE = "0708374149"  # Daraja's sandbox number: pays
LOST_CALLBACK_PHONE = "254700000005"
NEVER_ANSWERED_PHONE = "254700000006"


def wait_until(check: Callable[[], object], timeout: float = 30, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.25)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Shop:
    """A customer and an admin using the shop through the gateway."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        login = client.post("/api/auth/login", json=ADMIN)
        assert login.status_code == 200, login.text
        self.admin = auth(login.json()["token"])
        email = f"buyer-{uuid.uuid4().hex[:8]}@example.com"
        registered = client.post(
            "/api/auth/register",
            json={"name": "Buyer", "email": email, "password": "password123"},
        )
        assert registered.status_code == 201, registered.text
        self.customer = auth(registered.json()["token"])

    def order(self, price: str = "1500.00") -> dict:
        product = self.client.post(
            "/api/products",
            json={
                "name": f"Phone {uuid.uuid4().hex[:6]}",
                "description": "A phone",
                "price": price,
                "stock": 10,
                "category": "electronics",
                "sku": f"SKU-{uuid.uuid4().hex[:10]}",
            },
            headers=self.admin,
        )
        assert product.status_code == 201, product.text
        product_id = product.json()["product"]["id"]
        # The port's checkout may take the cart; the original's body names the items too.
        self.client.post(
            "/api/cart/items", json={"productId": product_id, "quantity": 1}, headers=self.customer
        )
        created = self.client.post(
            "/api/orders",
            json={
                "items": [{"productId": product_id, "quantity": 1}],
                "shippingAddress": {
                    "street": "Moi Avenue 1",
                    "city": "Nairobi",
                    "country": "Kenya",
                    "postalCode": "00100",
                },
            },
            headers=self.customer,
        )
        assert created.status_code == 201, created.text
        order = created.json()["order"]
        assert order["totalAmount"] == price
        return order

    def get_order(self, order_id: str) -> dict:
        response = self.client.get(f"/api/orders/{order_id}", headers=self.customer)
        assert response.status_code == 200, response.text
        return response.json()["order"]

    def get_payment(self, payment_id: str) -> dict:
        response = self.client.get(f"/api/payments/{payment_id}", headers=self.customer)
        assert response.status_code == 200, response.text
        return response.json()["payment"]

    def pay_mpesa(self, order_id: str, phone: str) -> dict:
        response = self.client.post(
            "/api/payments/mpesa",
            json={"orderId": order_id, "phoneNumber": phone},
            headers=self.customer,
        )
        assert response.status_code == 200, response.text
        return response.json()

    def payment_settles(self, payment_id: str, timeout: float = 30) -> dict:
        return wait_until(
            lambda: (
                (p := self.get_payment(payment_id))["status"] not in ("pending", "processing") and p
            ),
            timeout,
            "the payment to settle",
        )

    def order_reaches(self, order_id: str, field: str, value: str, timeout: float = 30) -> dict:
        return wait_until(
            lambda: (o := self.get_order(order_id))[field] == value and o,
            timeout,
            f"order {field} {value}",
        )


@pytest.fixture
def shop(gateway):
    return Shop(gateway)


@pytest.fixture(scope="session")
def stripe_server():
    """A fake of Stripe's API, listening before the stack starts (a port chosen free and
    bound later could be taken meanwhile): `stack`'s STRIPE_API_BASE."""
    with running_fake_stripe() as server:
        yield server


@pytest.fixture(scope="session")
def fake_stripe(stack, stripe_server) -> FakeStripe:
    """The payment service of `stack` creates its PaymentIntents at this fake Stripe."""
    assert stack.env["STRIPE_API_BASE"] == stripe_server.url
    return stripe_server
