"""Cost of a request in USD (pure). Prices are USD per million tokens (``PriceEntry``, editable in admin).

Anthropic bills cache reads and writes at their own rates; OpenAI-style upstreams report cached prompt tokens,
which we carry as cache reads. A model without a price has an unknown cost (None), never 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fnmatch import fnmatchcase

MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class Price:
    model_pattern: str
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cache_read_per_mtok: Decimal | None = None
    cache_write_per_mtok: Decimal | None = None
    provider_id: int | None = None
    priority: int = 100


# price_match's answers for the price list it last saw: each request asks twice (budget estimate, then cost), for the
# same few models, and matching walks every pattern with fnmatch. A new list (an admin edit, once per cache TTL)
# starts it afresh; the bound only guards against a caller inventing model names.
_MATCHED_MAX = 4096
_matched: dict[tuple[int | None, str], Price | None] = {}
_matched_for: list[tuple[Price, ...]] = [()]


def price_match(prices: tuple[Price, ...], *, provider_id: int | None, upstream_model: str) -> Price | None:
    """Provider-specific prices win over general ones; then by priority; the first pattern that matches."""
    if prices is not _matched_for[0]:
        _matched.clear()
        _matched_for[0] = prices
    key = (provider_id, upstream_model)
    try:
        return _matched[key]
    except KeyError:
        pass
    price = _price_find(prices, provider_id=provider_id, upstream_model=upstream_model)
    if len(_matched) < _MATCHED_MAX:
        _matched[key] = price
    return price


def _price_find(prices: tuple[Price, ...], *, provider_id: int | None, upstream_model: str) -> Price | None:
    candidates = [
        p
        for p in prices
        if (p.provider_id is None or p.provider_id == provider_id) and fnmatchcase(upstream_model, p.model_pattern)
    ]
    if not candidates:
        return None
    return min(candidates, key=lambda p: (p.provider_id is None, p.priority))


def cost_usd(
    price: Price | None,
    *,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> Decimal | None:
    if price is None:
        return None
    read_rate = price.cache_read_per_mtok if price.cache_read_per_mtok is not None else price.input_per_mtok
    write_rate = price.cache_write_per_mtok if price.cache_write_per_mtok is not None else price.input_per_mtok
    total = (
        Decimal(input_tokens) * price.input_per_mtok
        + Decimal(output_tokens) * price.output_per_mtok
        + Decimal(cache_read_tokens) * read_rate
        + Decimal(cache_write_tokens) * write_rate
    )
    return (total / MILLION).quantize(Decimal("0.00000001"))
