"""What each page needs from the API, gathered and shaped for its template. Rules stay in
the services: the console asks, shows, and sends what the admin chose."""

import asyncio
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from admin_console.exceptions import ApiError, SignInRequired
from admin_console.formatting import Formats, to_decimal
from admin_console.gateway_client import ShopApi

ORDER_STATUSES = ("pending", "paid", "processing", "shipped", "delivered", "cancelled", "failed")
PAYMENT_STATUSES = ("pending", "paid", "failed", "refund_pending", "refunded")
PROVIDERS = ("mpesa", "stripe")
PAYMENT_RECORD_STATUSES = (
    "pending",
    "processing",
    "completed",
    "failed",
    "cancelled",
    "partially_refunded",
    "refunded",
)
# What an admin may do to an order in each status: the order service's lifecycle table
# (order_service/lifecycle.py), as buttons. The service still decides: a change it refuses
# is shown with its message.
ORDER_ACTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "pending": (("cancelled", "Cancel the order"),),
    "paid": (("processing", "Mark processing"), ("cancelled", "Cancel the order")),
    "processing": (("shipped", "Mark shipped"), ("cancelled", "Cancel the order")),
    "shipped": (("delivered", "Mark delivered"),),
}
REFUNDABLE = ("completed", "partially_refunded")
PAGE_SIZE = 20


@dataclass
class Section:
    """A part of a page that may fail on its own (the rest of the page still shows)."""

    data: Any = None
    error: str | None = None


async def sections(*calls: Awaitable[dict[str, Any]]) -> list[Section]:
    results = await asyncio.gather(*calls, return_exceptions=True)
    out = []
    for result in results:
        if isinstance(result, SignInRequired | asyncio.CancelledError):
            raise result
        if isinstance(result, ApiError):
            out.append(Section(error=result.message))
        elif isinstance(result, BaseException):
            raise result
        else:
            out.append(Section(data=result))
    return out


def day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), zone)


def parse_day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def day_window(start: str | None, end: str | None, zone: ZoneInfo) -> dict[str, str]:
    """Dates picked in a form (both days included) as the API's [from, to) in the shop's
    time zone."""
    window = {}
    if first := parse_day(start):
        window["from"] = day_start(first, zone).isoformat()
    if last := parse_day(end):
        window["to"] = day_start(last + timedelta(days=1), zone).isoformat()
    return window


def page_number(value: str | None) -> int:
    return int(value) if value and value.isdigit() and 0 < int(value) <= 100_000 else 1


# --- Overview ---------------------------------------------------------------------------


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    day: str
    amount: str


CHART_WIDTH, CHART_HEIGHT, CHART_BOTTOM = 700, 220, 190


def revenue_chart(days: list[dict[str, Any]], fmt: Formats) -> list[Bar]:
    """The paid revenue per day as SVG bars (no script: drawn on the server)."""
    amounts = [to_decimal(day.get("revenue")) or Decimal(0) for day in days]
    top = max(amounts, default=Decimal(0)) or Decimal(1)
    slot = CHART_WIDTH / max(len(days), 1)
    bars = []
    for index, (day, amount) in enumerate(zip(days, amounts, strict=True)):
        height = float(amount / top) * (CHART_BOTTOM - 20)
        bars.append(
            Bar(
                x=round(index * slot + slot * 0.15, 1),
                y=round(CHART_BOTTOM - height, 1),
                width=round(slot * 0.7, 1),
                height=round(height, 1),
                day=fmt.day(day.get("date")),
                amount=fmt.money(amount),
            )
        )
    return bars


async def overview(api: ShopApi, *, zone: ZoneInfo, low_stock: int, fmt: Formats) -> dict[str, Any]:
    week_start = day_start(datetime.now(zone).date() - timedelta(days=6), zone)
    stats, payments, products, report = await sections(
        api.get("/api/orders/admin/stats", days=7, timezone=zone.key),
        api.get("/api/payments/admin/stats", **{"from": week_start.isoformat()}),
        api.get("/api/products", maxStock=low_stock, sort="stock_asc", limit=20),
        api.get("/api/payments/admin/reconciliation"),
    )
    context: dict[str, Any] = {
        "stats": stats,
        "payments": payments,
        "products": products,
        "report": report,
        "low_stock": low_stock,
    }
    if stats.data:
        days = stats.data["days"]
        today = days[-1]
        context["today"] = today
        context["week"] = {
            "orders": sum(day["orders"] for day in days),
            "paidOrders": sum(day["paidOrders"] for day in days),
            "revenue": sum((to_decimal(day["revenue"]) or Decimal(0) for day in days), Decimal(0)),
        }
        context["bars"] = revenue_chart(days, fmt)
        context["chart"] = {"width": CHART_WIDTH, "height": CHART_HEIGHT, "bottom": CHART_BOTTOM}
    return context


# --- Orders -----------------------------------------------------------------------------


