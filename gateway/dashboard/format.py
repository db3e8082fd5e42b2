"""Numbers as the pages print them (pure: no Django). Templates cannot pass arguments to a method, so the
dataclasses expose these through properties."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

NO_PRICE = "—"  # an unknown cost (no price configured) is shown as a dash, never as $0


def usd_exact(value: Decimal | None) -> str:
    """One request's cost with six decimals: ``$0.000123`` (half-up), or a dash when unknown."""
    if value is None:
        return NO_PRICE
    return f"${Decimal(value).quantize(Decimal('0.000001'), rounding=ROUND_HALF_UP):,.6f}"


def usd_money(value: Decimal | None) -> str:
    """A total: cents from a dollar up (``$1,234.57``), else four significant digits (``$0.8719``, ``$0.0001235``)."""
    if value is None:
        return NO_PRICE
    value = Decimal(value)
    if abs(value) >= 1:
        return f"${value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,.2f}"
    if value == 0:
        return "$0.00"
    places = max(2, 3 - value.adjusted())  # adjusted(): the exponent of the first significant digit
    text = f"{value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):.{places}f}"
    whole, _, fraction = text.partition(".")
    return f"${whole}.{fraction.rstrip('0').ljust(2, '0')}"
