"""Faults injected into the real processes (issue 10): PostgreSQL restarted under load, a
service frozen with SIGSTOP, a service killed with SIGKILL in the middle of checkouts.
Whatever happens, no 500 escapes, nothing is lost and the stock adds up.

The stack runs on a private PostgreSQL cluster this module starts (and may restart),
never on the machine's shared server; the order service runs outside the supervisor
(STACK_SKIP), so that it can be killed and started again without stopping the rest.
"""

import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from scripts import postgres
from scripts.services import ROOT
from scripts.throwaway_stack import StackEnvironment, drop_stack_databases
from tests.conftest import (
    ADMIN,
    SUCCESS_PHONE,
    RunningStack,
    Shop,
    auth,
    is_ready,
    settled_report,
    stack_environment,
    start_stack,
    wait_until,
)

pytestmark = pytest.mark.e2e

ADDRESS = {"street": "Moi Avenue 1", "city": "Nairobi", "country": "Kenya", "postalCode": "00100"}
INITIAL_STOCK = 100_000
LIVE = ("pending", "paid", "processing", "shipped", "delivered")


@dataclass
class PrivateCluster:
    server: postgres.PostgresServer
    data: Path
    port: int

    def restart(self) -> float:
        """`pg_ctl restart -m fast` (what `pg_ctlcluster restart` does): every session is
        terminated, the server stops and starts again. Returns how long it took."""
        pg_ctl = str(postgres._server_bindir() / "pg_ctl")
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1"
        # -l: the restarted server logs to its file; without it the server would hold the
        # output pipe open and this call would never return.
        log_file = str(self.data / "server.log")
        command = [pg_ctl, "-D", str(self.data), "-l", log_file, "-m", "fast", "-w", "-t", "60"]
        started = time.monotonic()
        result = subprocess.run(
            postgres._as_server_user([*command, "-o", options, "restart"]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
            cwd="/",
        )
        assert result.returncode == 0, f"pg_ctl restart failed ({result.returncode})"
        return time.monotonic() - started


@pytest.fixture(scope="module")
def private_cluster():
    data = ROOT / ".data" / f"fault-postgres-{uuid.uuid4().hex[:8]}"
    original_dir = postgres.PRIVATE_DIR
    original_port = os.environ.get("PRIVATE_POSTGRES_PORT")
    postgres.PRIVATE_DIR = data
    # Any free port: PostgreSQL binds its own (another is tried if one was taken meanwhile).
    os.environ["PRIVATE_POSTGRES_PORT"] = "0"
    try:
        server = postgres.start_private_cluster(lambda text: print(f"[fault postgres] {text}"))
    finally:
        postgres.PRIVATE_DIR = original_dir
        if original_port is None:
            os.environ.pop("PRIVATE_POSTGRES_PORT", None)
        else:
            os.environ["PRIVATE_POSTGRES_PORT"] = original_port
    try:
        yield PrivateCluster(server, data, server.port)
    finally:
        if server.stop is not None:
            server.stop()
        shutil.rmtree(data, ignore_errors=True)


@dataclass
class FaultStack:
    stack: RunningStack
    environment: StackEnvironment
    order_process: subprocess.Popen | None = None
    order_log: list[str] = field(default_factory=list)

    def start_order_service(self) -> None:
        """On the order port this test holds (refused while the service is down)."""
        process = self.environment.start_service(
            "order",
            self.environment.service_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                self.order_log.append(line.rstrip("\n"))

        threading.Thread(target=read, daemon=True).start()
        self.order_process = process
        wait_until(lambda: is_ready(self.stack.url("order")), 30, "the order service to be ready")

    def kill_order_service(self) -> None:
        assert self.order_process is not None
        self.order_process.kill()
        self.order_process.wait(timeout=10)


@pytest.fixture(scope="module")
def fault_stack(private_cluster):
    environment = stack_environment(
        private_cluster.server.url("postgres"),
        RATE_LIMIT_ENABLED="false",
        ADMIN_EMAIL=ADMIN["email"],
        ADMIN_PASSWORD=ADMIN["password"],
        STACK_SKIP="order",
        UPSTREAM_TIMEOUT="5",
        SERVICE_TIMEOUT="3",
        ORDER_PLACEMENT_GRACE="30",
        ORDER_SWEEP_INTERVAL="1",
        # The customer takes 3 s to enter the PIN: time to freeze the payment service
        # before the callbacks arrive.
        MPESA_SIMULATOR_CALLBACK_DELAY="3",
    )
    stack = start_stack(environment)
    faults = FaultStack(stack, environment)
    try:
        faults.start_order_service()
        yield faults
    finally:
        if faults.order_process is not None and faults.order_process.poll() is None:
            faults.order_process.send_signal(signal.SIGINT)
            faults.order_process.wait(timeout=30)
        stack.stop()
        environment.close()
        drop_stack_databases(environment.env)


class Shopper:
    """An admin and customers on the fault stack, through its gateway."""

    def __init__(self, gateway: str) -> None:
        self.client = httpx.Client(base_url=gateway, timeout=30)
        login = self.client.post("/api/auth/login", json=ADMIN)
        assert login.status_code == 200, login.text
        self.admin = auth(login.json()["token"])

    def customer(self) -> dict[str, str]:
        registered = self.client.post(
            "/api/auth/register",
            json={
                "name": "Buyer",
                "email": f"buyer-{uuid.uuid4().hex[:8]}@example.com",
                "password": "password123",
            },
        )
        assert registered.status_code == 201, registered.text
        return auth(registered.json()["token"])

    def product(self, stock: int = INITIAL_STOCK) -> str:
        created = self.client.post(
            "/api/products",
            json={"name": f"Kettle {uuid.uuid4().hex[:6]}", "price": "2500.00", "stock": stock},
            headers=self.admin,
        )
        assert created.status_code == 201, created.text
        return created.json()["product"]["id"]

    def stock(self, product_id: str) -> int:
        response = self.client.get(f"/api/products/{product_id}", headers=self.admin)
        assert response.status_code == 200, response.text
        return response.json()["product"]["stock"]

    def units_in_live_orders(self, product_id: str) -> int:
        units, page = 0, 1
        while True:
            response = self.client.get(
                "/api/orders/admin/orders",
                params={"page": page, "limit": 100},
                headers=self.admin,
            )
            assert response.status_code == 200, response.text
            body = response.json()
            for order in body["orders"]:
                if order["status"] in LIVE:
                    units += sum(
                        item["quantity"]
                        for item in order["items"]
                        if item["productId"] == product_id
                    )
            if page >= body["totalPages"]:
                return units
            page += 1

    def stock_adds_up(self, product_id: str, initial: int = INITIAL_STOCK) -> bool:
        return self.stock(product_id) + self.units_in_live_orders(product_id) == initial


@dataclass
class Outcome:
    started: float
    status: int  # 0: no answer (a transport error or the client's timeout)
    what: str


def run_load(
    gateway: str,
    jobs: list[tuple[str, callable]],
    seconds: float,
    outcomes: list[Outcome],
    client_timeout: float = 10,
    stop: threading.Event | None = None,
) -> list[threading.Thread]:
    """One thread per job, each calling it in a loop for `seconds` (or until `stop`)."""
    stop_at = time.monotonic() + seconds

    def loop(what: str, job) -> None:
        with httpx.Client(base_url=gateway, timeout=client_timeout) as client:
            while time.monotonic() < stop_at and not (stop and stop.is_set()):
                started = time.monotonic()
                try:
                    status = job(client).status_code
                except httpx.HTTPError:
                    status = 0
                outcomes.append(Outcome(started, status, what))

    threads = [threading.Thread(target=loop, args=job, daemon=True) for job in jobs]
    for thread in threads:
        thread.start()
    return threads


def place_order(customer: dict[str, str], product_id: str):
    def job(client: httpx.Client) -> httpx.Response:
        return client.post(
            "/api/orders",
            json={
                "items": [{"productId": product_id, "quantity": 1}],
                "shippingAddress": ADDRESS,
            },
            headers=customer,
        )

    return job


def summary(outcomes: list[Outcome]) -> str:
    return str(Counter((o.what, o.status) for o in outcomes))


def test_postgresql_restarted_under_load(fault_stack, private_cluster):
    shop = Shopper(fault_stack.stack.gateway)
    product_id = shop.product()
    customers = [shop.customer() for _ in range(2)]
    readers = [shop.customer() for _ in range(2)]
    jobs = [
        *[("POST /api/orders", place_order(c, product_id)) for c in customers],
        *[("GET /api/products", lambda client: client.get("/api/products?limit=10"))] * 2,
        *[
            ("GET /api/cart", lambda client, headers=h: client.get("/api/cart", headers=headers))
            for h in readers
        ],
        # The profile is read with asyncpg itself (shared.db.HotPath), not a session.
        *[
            (
                "GET /api/auth/profile",
                lambda client, headers=h: client.get("/api/auth/profile", headers=headers),
            )
            for h in readers
        ],
    ]
    outcomes: list[Outcome] = []
    stop = threading.Event()
    threads = run_load(fault_stack.stack.gateway, jobs, seconds=180, outcomes=outcomes, stop=stop)
    wait_until(lambda: len(outcomes) >= 20, 60, "the load to be under way")
    restart_began = time.monotonic()
    took = private_cluster.restart()
    print(f"PostgreSQL restarted in {took:.1f} s")
    # The load goes on until 14 s after the restart began and 1,000 requests were made
    # (a loaded machine makes fewer per second; the count is what the issue asks for).
    wait_until(
        lambda: time.monotonic() >= restart_began + 14 and len(outcomes) >= 1000,
        150,
        "1,000 requests around the restart",
    )
    stop.set()
    for thread in threads:
        thread.join(timeout=40)

    counts = Counter(o.status for o in outcomes)
    print(f"outcomes around the restart: {summary(outcomes)}")
    assert len(outcomes) >= 1000, summary(outcomes)
    assert counts[500] == 0, summary([o for o in outcomes if o.status >= 500])
    assert set(counts) <= {200, 201, 503, 504}, summary(outcomes)
    # Recovered by itself within 10 s of the restart: every request begun after that
    # succeeded (and there were such requests).
    after = [o for o in outcomes if o.started >= restart_began + 10]
    assert after and all(o.status in (200, 201) for o in after), summary(after)

    # No unit of stock lost or made: what is left plus what live orders hold is what there
    # was, once the sweeper has dealt with placements the restart interrupted.
    wait_until(lambda: shop.stock_adds_up(product_id), 60, "the stock to add up")


def test_a_frozen_service_makes_its_callers_answer_503_or_504_in_time_and_recover(fault_stack):
    """The product service frozen (SIGSTOP): the catalogue through the gateway is 504
    within UPSTREAM_TIMEOUT, an order (which needs the catalogue) 503/504 within the order
    service's own timeout; the cart still reads. Thawed, all of it works again."""
    shop = Shopper(fault_stack.stack.gateway)
    product_id = shop.product()
    customer = shop.customer()
    pid = fault_stack.stack.pid_of("product")
    os.kill(pid, signal.SIGSTOP)
    try:
        with httpx.Client(base_url=fault_stack.stack.gateway, timeout=20) as client:
            started = time.monotonic()
            catalogue = client.get("/api/products")
            assert catalogue.status_code == 504, catalogue.text
            assert catalogue.json() == {"error": "Product service timed out"}
            assert time.monotonic() - started < 5 + 2
            started = time.monotonic()
            order = place_order(customer, product_id)(client)
            assert order.status_code in (503, 504), order.text
            assert "error" in order.json()
            assert time.monotonic() - started < 5 + 2
            cart = client.get("/api/cart", headers=customer)
            assert cart.status_code == 200, cart.text
    finally:
        os.kill(pid, signal.SIGCONT)
    with httpx.Client(base_url=fault_stack.stack.gateway, timeout=20) as client:
        wait_until(
            lambda: client.get("/api/products?limit=1").status_code == 200, 10, "the catalogue"
        )
        assert place_order(customer, product_id)(client).status_code == 201
    wait_until(lambda: shop.stock_adds_up(product_id), 60, "the stock to add up")


def test_the_order_service_killed_in_the_middle_of_checkouts(fault_stack):
    """SIGKILL while customers check out: after a restart and the sweeper's grace, the
    stock plus the units in live orders is the initial stock exactly."""
    shop = Shopper(fault_stack.stack.gateway)
    product_id = shop.product()
    customers = [shop.customer() for _ in range(4)]
    outcomes: list[Outcome] = []
    threads = run_load(
        fault_stack.stack.gateway,
        [("POST /api/orders", place_order(c, product_id)) for c in customers],
        seconds=4,
        outcomes=outcomes,
    )
    # Killed once checkouts are going through (some have already been placed).
    wait_until(lambda: any(o.status == 201 for o in outcomes), 30, "a first order")
    fault_stack.kill_order_service()
    for thread in threads:
        thread.join(timeout=30)
    counts = Counter(o.status for o in outcomes)
    assert counts[201] > 0 and counts[500] == 0, summary(outcomes)
    assert set(counts) <= {201, 503, 504}, summary(outcomes)

    fault_stack.start_order_service()
    wait_until(lambda: shop.stock_adds_up(product_id), 90, "the stock to add up")


def test_the_payment_service_frozen_while_mpesa_callbacks_arrive_pays_each_order_once(
    fault_stack,
):
    """The payment service frozen (SIGSTOP) for 12 s while the callbacks of five M-Pesa
    payments arrive (the gateway answers the simulator 504): thawed, each order is paid
    exactly once (by the callback that waited or by STK Query) and reconciliation is clean."""
    with httpx.Client(base_url=fault_stack.stack.gateway, timeout=30) as client:
        shop = Shop(client)
        orders = [shop.order("1500.00") for _ in range(5)]
        started = [shop.pay_mpesa(order["id"], SUCCESS_PHONE) for order in orders]
        ours = {p["checkoutRequestId"] for p in started}
        simulator_url = f"{fault_stack.stack.url('mpesa-simulator')}/simulator/transactions"

        def callbacks() -> list[dict]:
            transactions = httpx.get(simulator_url, timeout=10).json()["transactions"]
            return [t for t in transactions if t["checkoutRequestId"] in ours]

        pid = fault_stack.stack.pid_of("payment")
        os.kill(pid, signal.SIGSTOP)
        try:
            # Frozen until each of the five callbacks has met the frozen service (the
            # gateway's answer or the simulator's own timeout).
            wait_until(
                lambda: all(t["callbackStatus"] or t.get("callbackError") for t in callbacks()),
                60,
                "the five callbacks to be answered",
            )
        finally:
            os.kill(pid, signal.SIGCONT)
        for order, payment in zip(orders, started, strict=True):
            assert shop.payment_settles(payment["payment"]["id"], timeout=60)["status"] == (
                "completed"
            )
            paid = shop.order_reaches(order["id"], "status", "paid", timeout=60)
            assert paid["paymentStatus"] == "paid"
            payments = client.get(f"/api/payments/order/{order['id']}", headers=shop.customer)
            assert [p["status"] for p in payments.json()["payments"]] == ["completed"]
        answered = callbacks()
        assert len(answered) == 5
        # The callbacks met a frozen service: the gateway's timeout, never a 500.
        assert all(t["callbackStatus"] != 500 for t in answered), answered
        print(f"callbacks during the freeze: {[t['callbackStatus'] for t in answered]}")
        settled_report(client, timeout=60)
