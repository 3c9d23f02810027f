"""`make seed`: demo data for a running system, through the gateway's public API (no
database access): an admin (the one `make run` creates), a customer, and a catalogue of a
few dozen products in several categories, priced in KES.

Idempotent: products are keyed by their sku and the customer by its email, so a second
run finds everything there and changes nothing (a product an admin has changed since
keeps the admin's changes).

Credentials come from where `make run` takes them: ADMIN_EMAIL / ADMIN_PASSWORD from the
environment or `.env`, else the development admin (admin@example.com, its password in
`.data/dev-secrets.env`). The customer is SEED_CUSTOMER_EMAIL (customer@example.com) with
SEED_CUSTOMER_PASSWORD, generated into `.data/dev-secrets.env` when not set. The gateway
is GATEWAY_URL, else http://127.0.0.1:GATEWAY_PORT (5000). Refused with
ENVIRONMENT=production: demo products have no place in a real shop.
"""

import argparse
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from scripts.gateway import ScriptError, admin_credentials, check_gateway, gateway_url, login
from scripts.stack import (
    dev_secrets_file,
    is_production,
    load_environment,
    store_development_secrets,
    stored_development_secrets,
)

DEFAULT_CUSTOMER_EMAIL = "customer@example.com"
PAGE_SIZE = 100


@dataclass(frozen=True)
class DemoProduct:
    sku: str
    name: str
    category: str
    price: str  # KES
    stock: int
    description: str


def _products(prefix: str, category: str, rows: list[tuple[str, str, int, str]]):
    return [
        DemoProduct(f"DEMO-{prefix}-{n:03d}", name, category, price, stock, description)
        for n, (name, price, stock, description) in enumerate(rows, start=1)
    ]


CATALOGUE: tuple[DemoProduct, ...] = (
    *_products(
        "PHN",
        "Phones & Tablets",
        [
            ("iPhone 15 Pro", "150000.00", 50, "Latest iPhone, 128 GB, titanium."),
            ("Samsung Galaxy A15", "21999.00", 40, "6.5-inch display, 128 GB, dual SIM."),
            ("Tecno Spark 20", "15499.00", 60, "90 Hz display, 5000 mAh battery."),
            ("Infinix Hot 40i", "13999.00", 55, "128 GB, 50 MP camera, dual SIM."),
            ("Xiaomi Redmi Note 13", "27999.00", 35, "AMOLED display, 256 GB."),
            ("Samsung Galaxy Tab A9", "24500.00", 20, "8.7-inch tablet, Wi-Fi, 64 GB."),
        ],
    ),
    *_products(
        "ELC",
        "Electronics",
        [
            ("Hisense 43-inch Smart TV", "38999.00", 15, "Full HD, VIDAA, built-in Wi-Fi."),
            ("JBL Flip 6 Speaker", "14500.00", 25, "Portable, waterproof, 12 hours of play."),
            ("Oraimo FreePods 4", "3499.00", 80, "Wireless earbuds with noise cancelling."),
            ("Anker Power Bank 20000 mAh", "5200.00", 45, "Two USB ports, fast charging."),
            ("HP Laptop 15", "64999.00", 10, "Core i5, 8 GB RAM, 512 GB SSD."),
            ("Logitech M185 Wireless Mouse", "1650.00", 100, "USB receiver, one-year battery."),
        ],
    ),
    *_products(
        "HOM",
        "Home & Kitchen",
        [
            ("Ramtons Electric Kettle 1.7 L", "2499.00", 40, "Stainless steel, auto shut-off."),
            ("Two-Burner Gas Cooker", "6999.00", 18, "Table-top, auto ignition."),
            ("Sufuria Set (5 pieces)", "3800.00", 30, "Aluminium cooking pots with lids."),
            ("Charcoal Jiko", "1200.00", 50, "Energy-saving ceramic-lined stove."),
            ("Countertop Blender 1.5 L", "4299.00", 22, "Two speeds and a grinder mill."),
            ("Vacuum Flask 2 L", "1450.00", 60, "Keeps chai hot for 12 hours."),
        ],
    ),
    *_products(
        "FSH",
        "Fashion",
        [
            ("Maasai Shuka", "1500.00", 70, "Red checked cotton blanket, 2 m."),
            ("Kikoy Beach Wrap", "1200.00", 65, "Striped cotton, hand-woven in Mombasa."),
            ("Kitenge Dress", "3500.00", 25, "Wax-print cotton, made to order sizes."),
            ("Leather Sandals", "1800.00", 40, "Hand-made in Kariakor, tyre soles."),
            ("Men's Polo Shirt", "1299.00", 90, "Cotton pique, several colours."),
            ("Canvas Sneakers", "2999.00", 35, "Unisex, rubber soles."),
        ],
    ),
    *_products(
        "GRC",
        "Groceries",
        [
            ("Kenya AA Coffee 500 g", "1250.00", 120, "Whole beans from Nyeri."),
            ("Kericho Black Tea 500 g", "650.00", 150, "Loose leaf, strong and bright."),
            ("Maize Flour 2 kg", "189.00", 300, "Sifted white maize flour for ugali."),
            ("Sugar 2 kg", "320.00", 250, "Brown cane sugar."),
            ("Cooking Oil 3 L", "1150.00", 90, "Vegetable oil, cholesterol free."),
            ("Pishori Rice 2 kg", "480.00", 200, "Aromatic rice from Mwea."),
        ],
    ),
    *_products(
        "BKS",
        "Books",
        [
            ("The River Between", "950.00", 30, "Ngugi wa Thiong'o's novel of two ridges."),
            ("Weep Not, Child", "900.00", 30, "Ngugi wa Thiong'o's first novel."),
            ("Blossoms of the Savannah", "850.00", 40, "Henry Ole Kulet; a set book."),
            ("Things Fall Apart", "1100.00", 25, "Chinua Achebe's classic."),
            ("Kamusi ya Kiswahili Sanifu", "2300.00", 15, "The standard Swahili dictionary."),
            ("KCSE Mathematics Revision", "1500.00", 50, "Past papers with worked answers."),
        ],
    ),
    *_products(
        "BTY",
        "Beauty & Health",
        [
            ("Shea Butter 250 g", "650.00", 80, "Unrefined, for skin and hair."),
            ("Milking Jelly 200 ml", "180.00", 150, "Petroleum jelly for dry skin."),
            ("Body Lotion 400 ml", "720.00", 70, "Cocoa butter, 48-hour moisture."),
            ("Sunscreen SPF 50", "1350.00", 45, "Water resistant, for every skin."),
            ("Herbal Toothpaste 140 g", "250.00", 200, "Fluoride with clove and mint."),
            ("Hand Sanitizer 500 ml", "300.00", 120, "70 % alcohol, with aloe vera."),
        ],
    ),
)


