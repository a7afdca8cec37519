from decimal import Decimal

import pytest

from checkout_demo.money import CurrencyMismatch, Money


def test_amounts_are_decimals_rounded_to_cents():
    assert Money(Decimal("3.205"), "EUR").amount == Decimal("3.20")  # half to even
    assert (Money(Decimal("12.50"), "EUR") * 3 + Money.zero("EUR")).amount == Decimal("37.50")


def test_currencies_never_mix():
    with pytest.raises(CurrencyMismatch):
        Money(Decimal(1), "EUR") + Money(Decimal(1), "USD")
    with pytest.raises(TypeError):
        Money(1.5, "EUR")
    with pytest.raises(ValueError, match="unsupported currency"):
        Money(Decimal(1), "XYZ")
