"""`make run`'s process manager with the real processes: up, used through the
gateway, stopped by Ctrl-C with nothing left listening."""

import os
import signal
import time
import uuid

import httpx
import pytest

from scripts.throwaway_stack import drop_stack_databases
from tests.conftest import port_is_open, stack_environment, start_stack

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_run_register_login_profile_then_stop(postgres_url, stop_signal):
    environment = stack_environment(
        postgres_url, ADMIN_EMAIL="owner@shop.example.com", ADMIN_PASSWORD="owner-password-1"
    )
    env, ports = environment.env, environment.ports
    stack = start_stack(environment)
    try:
        email = f"john-{uuid.uuid4().hex[:6]}@example.com"
        with httpx.Client(base_url=stack.gateway, timeout=30) as client:
            assert client.get("/health").json()["service"] == "API Gateway"
            registered = client.post(
                "/api/auth/register",
                json={
                    "name": "John Doe",
                    "email": email,
                    "password": "password123",
                    "phoneNumber": "254712345678",
                },
            )
            assert registered.status_code == 201, registered.text
            login = client.post("/api/auth/login", json={"email": email, "password": "password123"})
            assert login.status_code == 200
            token = login.json()["token"]
            profile = client.get("/api/auth/profile", headers={"Authorization": f"Bearer {token}"})
            assert profile.status_code == 200
            assert profile.json()["user"]["email"] == email
            admin = client.post(
                "/api/auth/login",
                json={"email": "owner@shop.example.com", "password": "owner-password-1"},
            )
            assert admin.json()["user"]["role"] == "admin"

        output = stack.output()
        for name in ("auth", "gateway"):
            assert any(line.startswith(f"{name} ") and "|" in line for line in output.splitlines())
        assert "migrate" in output

        assert stack.stop(stop_signal) == 0
        for name, port in ports.items():
            assert not port_is_open(port), f"{name} still listens on {port}"
    finally:
        if stack.process.poll() is None:
            stack.stop(signal.SIGKILL)
        drop_stack_databases(env)


def test_a_service_that_dies_stops_the_stack(postgres_url):
    environment = stack_environment(postgres_url)
    env, ports = environment.env, environment.ports
    stack = start_stack(environment)
    try:
        os.kill(stack.pid_of("auth"), signal.SIGKILL)
        assert stack.process.wait(timeout=40) == 1
        assert "auth exited" in stack.output()
        # The supervisor has waited for every process it started before it exited.
        for port in ports.values():
            assert not port_is_open(port)
    finally:
        if stack.process.poll() is None:
            stack.stop(signal.SIGKILL)
        drop_stack_databases(env)


def test_services_do_not_outlive_a_killed_supervisor(postgres_url):
    """kill -9 of `make run` itself (no chance to clean up): the services still stop."""
    environment = stack_environment(postgres_url)
    env, ports = environment.env, environment.ports
    stack = start_stack(environment)
    try:
        stack.process.kill()
        stack.process.wait(timeout=10)
        deadline = time.monotonic() + 20
        while any(port_is_open(port) for port in ports.values()):
            assert time.monotonic() < deadline, "services still listen after the supervisor died"
            time.sleep(0.2)
    finally:
        drop_stack_databases(env)
