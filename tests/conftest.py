"""End-to-end tests: the real processes, started the way `make run` starts them, and the
helpers they share (a shop used through the gateway, a fake of Stripe's API)."""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from scripts.fake_stripe import FakeStripe, running_fake_stripe
from scripts.services import ROOT, present_services
from shared.provisioning import drop_database
from shared.testing import free_port, random_secret


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


def port_is_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stack_environment(postgres_url: str, **overrides: str) -> tuple[dict[str, str], dict[str, int]]:
    """Environment for `python -m scripts.stack`: free ports and fresh database names."""
    services = present_services()
    ports = {service.name: free_port() for service in services}
    env = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "LANG")}
    suffix = uuid.uuid4().hex[:8]
    for service in services:
        env[service.port_env] = str(ports[service.name])
        if service.database_env:
            url = make_url(postgres_url).set(database=f"e2e_{service.name}_{suffix}")
            env[service.database_env] = url.render_as_string(hide_password=False)
    defaults = dict(
        JWT_SECRET=random_secret(),
        INTERNAL_SERVICE_SECRET=random_secret(),
        MPESA_CALLBACK_SECRET=random_secret(),
        GATEWAY_HOST="127.0.0.1",
        NO_COLOR="1",
        # What `make run` generates in development (a default admin's password...) goes
        # here, never into the checkout's .data/.
        DEV_SECRETS_FILE=str(Path(tempfile.gettempdir()) / f"e2e-{suffix}" / "dev-secrets.env"),
        # M-Pesa against the simulator (no credentials), on a test's time scale.
        MPESA_SIMULATOR_CALLBACK_DELAY="0.5",
        MPESA_QUERY_AFTER="2",
        MPESA_EXPIRE_AFTER="8",
        MPESA_RECONCILE_INTERVAL="1",
        # Stripe against a local fake a test may start on that port (tests/test_payments_e2e.py).
        STRIPE_SECRET_KEY="sk_test_e2e",
        STRIPE_WEBHOOK_SECRET="whsec_" + random_secret(),
        STRIPE_API_BASE=f"http://127.0.0.1:{free_port()}",
    )
    env.update({**defaults, **overrides})
    return env, ports


def start_stack(env: dict[str, str], ports: dict[str, int], timeout: float = 90) -> RunningStack:
    process = subprocess.Popen(
        [sys.executable, "-m", "scripts.stack"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    stack = RunningStack(process, ports, env)

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
    env, ports = stack_environment(
        postgres_url,
        STRIPE_API_BASE=stripe_server.url,
        RATE_LIMIT_ENABLED="false",
        ADMIN_EMAIL=ADMIN["email"],
        ADMIN_PASSWORD=ADMIN["password"],
        USER_STATUS_TTL="1",
    )
    running = start_stack(env, ports)
    yield running
    try:
        # After the whole suite, every payment is on its order, once.
        with httpx.Client(base_url=running.gateway, timeout=60) as client:
            settled_report(client)
    finally:
        running.stop()
        drop_stack_databases(env)


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


def drop_stack_databases(env: dict[str, str]) -> None:
    import asyncio

    for service in present_services():
        if service.database_env:
            asyncio.run(drop_database(env[service.database_env]))
    secrets_file = Path(env["DEV_SECRETS_FILE"])
    secrets_file.unlink(missing_ok=True)
    if secrets_file.parent.exists():
        secrets_file.parent.rmdir()


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