def _answer(response: httpx.Response, what: str, expected: tuple[int, ...] = (200,)) -> dict:
    if response.status_code not in expected:
        raise ScriptError(f"{what}: {response.status_code} {response.text[:300]}")
    return response.json()


def existing_skus(client: httpx.Client, token: str) -> set[str]:
    """Every sku of the catalogue, inactive products included (an admin sees them)."""
    skus: set[str] = set()
    page = 1
    while True:
        listed = _answer(
            client.get(
                "/api/products",
                params={"page": page, "limit": PAGE_SIZE, "includeInactive": "true"},
                headers={"Authorization": f"Bearer {token}"},
            ),
            "listing the products",
        )
        skus |= {product["sku"] for product in listed["products"] if product.get("sku")}
        if page >= listed["totalPages"]:
            return skus
        page += 1


def seed_catalogue(client: httpx.Client, token: str) -> tuple[int, int]:
    """(created, already there)."""
    known = existing_skus(client, token)
    created = 0
    for product in CATALOGUE:
        if product.sku in known:
            continue
        response = client.post(
            "/api/products",
            json={
                "name": product.name,
                "description": product.description,
                "price": product.price,
                "stock": product.stock,
                "category": product.category,
                "sku": product.sku,
            },
            headers={"Authorization": f"Bearer {token}"},
        )
        if response.status_code == 400 and response.json().get("error") == (
            "Resource already exists"
        ):
            continue  # made meanwhile by another run
        _answer(response, f"creating {product.sku}", (201,))
        created += 1
    return created, len(CATALOGUE) - created


def seed_customer(client: httpx.Client, email: str, password: str) -> bool:
    """True when the customer was registered now; otherwise checks its password works."""
    response = client.post(
        "/api/auth/register",
        json={"name": "Demo Customer", "email": email, "password": password},
    )
    if response.status_code == 201:
        return True
    if response.status_code == 400 and response.json().get("error") == "User already exists":
        login(client, email, password, "customer")
        return False
    raise ScriptError(f"registering {email}: {response.status_code} {response.text[:300]}")


def customer_password(env: dict[str, str]) -> tuple[str, str]:
    """(password, where it is): SEED_CUSTOMER_PASSWORD, else the one kept in the dev
    secrets file, generated there the first time."""
    if env.get("SEED_CUSTOMER_PASSWORD"):
        return env["SEED_CUSTOMER_PASSWORD"], "SEED_CUSTOMER_PASSWORD, as you set it"
    values = stored_development_secrets(env)
    if "SEED_CUSTOMER_PASSWORD" not in values:
        values["SEED_CUSTOMER_PASSWORD"] = secrets.token_urlsafe(12)
        store_development_secrets(env, values)
    return values["SEED_CUSTOMER_PASSWORD"], f"SEED_CUSTOMER_PASSWORD in {dev_secrets_file(env)}"


def seed(env: dict[str, str], say: Callable[[str], None]) -> None:
    if is_production(env):
        raise ScriptError("ENVIRONMENT=production: the demo data is for development only")
    gateway = gateway_url(env)
    admin_email, admin_password = admin_credentials(env)
    customer_email = env.get("SEED_CUSTOMER_EMAIL") or DEFAULT_CUSTOMER_EMAIL
    with httpx.Client(base_url=gateway, timeout=30) as client:
        check_gateway(client)
        token = login(client, admin_email, admin_password, "admin")
        say(f"admin: {admin_email}")
        password, where = customer_password(env)
        registered = seed_customer(client, customer_email, password)
        state = "registered" if registered else "already there"
        say(f"customer: {customer_email} ({state}; password: {where})")
        created, present = seed_catalogue(client, token)
        categories = len({product.category for product in CATALOGUE})
        say(
            f"catalogue: {created} products created, {present} already there "
            f"({len(CATALOGUE)} demo products in {categories} categories, prices in KES)"
        )
    say(f"browse them: {gateway}/api/products   (API docs: {gateway}/docs)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make seed", description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    try:
        seed(load_environment(), lambda text: print(f"seed | {text}", flush=True))
    except ScriptError as exc:
        print(f"seed | {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