async def order_list(api: ShopApi, query: dict[str, str], zone: ZoneInfo) -> dict[str, Any]:
    params: dict[str, Any] = {
        "status": query.get("status") if query.get("status") in ORDER_STATUSES else None,
        "paymentStatus": query.get("paymentStatus")
        if query.get("paymentStatus") in PAYMENT_STATUSES
        else None,
        "page": page_number(query.get("page")),
        "limit": PAGE_SIZE,
        **day_window(query.get("from"), query.get("to"), zone),
    }
    search = (query.get("q") or "").strip()
    note = None
    if "@" in search:
        customer = await customer_by_email(api, search)
        if customer is None:
            return {
                "orders": [],
                "total": 0,
                "pages": 0,
                "page": 1,
                "note": (f"No customer has the email {search}."),
            }
        params["userId"] = customer["id"]
        note = f"Orders of {customer['name']} ({customer['email']})"
    elif search:
        params["orderNumber"] = search
    body = await api.get("/api/orders/admin/orders", **params)
    return {
        "orders": body["orders"],
        "total": body["totalOrders"],
        "pages": body["totalPages"],
        "page": body["currentPage"],
        "note": note,
    }


async def customer_by_email(api: ShopApi, email: str) -> dict[str, Any] | None:
    wanted = email.strip().lower()
    body = await api.get("/api/auth/admin/users", search=wanted, limit=100)
    return next((user for user in body["users"] if user["email"] == wanted), None)


async def order_page(api: ShopApi, order_id: uuid.UUID) -> dict[str, Any]:
    order = (await api.get(f"/api/orders/admin/orders/{order_id}"))["order"]
    payments, customer = await sections(
        api.get("/api/payments/admin/payments", orderId=order["id"], limit=100),
        api.get(f"/api/auth/admin/users/{order['userId']}"),
    )
    return {
        "order": order,
        "payments": payments.data["payments"] if payments.data else [],
        "payments_error": payments.error,
        "customer": customer.data["user"] if customer.data else None,
        "customer_error": customer.error,
        "actions": ORDER_ACTIONS.get(order["status"], ()),
        "refundable": REFUNDABLE,
    }


def remaining(payment: dict[str, Any]) -> Decimal:
    paid = to_decimal(payment.get("amount")) or Decimal(0)
    refunded = to_decimal(payment.get("refundedAmount")) or Decimal(0)
    return paid - refunded


# --- Products ---------------------------------------------------------------------------

PRODUCT_FIELDS = ("name", "description", "price", "stock", "category", "sku", "imageUrl")


async def product_list(api: ShopApi, query: dict[str, str], low_stock: int) -> dict[str, Any]:
    params: dict[str, Any] = {
        "search": (query.get("search") or "").strip()[:200],
        "category": (query.get("category") or "").strip()[:100],
        "includeInactive": "true" if query.get("show") == "all" else None,
        "page": page_number(query.get("page")),
        "limit": PAGE_SIZE,
    }
    if query.get("lowStock"):
        params.update(maxStock=low_stock, sort="stock_asc")
    body = await api.get("/api/products", **params)
    return {
        "products": body["products"],
        "total": body["totalProducts"],
        "pages": body["totalPages"],
        "page": body["currentPage"],
    }


def product_body(form: dict[str, str], *, creating: bool) -> dict[str, Any]:
    """The form as the API's product body: empty optional fields are "none" (null), so an
    edit can clear them; numbers stay text, for the API to judge."""
    body: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "price": form.get("price", "").strip(),
    }
    for name in ("description", "category", "sku", "imageUrl"):
        value = form.get(name, "").strip()
        body[name] = value or None
    if creating:
        stock = form.get("stock", "").strip()
        body["stock"] = int(stock) if stock.isdigit() else (stock or 0)
        body = {key: value for key, value in body.items() if value is not None}
    return body


def is_web_image(url: str) -> bool:
    return url.startswith(("https://", "http://")) and len(url) <= 2048 and " " not in url


# --- Payments and reconciliation ---------------------------------------------------------


async def payment_list(api: ShopApi, query: dict[str, str], zone: ZoneInfo) -> dict[str, Any]:
    params: dict[str, Any] = {
        "provider": query.get("provider") if query.get("provider") in PROVIDERS else None,
        "status": query.get("status") if query.get("status") in PAYMENT_RECORD_STATUSES else None,
        "page": page_number(query.get("page")),
        "limit": PAGE_SIZE,
        **day_window(query.get("from"), query.get("to"), zone),
    }
    body = await api.get("/api/payments/admin/payments", **params)
    return {
        "payments": body["payments"],
        "total": body["totalPayments"],
        "pages": body["totalPages"],
        "page": body["currentPage"],
    }


def payment_references(payment: dict[str, Any]) -> list[tuple[str, str]]:
    """The provider's names for its references to this payment."""
    details = payment.get("metadata") or {}
    if payment["provider"] == "mpesa":
        rows = [
            ("M-Pesa receipt", payment.get("transactionId")),
            ("CheckoutRequestID", payment.get("externalReference")),
            ("MerchantRequestID", details.get("merchantRequestId")),
            ("Phone", payment.get("phoneNumber")),
        ]
    else:
        rows = [
            ("PaymentIntent", payment.get("externalReference")),
            ("Charge", payment.get("transactionId")),
        ]
    return [(name, str(value)) for name, value in rows if value]


async def reconciliation(api: ShopApi, query: dict[str, str], zone: ZoneInfo) -> dict[str, Any]:
    window = day_window(query.get("from"), query.get("to"), zone)
    report = await api.get("/api/payments/admin/reconciliation", **window)
    return {"report": report}


def page_links(page: int, pages: int) -> list[int]:
    """Page numbers to offer: the first, the last, and two either side of this one."""
    if pages <= 1:
        return []
    shown = {1, pages, *range(max(1, page - 2), min(pages, page + 2) + 1)}
    return sorted(shown)
