"""The admin console in a real browser, against the real stack through the gateway: an
admin signs in, creates a product that a customer orders (through the API) and pays with
the M-Pesa simulator; the console shows the order paid; the admin ships it, refunds half,
and the reconciliation page is all clear. Also: a customer cannot sign in, a form without
its CSRF token is refused, an ended session returns to sign-in with the page remembered,
and the pages work 375 px wide. Every page visited is checked with axe-core (no serious or
critical violation) and saved as a screenshot."""

import asyncio
import time
import uuid
from decimal import Decimal

import httpx
import jwt
import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page, expect

from scripts.stack import keys_directory
from shared.keys import load_private_key, thumbprint
from tests.conftest import ADMIN, SUCCESS_PHONE, Shop

pytestmark = pytest.mark.e2e

PHONE_WIDTH = 375
axe = Axe()


async def accessible(page: Page, name: str, screenshot) -> None:
    """No serious or critical axe-core violation on the page as it is; a screenshot of it."""
    await screenshot(page, name)
    results = await axe.run(page)
    serious = [
        f"{violation['id']} ({violation['impact']}): {violation['help']} "
        f"{[node['target'] for node in violation['nodes']][:3]}"
        for violation in results.response["violations"]
        if violation["impact"] in ("serious", "critical")
    ]
    assert not serious, f"{name}: {serious}"


async def sign_in(page: Page, console: str, email: str, password: str) -> None:
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def console(stack) -> str:
    return f"{stack.gateway}/admin"


@pytest.fixture
async def admin_page(page: Page, console: str) -> Page:
    await page.goto(f"{console}/login")
    await sign_in(page, console, ADMIN["email"], ADMIN["password"])
    await expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    return page


