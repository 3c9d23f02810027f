"""`docker compose up` of docker-compose.yml, as a developer runs it, then the seed
README's flow through http://localhost:5000 against the containers, then `down -v`."""

import json
import re
import subprocess
import sys

import httpx
import pytest

from scripts.services import ROOT
from tests.compose.conftest import (
    ADMIN,
    DEV_FILE,
    GATEWAY,
    OUTPUT,
    bearer,
    login,
    record_figure,
    running,
    wait_until,
)

SERVICES = (
    "api-gateway",
    "auth-service",
    "product-service",
    "order-service",
    "payment-service",
    "cart-service",
    "mpesa-simulator",
    "admin-console",
)
# The digest of an empty layer (what WORKDIR of an existing folder adds).
EMPTY_LAYER = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
MIGRATED = ("auth", "product", "order", "payment", "cart")
# The seed README's bodies.
CUSTOMER = {
    "name": "John Doe",
    "email": "john@example.com",
    "password": "password123",
    "phoneNumber": "254712345678",
}
PRODUCT = {
    "name": "iPhone 15 Pro",
    "description": "Latest iPhone",
    "price": 150000,
    "stock": 50,
    "category": "Electronics",
    "sku": "IP15PRO-001",
}
ADDRESS = {"street": "123 Main St", "city": "Nairobi", "country": "Kenya", "postalCode": "00100"}


@pytest.fixture(scope="module")
def dev(project_factory, built_images):
    with running(project_factory([DEV_FILE]), figure="dev_up_wait_seconds") as project:
        yield project


@pytest.fixture(scope="module")
def client(dev):
    with httpx.Client(base_url=GATEWAY, timeout=30) as client:
        yield client


def image_facts(image: str) -> dict:
    [facts] = json.loads(
        subprocess.run(
            ["docker", "image", "inspect", image], capture_output=True, text=True, check=True
        ).stdout
    )
    return facts


def test_every_image_is_built_unprivileged_probed_and_shares_its_base(dev):
    images = {name: image_facts(f"ecommerce/{name}:dev") for name in SERVICES}
    sizes = {name: round(facts["Size"] / 1e6, 1) for name, facts in images.items()}
    record_figure("image_size_mb", sizes)
    layers = {name: facts["RootFS"]["Layers"] for name, facts in images.items()}
    # The base image's layers and the runtime stage's come first in every image, the
    # same; each image adds one layer of its own (COPY /app: its environment).
    shared = common_prefix(list(layers.values()))
    assert len(shared) >= 3
    for name, image_layers in layers.items():
        own = [layer for layer in image_layers[len(shared) :] if layer != EMPTY_LAYER]
        assert len(own) == 1, f"{name} has {len(own)} layers of its own"
        config = images[name]["Config"]
        assert config["User"] == "10001:10001", name
        assert config["Healthcheck"]["Test"][0] == "CMD", name
        assert config["Cmd"] == ["/app/start"], name
    own = {name: service_layer_bytes(f"ecommerce/{name}:dev") for name in SERVICES}
    record_figure("service_layer_mb", {name: round(size / 1e6, 1) for name, size in own.items()})
    record_figure(
        "shared_layers_mb", round((images["api-gateway"]["Size"] - own["api-gateway"]) / 1e6, 1)
    )


def common_prefix(sequences: list[list[str]]) -> list[str]:
    first, length = sequences[0], 0
    while all(len(other) > length and other[length] == first[length] for other in sequences):
        length += 1
    return first[:length]


