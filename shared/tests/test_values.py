from decimal import Decimal

import pytest
from pydantic import BaseModel, ValidationError

from shared.phone import normalize_kenyan_phone
from shared.schemas import Money, MoneyInput


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("0712345678", "254712345678"),
        ("0112345678", "254112345678"),
        ("+254712345678", "254712345678"),
        ("254712345678", "254712345678"),
        ("712345678", "254712345678"),
        ("112345678", "254112345678"),
        ("0712-345-678", "254712345678"),
        (" 0712 345 678 ", "254712345678"),
    ],
)
def test_kenyan_phone_numbers(raw, normalised):
    assert normalize_kenyan_phone(raw) == normalised


@pytest.mark.parametrize(
    "raw", ["", "0812345678", "07123456789", "071234567", "+255712345678", "phone", "2547123456"]
)
def test_other_numbers_are_refused(raw):
    with pytest.raises(ValueError):
        normalize_kenyan_phone(raw)


class Priced(BaseModel):
    price: MoneyInput


class Shown(BaseModel):
    price: Money


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (150000, "150000.00"),
        ("150000", "150000.00"),
        (19.99, "19.99"),
        ("0.1", "0.10"),
        (0, "0.00"),
        ("9999999999.99", "9999999999.99"),
    ],
)
def test_money_in(raw, value):
    assert Priced(price=raw).price == Decimal(value)


@pytest.mark.parametrize("raw", [-1, "-0.01", "1.001", 0.015, "abc", True, None, "NaN", "1e11"])
def test_bad_money_is_refused(raw):
    with pytest.raises(ValidationError):
        Priced(price=raw)


def test_money_out_is_a_string_with_two_decimals():
    assert Shown(price=Decimal("150000")).model_dump_json() == '{"price":"150000.00"}'
    assert Shown(price=Decimal("0.5")).model_dump(mode="json") == {"price": "0.50"}
