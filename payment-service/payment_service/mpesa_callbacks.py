"""Daraja's STK callback: where an M-Pesa callback is checked and what it may change.

The callback is not signed, so nothing in it is believed on its own: its URL must carry
MPESA_CALLBACK_SECRET (and, when MPESA_CALLBACK_ALLOWED_IPS is set, it must come from one
of those addresses) or it is refused with 403 before anything is read (`check_caller`).
A failure it reports settles the payment failed or cancelled; a success is believed only
once STK Query confirms it and the amount is the payment's (MPESA_VERIFY_CALLBACKS, on by
default). Every callback is kept, unknown ones too, with what was done with it; the same
callback twice changes nothing.
"""

import hmac
import ipaddress
import logging
import uuid
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from payment_service import metrics, repository
from payment_service.config import PaymentSettings
from payment_service.daraja_client import DarajaError, StkQueryState
from payment_service.exceptions import CallbackForbidden
from payment_service.lifecycle import (
    SETTLED_PAID,
    By,
    EventOutcome,
    Outcome,
    PaymentStatus,
    Provider,
)
from payment_service.models import Payment, ProviderEvent
from payment_service.settlement import settle
from payment_service.state import PaymentState
from shared.errors import BadRequest

logger = logging.getLogger(__name__)

# Daraja's ResultCodes for a prompt the customer did not answer: the payment is cancelled.
CANCELLED_RESULT_CODES = frozenset({"1032", "1037"})


def failure_status(result_code: str) -> PaymentStatus:
    """The status a failed STK push ends in, by Daraja's ResultCode."""
    if result_code in CANCELLED_RESULT_CODES:
        return PaymentStatus.CANCELLED
    return PaymentStatus.FAILED


def check_caller(settings: PaymentSettings, address: str | None, secret: str) -> None:
    """403, changing nothing, unless the callback URL carries MPESA_CALLBACK_SECRET
    (compared in constant time) and, when MPESA_CALLBACK_ALLOWED_IPS is set, the callback
    comes from one of those addresses."""
    if settings.mpesa_callback_allowed_ips and not _allowed(
        address, settings.mpesa_callback_allowed_ips
    ):
        metrics.webhook_rejected("mpesa", "bad_source")
        raise CallbackForbidden()
    expected = settings.mpesa_callback_secret
    if expected is None or not hmac.compare_digest(
        secret.encode(), expected.get_secret_value().encode()
    ):
        metrics.webhook_rejected("mpesa", "bad_secret")
        raise CallbackForbidden()


def _allowed(address: str | None, allowed: list[str]) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for entry in allowed:
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


class Verdict(StrEnum):
    """What a callback calls for, before Daraja is asked anything."""

    UNKNOWN_PAYMENT = "unknown payment"
    SETTLE_FAILURE = "settle failure"
    CONFIRM_SUCCESS = "confirm success"  # ask STK Query, then settle completed
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    receipt: str | None = None  # MpesaReceiptNumber, for CONFIRM_SUCCESS
    reason: str | None = None  # why, for REJECTED


@dataclass(frozen=True)
class Callback:
    """The parts of Body.stkCallback this service reads."""

    checkout_id: str
    result_code: str
    result_desc: str
    items: dict[str, Any]  # CallbackMetadata.Item, by Name

    @classmethod
    def of(cls, body: Any) -> "Callback":
        stk = body.get("Body", {}).get("stkCallback") if isinstance(body, dict) else None
        if not isinstance(stk, dict):
            raise BadRequest("Invalid callback: Body.stkCallback is missing")
        return cls(
            checkout_id=str(stk.get("CheckoutRequestID") or "")[:255],
            result_code=str(stk.get("ResultCode", "")).strip(),
            result_desc=str(stk.get("ResultDesc") or "")[:1000],
            items=_callback_items(stk),
        )

    def success_details(self) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if self.items.get("MpesaReceiptNumber"):
            details["mpesaReceiptNumber"] = str(self.items["MpesaReceiptNumber"])
        if self.items.get("TransactionDate"):
            details["transactionDate"] = str(self.items["TransactionDate"])
        return details