def service_layer_bytes(image: str) -> int:
    """The size of the image's own layer (the last non-empty one: COPY /app)."""
    history = subprocess.run(
        ["docker", "history", "--human=false", "--format", "{{.Size}}", image],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return next(int(size) for size in history if int(size) > 0)


def test_migrations_ran_once_each_before_its_service(dev):
    for name in MIGRATED:
        jobs = dev.run("ps", "--all", "--format", "json", f"{name}-migrate").stdout
        states = [json.loads(line) for line in jobs.splitlines() if line.strip()]
        assert [(s["State"], s["ExitCode"]) for s in states] == [("exited", 0)], states
        [[version]] = dev.sql(
            f"{name}-db", f"ecommerce_{name}", "SELECT version_num FROM alembic_version"
        )
        assert version
        logs = dev.run("logs", "--no-color", f"{name}-service").stdout
        assert "applying migrations" not in logs  # the service itself never migrates


def test_the_seed_flow_through_the_gateway(dev, client):
    transcript: list[str] = []

    def step(label: str, response: httpx.Response, expected: int) -> dict:
        body = response.json()
        transcript.append(f"{label}: {response.status_code} {json.dumps(body)[:160]}")
        assert response.status_code == expected, f"{label}: {response.text}"
        return body

    assert step("GET /health", client.get("/health"), 200)["status"] == "OK"
    step("register", client.post("/api/auth/register", json=CUSTOMER), 201)
    token = step(
        "login",
        client.post(
            "/api/auth/login",
            json={"email": CUSTOMER["email"], "password": CUSTOMER["password"]},
        ),
        200,
    )["token"]
    customer = bearer(token)
    profile = step("profile", client.get("/api/auth/profile", headers=customer), 200)
    assert profile["user"]["email"] == CUSTOMER["email"]

    admin = login(client, ADMIN["email"], ADMIN["password"])
    product = step(
        "admin creates a product", client.post("/api/products", json=PRODUCT, headers=admin), 201
    )["product"]
    order = step(
        "customer orders it",
        client.post(
            "/api/orders",
            json={
                "items": [{"productId": product["id"], "quantity": 1}],
                "shippingAddress": ADDRESS,
            },
            headers=customer,
        ),
        201,
    )["order"]
    assert order["status"] == "pending" and order["totalAmount"] == "150000.00"
    payment = step(
        "pays with M-Pesa",
        client.post(
            "/api/payments/mpesa",
            json={"orderId": order["id"], "phoneNumber": CUSTOMER["phoneNumber"], "amount": 150000},
            headers=customer,
        ),
        200,
    )["payment"]
    assert payment["status"] == "processing"

    def paid():
        current = client.get(f"/api/orders/{order['id']}", headers=customer).json()["order"]
        return current["status"] == "paid" and current

    paid_order = wait_until(paid, 60, "the simulator's callback to mark the order paid")
    transcript.append(f"order after the callback: status {paid_order['status']}")
    settled = client.get(f"/api/payments/{payment['id']}", headers=customer).json()["payment"]
    transcript.append(f"payment: {settled['status']} {settled.get('mpesaReceiptNumber', '')}")
    assert settled["status"] == "completed"
    stock = client.get(f"/api/products/{product['id']}").json()["product"]["stock"]
    assert stock == PRODUCT["stock"] - 1

    # The admin console, through the gateway: the admin signs in and sees the order.
    console = client.get("/admin/login")
    assert console.status_code == 200, console.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', console.text).group(1)
    signed_in = client.post(
        "/admin/login",
        data={"email": ADMIN["email"], "password": ADMIN["password"], "csrf_token": csrf},
    )
    transcript.append(
        f"admin console sign-in: {signed_in.status_code} -> {signed_in.headers.get('location')}"
    )
    assert signed_in.status_code == 303, signed_in.text
    orders_page = client.get("/admin/orders")
    transcript.append(f"admin console orders page: {orders_page.status_code}")
    assert orders_page.status_code == 200 and order["orderNumber"] in orders_page.text

    # `make reconcile`, against the containers.
    reconcile = subprocess.run(
        [sys.executable, "-m", "scripts.reconcile"],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "GATEWAY_URL": GATEWAY,
            "ADMIN_EMAIL": ADMIN["email"],
            "ADMIN_PASSWORD": ADMIN["password"],
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    transcript.append("make reconcile:\n" + reconcile.stdout.strip())
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / "flow.txt").write_text("\n".join(transcript) + "\n")
    print("\n".join(transcript))
    assert reconcile.returncode == 0, reconcile.stdout + reconcile.stderr
    assert "discrepancies: none" in reconcile.stdout


def test_down_leaves_no_container_network_or_volume(dev):
    assert dev.leftovers()["containers"]  # it was up
    dev.down()
    assert dev.leftovers() == {"containers": [], "networks": [], "volumes": []}
