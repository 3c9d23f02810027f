"""End-to-end tests: the real processes, started the way `make run` starts them."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy.engine import make_url

from scripts.postgres import drop_database
from scripts.services import ROOT, present_services
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
    while not any("all services are up" in line for line in stack.lines):
        if process.poll() is not None or time.monotonic() > deadline:
            stack.stop(signal.SIGTERM)
            pytest.fail(f"the stack did not come up:\n{stack.output()}")
        time.sleep(0.1)
    return stack


@pytest.fixture(scope="session")
def stack(postgres_url):
    """The whole system, once for the session (rate limits off: tests go fast)."""
    env, ports = stack_environment(
        postgres_url,
        RATE_LIMIT_ENABLED="false",
        ADMIN_EMAIL="admin@shop.example.com",
        ADMIN_PASSWORD="admin-password-123",
        USER_STATUS_TTL="1",
    )
    running = start_stack(env, ports)
    yield running
    running.stop()
    drop_stack_databases(env)


def drop_stack_databases(env: dict[str, str]) -> None:
    import asyncio

    for service in present_services():
        if service.database_env:
            asyncio.run(drop_database(env[service.database_env]))


@pytest.fixture
def gateway(stack):
    with httpx.Client(base_url=stack.gateway, timeout=30) as client:
        yield client