async def test_sign_in_sell_ship_refund_and_reconcile(page: Page, console, stack, screenshot):
    # Signing in from a page of the console lands on that page.
    await page.goto(f"{console}/products")
    await expect(page).to_have_url(f"{console}/login?next=/admin/products")
    await accessible(page, "sign-in", screenshot)
    await sign_in(page, console, ADMIN["email"], ADMIN["password"])
    await expect(page).to_have_url(f"{console}/products")
    await expect(page.get_by_role("heading", name="Products", level=1)).to_be_visible()
    await accessible(page, "products", screenshot)

    # A product, with its errors next to their fields first.
    await page.get_by_role("link", name="New product").click()
    await expect(page.get_by_role("heading", name="New product")).to_be_visible()
    await page.get_by_label("Name", exact=True).fill("Console kettle")
    await page.get_by_label("Price (KES)").fill("12.345")
    await page.get_by_role("button", name="Create the product").click()
    price_error = page.locator("#price-error")
    await expect(price_error).to_contain_text("2 decimal places")
    await expect(page.get_by_label("Price (KES)")).to_have_attribute("aria-invalid", "true")
    await accessible(page, "product-errors", screenshot)
    sku = f"KET-{uuid.uuid4().hex[:8]}"
    await page.get_by_label("Price (KES)").fill("2500")
    await page.get_by_label("Stock").fill("10")
    await page.get_by_label("Category").fill("Kitchen")
    await page.get_by_label("SKU").fill(sku)
    await page.get_by_label("Image URL").fill("https://images.example.com/kettle.png")
    await expect(page.locator("#image-preview img")).to_have_attribute(
        "src", "https://images.example.com/kettle.png"
    )
    await page.get_by_role("button", name="Create the product").click()
    await expect(page.get_by_text("The product is created.")).to_be_visible()
    product_id = page.url.split("/products/")[1].split("?")[0]
    await page.get_by_label("Add (or take, with a minus) this many").fill("5")
    await page.get_by_role("button", name="Change the stock").click()
    await expect(page.locator("#stock-now")).to_have_text("15 in stock")
    await accessible(page, "product", screenshot)

    # A customer orders it through the API and pays with the M-Pesa simulator.
    def customer_buys() -> tuple[dict, str]:
        with httpx.Client(base_url=stack.gateway, timeout=30) as client:
            shop = Shop(client)
            email = client.get("/api/auth/profile", headers=shop.customer).json()["user"]["email"]
            created = client.post(
                "/api/orders",
                json={
                    "items": [{"productId": product_id, "quantity": 2}],
                    "shippingAddress": {
                        "street": "Kenyatta Avenue 5",
                        "city": "Nairobi",
                        "country": "Kenya",
                        "postalCode": "00100",
                    },
                },
                headers=shop.customer,
            )
            assert created.status_code == 201, created.text
            order = created.json()["order"]
            payment = shop.pay_mpesa(order["id"], SUCCESS_PHONE)["payment"]
            shop.payment_settles(payment["id"])
            return shop.order_reaches(order["id"], "status", "paid"), email

    order, email = await asyncio.to_thread(customer_buys)
    assert order["totalAmount"] == "5000.00"

    # The console finds it by the customer's email, paid.
    await page.get_by_role("link", name="Orders").click()
    await expect(page.get_by_role("heading", name="Orders", level=1)).to_be_visible()
    await page.get_by_label("Order number or customer email").fill(email.upper())
    await page.get_by_role("button", name="Filter").click()
    await expect(page.get_by_text(f"({email})")).to_be_visible()
    await accessible(page, "orders", screenshot)
    await page.get_by_role("link", name=order["orderNumber"]).click()
    await expect(page.get_by_role("heading", name=f"Order {order['orderNumber']}")).to_be_visible()
    status_line = page.locator(".status-line")
    await expect(status_line).to_contain_text("Paid")
    await expect(page.locator("#order-total")).to_have_text("Ksh5,000.00")
    await expect(page.get_by_text("Kenyatta Avenue 5")).to_be_visible()
    await expect(page.get_by_text("M-Pesa receipt")).to_be_visible()
    # Only what the lifecycle allows a paid order.
    buttons = page.locator(".actions button")
    await expect(buttons).to_have_text(["Mark processing", "Cancel the order"])
    await accessible(page, "order-paid", screenshot)

    # Staff ship it.
    await page.get_by_role("button", name="Mark processing").click()
    await expect(page.get_by_text("The order's status is changed.")).to_be_visible()
    await page.get_by_role("button", name="Mark shipped").click()
    await expect(status_line).to_contain_text("Shipped")
    await expect(buttons).to_have_text(["Mark delivered"])
    timeline = page.locator(".timeline li")
    await expect(timeline).to_have_count(4)  # placed, paid, processing, shipped

    # Refund half: the M-Pesa refund is made in the portal and recorded with its reference.
    await page.get_by_text("Refund this payment").click()
    await page.get_by_label("Amount", exact=False).fill("2500")
    await page.get_by_role("button", name="Refund").click()
    await expect(page.get_by_text("Say why the money goes back.")).to_be_visible()
    await page.get_by_label("Reason").fill("One kettle arrived dented")
    await page.get_by_label("M-Pesa reference").fill("QKX1REFUND")
    await page.get_by_role("button", name="Refund").click()
    await expect(page.get_by_text("The refund is recorded.")).to_be_visible()
    await expect(page.locator(".payment .badge")).to_have_text("Partially refunded")
    await accessible(page, "order-shipped-refunded", screenshot)

    # The payment's page: the provider's references and the refund.
    await page.locator(".payment h3 a").click()
    await expect(page.get_by_role("heading", name="Refunds")).to_be_visible()
    await expect(page.get_by_role("cell", name="One kettle arrived dented")).to_be_visible()
    await expect(page.get_by_text("QKX1REFUND")).to_be_visible()
    await accessible(page, "payment", screenshot)

    # The money adds up: the reconciliation page is clean.
    await page.get_by_role("link", name="Reconciliation").click()
    await expect(page.get_by_role("heading", name="Reconciliation", level=1)).to_be_visible()
    await expect(page.locator("#recon-status")).to_have_text("All clear: no discrepancy.")
    await accessible(page, "reconciliation", screenshot)

    # The overview counts today's paid order.
    await page.get_by_role("link", name="Overview").click()
    await expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    await expect(page.get_by_role("img", name="Paid revenue per day")).to_be_visible()
    today = page.locator(".figures div").nth(1).locator("dd")
    assert Decimal((await today.text_content()).replace("Ksh", "").replace(",", "")) >= 5000
    await accessible(page, "overview", screenshot)

    await page.get_by_role("link", name="Users").click()
    await expect(page.get_by_role("heading", name="Users", level=1)).to_be_visible()
    await page.get_by_label("Name or email").fill(email)
    await page.get_by_role("button", name="Find").click()
    await expect(page.get_by_role("cell", name=email, exact=True)).to_be_visible()
    await accessible(page, "users", screenshot)
    # The last admin is protected with the API's message.
    await page.get_by_label("Name or email").fill(ADMIN["email"])
    await page.get_by_role("button", name="Find").click()
    await page.get_by_role("button", name=f"Deactivate: {ADMIN['email']}").click()
    await expect(page.get_by_role("alert")).to_contain_text("admin")

    await page.get_by_role("link", name="Payments").click()
    await expect(page.get_by_role("heading", name="Payments", level=1)).to_be_visible()
    await page.get_by_label("Provider").select_option("mpesa")
    await page.get_by_label("Status").select_option("partially_refunded")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("#results")).to_contain_text("Partially refunded")
    await accessible(page, "payments", screenshot)