async def handle_mpesa_callback(state: PaymentState, body: Any, source_ip: str | None) -> Outcome:
    """A callback whose caller `check_caller` accepted. Returns what was done (also stored
    with the callback)."""
    callback = Callback.of(body)
    event_id = uuid.uuid4()
    confirming = Outcome(EventOutcome.CONFIRMING)
    # The usual callback, a success Daraja must confirm, changes nothing yet: judged on
    # the payment as it is (no lock: the settlement below takes it and sees a duplicate)
    # and recorded in one statement. Anything else is judged again under the lock.
    payment = await repository.read_payment_by_reference(
        state.hot_path, Provider.MPESA, callback.checkout_id
    )
    judgement = judge(payment, callback)
    if state.settings.mpesa_verify_callbacks and judgement.verdict is Verdict.CONFIRM_SUCCESS:
        assert payment is not None
        event = _mpesa_event(event_id, callback, payment, body, confirming, source_ip)
        await repository.insert_event(state.hot_path, event)
    else:
        async with state.sessionmaker() as session, session.begin():
            payment = await repository.payment_by_reference(
                session, Provider.MPESA, callback.checkout_id, lock=True
            )
            judgement = judge(payment, callback)
            outcome = await _act_without_daraja(
                session, state.settings, payment, callback, judgement
            )
            stored = confirming if outcome is None else outcome
            session.add(_mpesa_event(event_id, callback, payment, body, stored, source_ip))
            if outcome is not None:
                return outcome
    assert payment is not None and judgement.verdict is Verdict.CONFIRM_SUCCESS
    payment_id = payment.id

    # Confirm with Daraja before believing it (outside any transaction).
    query = None
    if state.daraja is not None:
        try:
            query = await state.daraja.stk_query(callback.checkout_id)
        except DarajaError as exc:
            logger.warning(
                "stk query failed; the status poller will settle", extra={"reason": str(exc)}
            )
    async with state.sessionmaker() as session, session.begin():
        payment = await repository.lock_payment(session, payment_id)
        assert payment is not None  # payments are never deleted
        if query is None or query.state is StkQueryState.PENDING:
            outcome = Outcome(EventOutcome.UNCONFIRMED)
        elif query.state is StkQueryState.COMPLETED:
            changed = await settle(
                session,
                payment,
                PaymentStatus.COMPLETED,
                transaction_id=judgement.receipt,
                details=callback.success_details(),
                by=By.CONFIRMATION,
            )
            outcome = Outcome(EventOutcome.COMPLETED if changed else EventOutcome.DUPLICATE)
        else:
            # Daraja's own word wins over the callback's.
            logger.error(
                "a success callback that STK Query denies",
                extra={"paymentId": str(payment.id), "resultCode": query.result_code},
            )
            await settle(
                session,
                payment,
                failure_status(query.result_code or ""),
                error_message=query.result_desc or f"M-Pesa result {query.result_code}",
                details={"resultCode": query.result_code},
            )
            outcome = Outcome(EventOutcome.REJECTED, f"STK Query says {query.result_code}")
        await repository.set_event_outcome(session, event_id, str(outcome))
    return outcome


def judge(payment: Payment | None, callback: Callback) -> Judgement:
    """What a callback calls for, before asking Daraja anything."""
    if payment is None:
        return Judgement(Verdict.UNKNOWN_PAYMENT)
    if callback.result_code != "0":
        return Judgement(Verdict.SETTLE_FAILURE)
    reported = callback.items.get("Amount")
    amount = _amount_of(reported)
    if amount is None or amount != payment.amount:
        logger.error(
            "m-pesa callback amount does not match the payment",
            extra={"paymentId": str(payment.id), "amount": str(reported)},
        )
        return Judgement(Verdict.REJECTED, reason=f"amount {reported} is not {payment.amount}")
    receipt = callback.items.get("MpesaReceiptNumber")
    if not receipt or not isinstance(receipt, str):
        return Judgement(Verdict.REJECTED, reason="no MpesaReceiptNumber")
    if payment.status in SETTLED_PAID:
        return Judgement(Verdict.DUPLICATE)
    return Judgement(Verdict.CONFIRM_SUCCESS, receipt=receipt[:255])


async def _act_without_daraja(
    session: AsyncSession,
    settings: PaymentSettings,
    payment: Payment | None,
    callback: Callback,
    judgement: Judgement,
) -> Outcome | None:
    """What the callback changes on its own word (in the callback's transaction); None
    when Daraja must confirm it first."""
    verdict = judgement.verdict
    if verdict is Verdict.UNKNOWN_PAYMENT:
        logger.warning(
            "m-pesa callback for an unknown CheckoutRequestID",
            extra={"resultCode": callback.result_code, "amount": str(callback.items.get("Amount"))},
        )
        return Outcome(EventOutcome.UNKNOWN_PAYMENT)
    if verdict is Verdict.DUPLICATE:
        return Outcome(EventOutcome.DUPLICATE)
    if verdict is Verdict.REJECTED:
        return Outcome(EventOutcome.REJECTED, judgement.reason)
    assert payment is not None
    if verdict is Verdict.SETTLE_FAILURE:
        changed = await settle(
            session,
            payment,
            failure_status(callback.result_code),
            error_message=callback.result_desc or f"M-Pesa result {callback.result_code}",
            details={"resultCode": callback.result_code},
        )
        return Outcome(EventOutcome(payment.status)) if changed else Outcome(EventOutcome.DUPLICATE)
    if not settings.mpesa_verify_callbacks:
        changed = await settle(
            session,
            payment,
            PaymentStatus.COMPLETED,
            transaction_id=judgement.receipt,
            details=callback.success_details(),
        )
        return Outcome(EventOutcome.COMPLETED_UNVERIFIED if changed else EventOutcome.DUPLICATE)
    return None


def _callback_items(stk: dict[str, Any]) -> dict[str, Any]:
    metadata = stk.get("CallbackMetadata")
    items = metadata.get("Item") if isinstance(metadata, dict) else None
    if not isinstance(items, list):
        return {}
    return {
        item["Name"]: item.get("Value")
        for item in items
        if isinstance(item, dict) and isinstance(item.get("Name"), str)
    }


def _amount_of(value: Any) -> Decimal | None:
    try:
        amount = Decimal(str(value))
    except (ArithmeticError, ValueError, TypeError):
        return None
    return amount if amount.is_finite() else None


def _mpesa_event(
    event_id: uuid.UUID,
    callback: Callback,
    payment: Payment | None,
    body: Any,
    outcome: Outcome,
    source_ip: str | None,
) -> ProviderEvent:
    return ProviderEvent(
        id=event_id,
        provider=Provider.MPESA,
        event_type="stk_callback",
        reference=callback.checkout_id or None,
        payment_id=payment.id if payment else None,
        payload=body,
        outcome=str(outcome)[:255],
        source_ip=source_ip,
    )
