"""The money reconciliation report end to end: the real processes, M-Pesa through the local
simulator, a fake Stripe of this module's own. Each discrepancy is made on purpose (a
Stripe webhook dropped, the order service stopped while a payment settles and its update
lost, a second completed payment written into the payment database, a payment settled on
a cancelled order); the report and `make reconcile` name each with its kind and amounts;
the reconciliation worker repairs the safe ones; an admin's refunds put the rest right,
and the report is empty again.

This test runs the order and payment services itself (STACK_SKIP): the order service to
stop it, the payment service to start it first with its reconciliation worker idle (the
report must be seen before the repairs) and then with it running every second.
"""

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from scripts.services import ROOT, present_services
from scripts.stack import Output, configure_mpesa
from scripts.throwaway_stack import StackEnvironment, drop_stack_databases
from shared.metrics import read_samples, sample
from tests.conftest import (
    ADMIN,
    LOST_CALLBACK_PHONE,
    SUCCESS_PHONE,
    FakeStripe,
    RunningStack,
    Shop,
    is_ready,
    reconciliation_report,
    running_fake_stripe,
    settled_report,
    stack_environment,
    start_stack,
    wait_until,
)

pytestmark = pytest.mark.e2e


@dataclass
class System:
    """The stack without the order and payment services, which the test runs itself."""

    environment: StackEnvironment
    stripe: FakeStripe
    stack: RunningStack | None = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return self.environment.env

    @property
    def ports(self) -> dict[str, int]:
        return self.environment.ports

    def service_env(self, **overrides: str) -> dict[str, str]:
        env = self.environment.service_env()
        configure_mpesa(present_services(), env, Output(["stack"]))  # the simulator
        return {**env, **overrides}

    def start(self, name: str, **overrides: str) -> None:
        """On the port this test holds (refused while the service is down)."""
        self.processes[name] = self.environment.start_service(
            name,
            self.service_env(**overrides),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: is_ready(self.environment.url(name)), 60, f"the {name} service")

    def stop(self, name: str) -> None:
        process = self.processes.pop(name)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)

    def payment_db(self, statement: str, **values) -> None:
        async def run() -> None:
            engine = create_async_engine(self.env["PAYMENT_DATABASE_URL"])
            async with engine.begin() as connection:
                await connection.execute(text(statement), values)
            await engine.dispose()

        asyncio.run(run())

    def payment_metrics(self) -> dict:
        answer = httpx.get(f"http://127.0.0.1:{self.ports['payment']}/metrics", timeout=10)
        return read_samples(answer.text)

    def make_reconcile(self) -> subprocess.CompletedProcess:
        """`make reconcile`, as the Makefile runs it."""
        return subprocess.run(
            [sys.executable, "-m", "scripts.reconcile"],
            cwd=ROOT,
            env={
                **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")},
                "GATEWAY_URL": f"http://127.0.0.1:{self.ports['gateway']}",
                "ADMIN_EMAIL": ADMIN["email"],
                "ADMIN_PASSWORD": ADMIN["password"],
                "DEV_SECRETS_FILE": self.env["DEV_SECRETS_FILE"],
            },
            capture_output=True,
            text=True,
            timeout=120,
        )


IDLE = "3600"  # the reconciliation worker's interval while the report is looked at


@pytest.fixture(scope="module")
def system(postgres_url):
    with running_fake_stripe() as stripe_server:
        environment = stack_environment(
            postgres_url,
            STACK_SKIP="order,payment",
            STRIPE_API_BASE=stripe_server.url,
            RATE_LIMIT_ENABLED="false",
            ADMIN_EMAIL=ADMIN["email"],
            ADMIN_PASSWORD=ADMIN["password"],
            USER_STATUS_TTL="1",
        )
        system = System(environment, stripe_server)
        try:
            system.stack = start_stack(environment)
            system.start("order")
            system.start("payment", RECONCILIATION_INTERVAL=IDLE)
            yield system
        finally:
            for name in list(system.processes):
                system.stop(name)
            if system.stack is not None:
                system.stack.stop()
            environment.close()
            drop_stack_databases(environment.env)


