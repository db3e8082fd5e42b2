"""Money as the pages print it."""

from __future__ import annotations

from decimal import Decimal

from gateway.dashboard.format import usd_exact, usd_money


def test_money_formats() -> None:
    assert [usd_exact(v) for v in (None, Decimal("0.00012345"), Decimal("0.0000125"), Decimal(2))] == [
        "—", "$0.000123", "$0.000013", "$2.000000"]  # fmt: skip
    assert [usd_money(v) for v in (Decimal(0), Decimal("0.5"), Decimal("0.0042"), Decimal("1234.567"))] == [
        "$0.00", "$0.50", "$0.0042", "$1,234.57"]  # fmt: skip


def test_small_totals_keep_four_significant_digits() -> None:
    assert [usd_money(Decimal(v)) for v in ("0.871936", "0.000123456", "0.99999")] == ["$0.8719", "$0.0001235", "$1.00"]