async def test_a_customer_cannot_sign_in(page: Page, console, stack, screenshot):
    email = f"shopper-{uuid.uuid4().hex[:8]}@example.com"
    async with httpx.AsyncClient(base_url=stack.gateway, timeout=30) as client:
        registered = await client.post(
            "/api/auth/register",
            json={"name": "Shopper", "email": email, "password": "password123"},
        )
    assert registered.status_code == 201
    await page.goto(f"{console}/")
    await sign_in(page, console, email, "password123")
    await expect(page.get_by_role("alert")).to_have_text(
        "This is a customer account. Only the shop's admins can sign in to the console."
    )
    assert "admin_session" not in {cookie["name"] for cookie in await page.context.cookies()}
    await page.goto(f"{console}/orders")
    await expect(page).to_have_url(f"{console}/login?next=/admin/orders")
    # A wrong password gets the API's answer.
    await sign_in(page, console, ADMIN["email"], "not-the-password")
    await expect(page.get_by_role("alert")).to_have_text("Invalid credentials")
    await accessible(page, "customer-refused", screenshot)


async def test_a_form_without_its_csrf_token_is_refused(admin_page: Page, console, screenshot):
    page = admin_page
    await page.goto(f"{console}/products/new")
    await page.get_by_label("Name", exact=True).fill("Forged product")
    await page.get_by_label("Price (KES)").fill("10")
    # The page's form, its hidden token taken out (as a form made on another site has none).
    await page.locator("form.product input[name=csrf_token]").evaluate("input => input.remove()")
    await page.get_by_role("button", name="Create the product").click()
    await expect(page.get_by_role("heading", name="Form refused")).to_be_visible()
    await accessible(page, "csrf-refused", screenshot)
    # A token of another session is no better.
    response = await page.request.post(
        f"{console}/products/new",
        form={"name": "Forged", "price": "10", "csrf_token": "not-this-sessions-token"},
        max_redirects=0,
    )
    assert response.status == 403
    listed = await page.request.get(f"{console}/products?search=Forged")
    assert "0 products" in await listed.text()


async def test_an_ended_session_returns_to_sign_in_and_then_to_the_page(
    page: Page, console, stack, screenshot
):
    async with httpx.AsyncClient(base_url=stack.gateway, timeout=30) as client:
        admin = (await client.post("/api/auth/login", json=ADMIN)).json()["user"]
    now = int(time.time())
    # A token of the admin's that has run out (as every token does, after JWT_EXPIRES_IN).
    signing_key = load_private_key((keys_directory(stack.env) / "jwt-private.pem").read_text())
    expired = jwt.encode(
        {
            "id": admin["id"],
            "email": admin["email"],
            "role": admin["role"],
            "iat": now - 3600,
            "exp": now - 60,
        },
        signing_key,
        algorithm="EdDSA",
        headers={"kid": thumbprint(signing_key.public_key())},
    )
    # Where the console keeps its session: the cookie of path /admin on this host.
    await page.context.add_cookies(
        [{"name": "admin_session", "value": expired, "domain": "127.0.0.1", "path": "/admin"}]
    )
    await page.goto(f"{console}/payments?provider=mpesa")
    await expect(page).to_have_url(
        f"{console}/login?next=/admin/payments%3Fprovider%3Dmpesa&reason=expired"
    )
    await expect(page.get_by_role("status")).to_have_text(
        "Your session has ended. Sign in again to carry on."
    )
    await sign_in(page, console, ADMIN["email"], ADMIN["password"])
    await expect(page).to_have_url(f"{console}/payments?provider=mpesa")
    await expect(page.get_by_label("Provider")).to_have_value("mpesa")
    # Signing out ends the session: the pages need signing in again.
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("status")).to_have_text("You are signed out.")
    await page.goto(f"{console}/")
    await expect(page).to_have_url(f"{console}/login")


async def test_the_pages_work_on_a_phone(browser, console, stack, screenshot):
    context = await browser.new_context(
        viewport={"width": PHONE_WIDTH, "height": 800}, is_mobile=True, has_touch=True
    )
    page = await context.new_page()
    try:
        await page.goto(f"{console}/login")
        await sign_in(page, console, ADMIN["email"], ADMIN["password"])

        def an_order() -> dict:
            with httpx.Client(base_url=stack.gateway, timeout=30) as client:
                return Shop(client).order()

        order = await asyncio.to_thread(an_order)
        paths = ["/", "/orders", "/products", "/products/new", "/payments", "/reconciliation"]
        paths += ["/users", f"/orders/{order['id']}", f"/products/{order['items'][0]['productId']}"]
        for path in paths:
            await page.goto(f"{console}{path}")
            await expect(page.locator("h1")).to_be_visible()
            # Nothing wider than the phone: no sideways scrolling of the page itself.
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE_WIDTH, (path, width)
            nav = page.get_by_role("navigation", name="Sections")
            await expect(nav.get_by_role("link", name="Orders")).to_be_visible()
            name = "phone" + (path.replace("/", "-").rstrip("-") or "-overview")
            await accessible(page, name, screenshot)
    finally:
        await context.close()