def kinds(report: dict) -> dict[str, dict]:
    return {d["kind"]: d for d in report["discrepancies"]}


def test_each_discrepancy_is_named_and_the_safe_ones_are_repaired(system):
    client = httpx.Client(base_url=system.stack.gateway, timeout=30)
    shop = Shop(client)

    # A sale as it should be: the report is empty and `make reconcile` says so.
    fine = shop.order("1500.00")
    shop.payment_settles(shop.pay_mpesa(fine["id"], SUCCESS_PHONE)["payment"]["id"])
    shop.order_reaches(fine["id"], "status", "paid")
    report = settled_report(client)
    assert report["totals"] == [
        {
            "currency": "KES",
            "paymentsCompleted": {"count": 1, "amount": "1500.00"},
            "refunds": {"count": 0, "amount": "0.00"},
            "paymentsKept": {"count": 1, "amount": "1500.00"},
            "ordersPaid": {"count": 1, "amount": "1500.00"},
            "ordersPaidInCash": {"count": 0, "amount": "0.00"},
            "difference": "0.00",
        }
    ]
    clean = system.make_reconcile()
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "discrepancies: none" in clean.stdout
    assert "KES       1 / 1500.00" in clean.stdout and "OK: every payment" in clean.stdout

    # 1. A double charge: a second completed payment for one order, written straight into
    # the payment database.
    twice = shop.order("1200.00")
    first = shop.payment_settles(shop.pay_mpesa(twice["id"], SUCCESS_PHONE)["payment"]["id"])
    shop.order_reaches(twice["id"], "status", "paid")
    second_id = str(uuid.uuid4())
    system.payment_db(
        "INSERT INTO payments (id, order_id, user_id, provider, amount, currency, status,"
        " completed_at) VALUES (:id, :order_id, :user_id, 'mpesa', 1200, 'KES', 'completed',"
        " now())",
        id=uuid.UUID(second_id),
        order_id=uuid.UUID(twice["id"]),
        user_id=uuid.UUID(twice["userId"]),
    )

    # 2. A payment settled on a cancelled order: the callback is lost, the customer cancels,
    # and the M-Pesa reconciliation settles the payment from STK Query afterwards.
    cancelled = shop.order("700.00")
    late = shop.pay_mpesa(cancelled["id"], LOST_CALLBACK_PHONE)["payment"]["id"]
    cancel = client.put(f"/api/orders/{cancelled['id']}/cancel", headers=shop.customer)
    assert cancel.status_code == 200, cancel.text
    assert shop.payment_settles(late)["status"] == "completed"
    shop.order_reaches(cancelled["id"], "paymentStatus", "refund_pending")

    # 3. A Stripe webhook dropped: the customer paid, Stripe knows, we were never told.
    card = shop.order("2500.00")
    started = client.post(
        "/api/payments/stripe", json={"orderId": card["id"]}, headers=shop.customer
    )
    assert started.status_code == 200, started.text
    card_payment = started.json()["payment"]["id"]
    system.stripe.succeed(started.json()["payment"]["externalReference"])

    # 4. The order service stopped while a payment settles, and kept down: no report can
    # be made without it; then its update is lost (acknowledged by an order database later
    # restored from a backup, say) and it comes back.
    unseen = shop.order("1800.00")
    unseen_payment = shop.pay_mpesa(unseen["id"], SUCCESS_PHONE)["payment"]["id"]
    system.stop("order")
    assert shop.payment_settles(unseen_payment)["status"] == "completed"
    down = client.get("/api/payments/admin/reconciliation", headers=shop.admin)
    assert down.status_code == 503 and down.json()["error"] == "Order service unavailable"
    unavailable = system.make_reconcile()
    assert unavailable.returncode == 2 and "Order service unavailable" in unavailable.stderr
    system.payment_db(
        "UPDATE outbox_messages SET delivered_at = now()"
        " WHERE delivered_at IS NULL AND payload->>'paymentId' = :payment_id",
        payment_id=unseen_payment,
    )
    system.start("order")

    report = reconciliation_report(client)
    found = kinds(report)
    assert sorted(found) == [
        "order_paid_twice",
        "payment_not_on_order",
        "provider_paid_not_recorded",
        "refund_pending",
    ]
    assert len(report["discrepancies"]) == 4 and report["ok"] is False
    assert found["order_paid_twice"]["orderId"] == twice["id"]
    assert found["order_paid_twice"]["paymentIds"] == [first["id"], second_id]
    assert (found["order_paid_twice"]["amount"], found["order_paid_twice"]["orderAmount"]) == (
        "2400.00",
        "1200.00",
    )
    assert found["refund_pending"]["paymentIds"] == [late]
    assert found["refund_pending"]["amount"] == "700.00"
    assert found["refund_pending"]["repair"] is None
    assert found["provider_paid_not_recorded"]["paymentIds"] == [card_payment]
    assert found["provider_paid_not_recorded"]["amount"] == "2500.00"
    assert found["provider_paid_not_recorded"]["repair"] is not None
    assert found["payment_not_on_order"]["paymentIds"] == [unseen_payment]
    assert found["payment_not_on_order"]["orderAmount"] == "1800.00"
    assert found["payment_not_on_order"]["repair"] is not None
    # Kept: 1500 + 1200 + 1200 + 700 + 1800; orders paid: 1500 + 1200.
    assert report["totals"][0]["paymentsKept"] == {"count": 5, "amount": "6400.00"}
    assert report["totals"][0]["ordersPaid"] == {"count": 2, "amount": "2700.00"}
    assert report["totals"][0]["difference"] == "3700.00"

    wrong = system.make_reconcile()
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    assert "discrepancies: 4" in wrong.stdout and "NOT OK" in wrong.stdout
    for kind in found:
        assert kind in wrong.stdout
    assert f"refund {second_id}" in wrong.stdout

    # The worker runs (every second now): it repairs what is safe, reports the rest.
    system.stop("payment")
    system.start("payment", RECONCILIATION_INTERVAL="1")
    shop.order_reaches(card["id"], "status", "paid")
    shop.order_reaches(unseen["id"], "status", "paid")
    assert shop.get_payment(card_payment)["status"] == "completed"
    left = wait_until(
        lambda: (r := reconciliation_report(client)) and len(r["discrepancies"]) == 2 and r,
        30,
        "the repairs",
    )
    assert sorted(kinds(left)) == ["order_paid_twice", "refund_pending"]
    wait_until(
        lambda: (
            sample(system.payment_metrics(), "reconciliation_discrepancies", kind="refund_pending")
            == 1
        ),
        15,
        "the gauge",
    )
    scraped = system.payment_metrics()
    repairs = "reconciliation_repairs_total"
    assert sample(scraped, repairs, kind="provider_paid_not_recorded") == 1
    assert sample(scraped, repairs, kind="payment_not_on_order") == 1
    assert sample(scraped, "reconciliation_discrepancies", kind="order_paid_twice") == 1

    # The admin does what the actions say: both refunded (M-Pesa: made in the portal,
    # recorded here).
    for payment_id in (second_id, late):
        refunded = client.post(
            f"/api/payments/{payment_id}/refund",
            json={"manual": True, "reference": f"R-{payment_id[:8]}"},
            headers=shop.admin,
        )
        assert refunded.status_code == 200, refunded.text
    shop.order_reaches(cancelled["id"], "paymentStatus", "refunded")
    assert shop.get_order(twice["id"])["paymentStatus"] == "paid"  # it keeps the first

    report = settled_report(client)
    assert report["totals"][0]["refunds"] == {"count": 2, "amount": "1900.00"}
    assert report["totals"][0]["paymentsKept"] == {"count": 4, "amount": "7000.00"}
    assert report["totals"][0]["ordersPaid"] == {"count": 4, "amount": "7000.00"}
    assert report["totals"][0]["difference"] == "0.00"
    again = system.make_reconcile()
    assert again.returncode == 0, again.stdout + again.stderr
    assert "discrepancies: none" in again.stdout
    wait_until(
        lambda: (
            sample(system.payment_metrics(), "reconciliation_discrepancies", kind="refund_pending")
            == 0
        ),
        15,
        "the gauge back at 0",
    )
    client.close()
