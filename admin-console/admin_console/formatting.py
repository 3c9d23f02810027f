"""Money and time as the shop shows them: amounts in the store's currency with the shop
locale's separators (Babel, from CLDR), times in the shop's time zone."""

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal


class Formats:
    def __init__(self, *, locale: str, zone: ZoneInfo, currency: str) -> None:
        self.locale = locale
        self.zone = zone
        self.currency = currency

    def money(self, amount: object, currency: str | None = None) -> str:
        """ "150000.00" -> "Ksh 150,000.00" (en_KE); an amount the API did not send: "-"."""
        value = to_decimal(amount)
        if value is None:
            return "-"
        return format_currency(value, currency or self.currency, locale=self.locale)

    def number(self, value: object) -> str:
        number = to_decimal(value)
        return "-" if number is None else format_decimal(number, locale=self.locale)

    def moment(self, value: object) -> str:
        """An ISO 8601 time from the API, in the shop's time zone: "5 Dec 2026, 10:15"."""
        moment = to_datetime(value)
        if moment is None:
            return "-"
        return format_datetime(moment, "d MMM y, HH:mm", tzinfo=self.zone, locale=self.locale)

    def day(self, value: object) -> str:
        if isinstance(value, str):
            text = value
            try:
                value = date.fromisoformat(text)
            except ValueError:
                return text
        if not isinstance(value, date):
            return "-"
        return format_date(value, "EEE d MMM", locale=self.locale)

    def local_date(self, value: object) -> str:
        """The calendar day (YYYY-MM-DD) of an API time in the shop's time zone."""
        moment = to_datetime(value)
        return moment.astimezone(self.zone).date().isoformat() if moment else ""


def to_decimal(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def to_datetime(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


# Words whose written form is not their API form capitalised.
NAMES = {"mpesa": "M-Pesa"}


def label(value: object) -> str:
    """An API word as people read it: "refund_pending" -> "Refund pending"."""
    if str(value) in NAMES:
        return NAMES[str(value)]
    text = str(value or "").replace("_", " ").strip()
    return text[:1].upper() + text[1:]
