"""`make run` in development makes an admin when none is configured (its password kept in
the dev secrets file) and says how to log in; `make seed` uses that admin, through the
gateway, to add a customer and the demo catalogue, and a second run changes nothing."""

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from dotenv import dotenv_values

from scripts.seed import CATALOGUE, DEFAULT_CUSTOMER_EMAIL
from scripts.services import ROOT
from scripts.stack import (
    DEFAULT_ADMIN_EMAIL,
    IDENTITIES,
    Output,
    admin_login,
    ensure_development_keys,
    ensure_development_secrets,
    keys_directory,
    service_environment,
)
from scripts.throwaway_stack import drop_stack_databases
from shared.keys import load_private_key, public_pem
from shared.testing import refused_port
from tests.conftest import auth, stack_environment, start_stack


def run_seed(**env: str) -> subprocess.CompletedProcess:
    base = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "LANG")}
    return subprocess.run(
        [sys.executable, "-m", "scripts.seed"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_development_keys_one_per_process_each_given_only_its_own(tmp_path):
    env = {"DEV_SECRETS_FILE": str(tmp_path / "dev-secrets.env")}
    ensure_development_keys(env, Output(["stack"]))
    directory = keys_directory(env)
    assert directory == tmp_path / "keys"
    public = json.loads(Path(env["INTERNAL_PUBLIC_KEYS_FILE"]).read_text())
    assert set(public) == set(IDENTITIES.values())
    private = {}
    for service, identity in IDENTITIES.items():
        own = service_environment(env, service)
        key_file = Path(own["INTERNAL_PRIVATE_KEY_FILE"])
        assert key_file.stat().st_mode & 0o077 == 0
        key = load_private_key(key_file.read_text())
        assert public_pem(key.public_key()) == public[identity]  # its own, nobody else's
        private[identity] = key_file.read_text()
        # The user-token key is the auth service's alone.
        assert ("JWT_PRIVATE_KEY_FILE" in own) is (service == "auth")
    assert len(set(private.values())) == len(IDENTITIES)

    # Kept: the next start uses the same keys (tokens stay valid across restarts).
    again = {"DEV_SECRETS_FILE": env["DEV_SECRETS_FILE"]}
    ensure_development_keys(again, Output(["stack"]))
    assert again["JWT_PRIVATE_KEY_FILE"] == env["JWT_PRIVATE_KEY_FILE"]
    assert json.loads(Path(again["INTERNAL_PUBLIC_KEYS_FILE"]).read_text()) == public

    # Production makes up nothing: every process must be given its keys.
    production = {"DEV_SECRETS_FILE": str(tmp_path / "prod" / "s.env"), "ENVIRONMENT": "production"}
    ensure_development_keys(production, Output(["stack"]))
    assert not (tmp_path / "prod").exists() and "JWT_PRIVATE_KEY_FILE" not in production


def test_development_defaults_make_an_admin_and_keep_its_password(tmp_path):
    secrets_file = tmp_path / "dev-secrets.env"
    env = {
        "DEV_SECRETS_FILE": str(secrets_file),
        "MPESA_CALLBACK_SECRET": "set-by-me-" + "x" * 30,
    }
    generated = ensure_development_secrets(env, Output(["stack"]))
    assert env["ADMIN_EMAIL"] == DEFAULT_ADMIN_EMAIL
    assert "MPESA_CALLBACK_SECRET" not in generated
    assert env["MPESA_CALLBACK_SECRET"].startswith("set-by-me-")
    assert {"ADMIN_PASSWORD"} <= set(generated)
    stored = dotenv_values(secrets_file)
    assert stored["ADMIN_PASSWORD"] == env["ADMIN_PASSWORD"]
    assert 8 <= len(env["ADMIN_PASSWORD"]) <= 128  # what the auth service accepts
    assert "MPESA_CALLBACK_SECRET" not in stored  # only what was generated is kept
    assert secrets_file.stat().st_mode & 0o077 == 0
    assert admin_login(env, generated) == (
        f"admin@example.com  (password: ADMIN_PASSWORD in {secrets_file})"
    )

    # The next start reuses what is kept: same password, same admin.
    again = {"DEV_SECRETS_FILE": str(secrets_file)}
    ensure_development_secrets(again, Output(["stack"]))
    assert again["ADMIN_PASSWORD"] == env["ADMIN_PASSWORD"]

    # An admin you configure is yours; its password is not in the file.
    own = {"DEV_SECRETS_FILE": str(secrets_file), "ADMIN_EMAIL": "owner@shop.example.com"}
    own["ADMIN_PASSWORD"] = "owner-password-1"
    generated = ensure_development_secrets(own, Output(["stack"]))
    assert own["ADMIN_EMAIL"] == "owner@shop.example.com"
    assert own["ADMIN_PASSWORD"] == "owner-password-1"
    assert admin_login(own, generated) == (
        "owner@shop.example.com  (password: ADMIN_PASSWORD, as you set it)"
    )


def test_production_gets_no_made_up_admin_nor_secrets_nor_demo_data(tmp_path):
    secrets_file = tmp_path / "dev-secrets.env"
    env = {"DEV_SECRETS_FILE": str(secrets_file), "ENVIRONMENT": "production"}
    assert ensure_development_secrets(env, Output(["stack"])) == []
    assert "ADMIN_EMAIL" not in env and "ADMIN_PASSWORD" not in env
    assert not secrets_file.exists()
    assert admin_login(env, []) is None

    with refused_port() as port:
        refused = run_seed(
            ENVIRONMENT="production",
            DEV_SECRETS_FILE=str(secrets_file),
            ADMIN_EMAIL="a@example.com",
            ADMIN_PASSWORD="password123",
            GATEWAY_URL=f"http://127.0.0.1:{port}",
        )
    assert refused.returncode == 1
    assert "development only" in refused.stderr


def test_seed_without_a_gateway_says_so(tmp_path):
    with refused_port() as port:
        missing = run_seed(
            DEV_SECRETS_FILE=str(tmp_path / "dev-secrets.env"),
            ADMIN_EMAIL="a@example.com",
            ADMIN_PASSWORD="password123",
            GATEWAY_URL=f"http://127.0.0.1:{port}",
        )
    assert missing.returncode == 1
    assert "does not answer" in missing.stderr and "make run" in missing.stderr


@pytest.fixture(scope="module")
def dev_stack(postgres_url):
    """A stack started as `make run` with nothing configured: no ADMIN_EMAIL/PASSWORD."""
    environment = stack_environment(postgres_url, RATE_LIMIT_ENABLED="false")
    env = environment.env
    assert "ADMIN_EMAIL" not in env and "ADMIN_PASSWORD" not in env
    stack = start_stack(environment)
    yield stack
    stack.stop()
    drop_stack_databases(env)


def demo_products(client: httpx.Client, token: str) -> dict[str, dict]:
    products: dict[str, dict] = {}
    page = 1
    while True:
        listed = client.get(
            "/api/products",
            params={"page": page, "limit": 100, "includeInactive": "true"},
            headers=auth(token),
        ).json()
        products |= {p["sku"]: p for p in listed["products"] if p["sku"].startswith("DEMO-")}
        if page >= listed["totalPages"]:
            return products
        page += 1


@pytest.mark.e2e
def test_make_run_prints_the_urls_and_the_development_admin_which_logs_in(dev_stack):
    output = dev_stack.output()
    secrets_file = dev_stack.env["DEV_SECRETS_FILE"]
    gateway = f"http://localhost:{dev_stack.ports['gateway']}"
    assert f"API gateway:  {gateway}" in output
    assert f"API docs:     {gateway}/docs" in output
    assert f"Admin console: {gateway}/admin/" in output
    for service in ("auth", "product", "cart", "order", "payment"):
        assert f"http://localhost:{dev_stack.ports[service]}/docs" in output, service
    assert f"admin login:  admin@example.com  (password: ADMIN_PASSWORD in {secrets_file})" in (
        output
    )
    assert "254700000001  insufficient funds" in output
    password = dotenv_values(secrets_file)["ADMIN_PASSWORD"]
    assert password not in output  # where it is, never what it is
    login = httpx.post(
        f"{dev_stack.gateway}/api/auth/login",
        json={"email": "admin@example.com", "password": password},
        timeout=30,
    )
    assert login.status_code == 200 and login.json()["user"]["role"] == "admin"
    # The console's address in the banner is the console's sign-in page.
    console = httpx.get(f"{dev_stack.gateway}/admin/", timeout=30, follow_redirects=True)
    assert console.status_code == 200 and "<h1>Sign in</h1>" in console.text


@pytest.mark.e2e
def test_make_seed_with_the_development_admin_twice_changes_nothing(dev_stack):
    env = {"GATEWAY_URL": dev_stack.gateway, "DEV_SECRETS_FILE": dev_stack.env["DEV_SECRETS_FILE"]}
    first = run_seed(**env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "admin: admin@example.com" in first.stdout
    assert f"customer: {DEFAULT_CUSTOMER_EMAIL} (registered" in first.stdout
    assert f"catalogue: {len(CATALOGUE)} products created, 0 already there" in first.stdout

    stored = dotenv_values(dev_stack.env["DEV_SECRETS_FILE"])
    with httpx.Client(base_url=dev_stack.gateway, timeout=30) as client:
        admin = client.post(
            "/api/auth/login",
            json={"email": "admin@example.com", "password": stored["ADMIN_PASSWORD"]},
        ).json()["token"]
        customer = client.post(
            "/api/auth/login",
            json={"email": DEFAULT_CUSTOMER_EMAIL, "password": stored["SEED_CUSTOMER_PASSWORD"]},
        )
        assert customer.status_code == 200 and customer.json()["user"]["role"] == "customer"
        seeded = demo_products(client, admin)
        assert len(CATALOGUE) >= 36
        assert set(seeded) == {product.sku for product in CATALOGUE}
        assert len({p["category"] for p in seeded.values()}) >= 5
        iphone = next(p for p in seeded.values() if p["name"] == "iPhone 15 Pro")
        assert iphone["price"] == "150000.00" and iphone["isActive"]
        # Public, as a shopper sees it.
        assert client.get(f"/api/products/{iphone['id']}").status_code == 200

        second = run_seed(**env)
        assert second.returncode == 0, second.stdout + second.stderr
        assert f"customer: {DEFAULT_CUSTOMER_EMAIL} (already there" in second.stdout
        assert f"catalogue: 0 products created, {len(CATALOGUE)} already there" in second.stdout
        assert demo_products(client, admin) == seeded  # same ids, prices, stock, times
