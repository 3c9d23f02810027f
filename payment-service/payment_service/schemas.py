import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StrictBool, StringConstraints, WithJsonSchema

from shared.phone import KENYAN_PHONE_PATTERN, normalize_kenyan_phone
from shared.schemas import CamelModel, Money, MoneyInput, RequestModel

Currency = Annotated[
    str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z]{3}$")
]
KenyanPhone = Annotated[
    str,
    StringConstraints(max_length=32),
    AfterValidator(normalize_kenyan_phone),
    WithJsonSchema({"type": "string", "maxLength": 32, "pattern": KENYAN_PHONE_PATTERN}),
]


class MpesaPaymentRequest(RequestModel):
    order_id: uuid.UUID
    phone_number: KenyanPhone
    # Optional: when sent it must equal the order's total.
    amount: MoneyInput | None = None
    currency: Currency | None = None


class StripePaymentRequest(RequestModel):
    order_id: uuid.UUID
    amount: MoneyInput | None = None
    currency: Currency | None = None


class RefundRequest(RequestModel):
    # Unset: everything not yet refunded.
    amount: MoneyInput | None = None
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None
    # M-Pesa refunds are made in the M-Pesa portal and recorded here with their reference.
    manual: StrictBool = False  # JSON true or false only
    reference: Annotated[str, StringConstraints(strip_whitespace=True, max_length=255)] | None = (
        None
    )


class PaymentOut(CamelModel):
    id: uuid.UUID
    order_id: uuid.UUID
    user_id: uuid.UUID
    provider: str
    amount: Money
    currency: str
    status: str
    transaction_id: str | None
    external_reference: str | None
    phone_number: str | None
    metadata: dict[str, Any] = Field(validation_alias="details")
    error_message: str | None
    refunded_amount: Money
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class RefundOut(CamelModel):
    id: uuid.UUID
    payment_id: uuid.UUID
    amount: Money
    status: str
    reason: str | None
    provider_refund_id: str | None
    manual: bool
    reference: str | None
    error_message: str | None
    created_at: datetime


class PaymentEnvelope(CamelModel):
    payment: PaymentOut


class PaymentList(CamelModel):
    payments: list[PaymentOut]


class PaymentDetail(CamelModel):
    """A payment as an admin sees it: with its refunds, newest first."""

    payment: PaymentOut
    refunds: list[RefundOut]


class PaymentFigures(CamelModel):
    provider: str
    status: str
    currency: str
    count: int
    amount: Money
    refunded_amount: Money


class PaymentStats(CamelModel):
    """Payments created in [from, to) by provider, status and currency."""

    window_from: datetime | None = Field(alias="from")
    window_to: datetime | None = Field(alias="to")
    groups: list[PaymentFigures]


class PaymentPage(CamelModel):
    payments: list[PaymentOut]
    total_pages: int
    current_page: int
    total_payments: int


class MpesaInitiated(CamelModel):
    message: str
    payment: PaymentOut
    checkout_request_id: str


class StripeInitiated(CamelModel):
    message: str
    payment: PaymentOut
    client_secret: str


class RefundResult(CamelModel):
    message: str
    refund: RefundOut
    payment: PaymentOut


class CallbackAccepted(CamelModel):
    model_config = CamelModel.model_config | {"alias_generator": None}

    ResultCode: int = 0
    ResultDesc: str = "Accepted"


class StripeEventReceived(CamelModel):
    received: bool = True


# --- The money reconciliation report (docs/reconciliation.md) ---------------------------


class FigureOut(CamelModel):
    count: int
    amount: Money


class CurrencyTotals(CamelModel):
    currency: str
    payments_completed: FigureOut  # money received (refunded payments included)
    refunds: FigureOut  # money given back
    payments_kept: FigureOut  # received and not refunded in full
    orders_paid: FigureOut  # paid through this service (M-Pesa, Stripe)
    # Cash-on-delivery orders an admin marked paid: no payment here to match.
    orders_paid_in_cash: FigureOut
    # payments kept minus orders paid: zero when every paid order keeps one payment.
    difference: Money


class DiscrepancyOut(CamelModel):
    kind: str
    description: str
    order_id: uuid.UUID | None
    payment_ids: list[uuid.UUID]
    provider: str | None
    amount: Money | None  # what the payment (or payments) took
    order_amount: Money | None
    currency: str | None
    since: datetime
    age_seconds: int
    action: str
    # What the reconciliation worker does about it; null: a person must act.
    repair: str | None


class ReconciliationReport(CamelModel):
    window_from: datetime = Field(alias="from")
    window_to: datetime = Field(alias="to")
    generated_at: datetime
    ok: bool
    providers: dict[str, str]
    totals: list[CurrencyTotals]
    counts: dict[str, int]
    discrepancies: list[DiscrepancyOut]
