import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints

from shared.phone import normalize_kenyan_phone
from shared.schemas import CamelModel, Money, MoneyInput, RequestModel

Currency = Annotated[
    str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z]{3}$")
]
KenyanPhone = Annotated[
    str, StringConstraints(max_length=32), AfterValidator(normalize_kenyan_phone)
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
    manual: bool = False
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
