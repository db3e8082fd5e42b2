"""Prices and cost arithmetic (gateway/pricing.py, pure) and the seeded price list (migration 0003)."""

from __future__ import annotations

import importlib
from decimal import Decimal

import pytest

from gateway.metering_config import prices_load
from gateway.models import PriceEntry
from gateway.pricing import Price, cost_usd, price_match

seed_migration = importlib.import_module("gateway.migrations.0003_seed_prices")

SONNET = Price("claude-sonnet-*", Decimal(3), Decimal(15), Decimal("0.3"), Decimal("3.75"))
NO_CACHE_RATES = Price("plain-*", Decimal(2), Decimal(8))
M = 1_000_000


# --- matching ---------------------------------------------------------------------------------------------------------


def test_no_matching_price_is_none_and_cost_unknown_not_zero() -> None:
    assert price_match((SONNET,), provider_id=None, upstream_model="mystery-model") is None
    assert price_match((), provider_id=7, upstream_model="claude-sonnet-4-5") is None
    assert cost_usd(None, input_tokens=1000, output_tokens=1000) is None
    assert cost_usd(None, input_tokens=0, output_tokens=0) is None  # unknown stays unknown even for 0 tokens


def test_answers_are_remembered_for_the_same_price_list_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway import pricing

    listed = (SONNET, NO_CACHE_RATES)
    assert price_match(listed, provider_id=None, upstream_model="plain-1") is NO_CACHE_RATES
    monkeypatch.setattr(pricing, "fnmatchcase", lambda name, pattern: pytest.fail("matched again"))
    assert price_match(listed, provider_id=None, upstream_model="plain-1") is NO_CACHE_RATES  # remembered
    monkeypatch.undo()
    edited = (Price("plain-*", Decimal(1), Decimal(1)),)  # an admin edit: a new list, answered afresh
    assert price_match(edited, provider_id=None, upstream_model="plain-1") is edited[0]
    assert price_match(edited, provider_id=5, upstream_model="plain-1") is edited[0]
    assert price_match(edited, provider_id=None, upstream_model="gone") is None


def test_remembered_answers_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway import pricing

    monkeypatch.setattr(pricing, "_MATCHED_MAX", 3)
    listed = (SONNET,)
    for n in range(10):
        assert price_match(listed, provider_id=None, upstream_model=f"claude-sonnet-{n}") is SONNET
    assert len(pricing._matched) == 3


def test_glob_match_is_case_sensitive_and_whole_string() -> None:
    assert price_match((SONNET,), provider_id=None, upstream_model="claude-sonnet-4-5-20250929") is SONNET
    assert price_match((SONNET,), provider_id=None, upstream_model="CLAUDE-SONNET-4") is None
    assert price_match((SONNET,), provider_id=None, upstream_model="databricks-claude-sonnet-4") is None


def test_provider_specific_price_wins_over_a_general_one_whatever_the_priority() -> None:
    general = Price("gpt-4o*", Decimal("2.5"), Decimal(10), priority=1)
    specific = Price("gpt-4o*", Decimal(5), Decimal(20), provider_id=3, priority=999)
    other_provider = Price("gpt-4o*", Decimal(9), Decimal(9), provider_id=4, priority=0)
    table = (general, specific, other_provider)
    assert price_match(table, provider_id=3, upstream_model="gpt-4o") is specific
    assert price_match(table, provider_id=5, upstream_model="gpt-4o") is general  # another provider's is ignored
    assert price_match(table, provider_id=None, upstream_model="gpt-4o") is general


def test_lower_priority_wins_among_general_prices() -> None:
    broad = Price("gpt-4o*", Decimal("2.5"), Decimal(10), priority=20)
    narrow = Price("gpt-4o-mini*", Decimal("0.15"), Decimal("0.6"), priority=10)
    assert price_match((broad, narrow), provider_id=None, upstream_model="gpt-4o-mini-2024-07-18") is narrow
    assert price_match((broad, narrow), provider_id=None, upstream_model="gpt-4o-2024-08-06") is broad


# --- arithmetic -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        ({"input_tokens": M, "output_tokens": 0}, "3"),
        ({"input_tokens": 0, "output_tokens": M}, "15"),
        ({"input_tokens": 0, "output_tokens": 0, "cache_read_tokens": M}, "0.3"),
        ({"input_tokens": 0, "output_tokens": 0, "cache_write_tokens": M}, "3.75"),
        # 1200 * 3 + 350 * 15 + 80000 * 0.3 + 2000 * 3.75 = 3600 + 5250 + 24000 + 7500 = 40350 micro-dollars
        (
            {"input_tokens": 1200, "output_tokens": 350, "cache_read_tokens": 80000, "cache_write_tokens": 2000},
            "0.04035",
        ),
        ({"input_tokens": 0, "output_tokens": 0}, "0"),
    ],
)
def test_cost_uses_each_token_kind_at_its_own_rate(tokens: dict[str, int], expected: str) -> None:
    cost = cost_usd(SONNET, **tokens)
    assert cost == Decimal(expected)
    assert isinstance(cost, Decimal)


def test_cache_rates_fall_back_to_the_input_rate_when_not_set() -> None:
    assert cost_usd(NO_CACHE_RATES, input_tokens=0, output_tokens=0, cache_read_tokens=M) == Decimal(2)
    assert cost_usd(NO_CACHE_RATES, input_tokens=0, output_tokens=0, cache_write_tokens=M) == Decimal(2)


def test_cost_is_exact_decimal_to_eight_places() -> None:
    # One input token of Sonnet is $0.000003: no float noise, quantized to the column's 8 decimals.
    assert cost_usd(SONNET, input_tokens=1, output_tokens=0) == Decimal("0.00000300")
    assert cost_usd(SONNET, input_tokens=1, output_tokens=0).as_tuple().exponent == -8  # type: ignore[union-attr]
    # A sub-1e-8 amount rounds (half-even) rather than raising or turning into a float.
    tiny = Price("t", Decimal("0.001"), Decimal(0))
    assert cost_usd(tiny, input_tokens=1, output_tokens=0) == Decimal("0E-8")


# --- the seeded list --------------------------------------------------------------------------------------------------


def test_seed_list_has_the_required_families_with_cache_rates() -> None:
    table = {row[0]: row for row in seed_migration.PRICES}
    for pattern in ("claude-sonnet-*", "claude-haiku-4-5*", "gpt-4o*", "gpt-4o-mini*"):
        assert pattern in table, pattern
    assert table["claude-sonnet-*"][1:5] == ("3", "15", "0.3", "3.75")
    assert table["claude-haiku-4-5*"][1:5] == ("1", "5", "0.1", "1.25")
    assert table["gpt-4o*"][1:4] == ("2.5", "10", "1.25")
    assert table["gpt-4o-mini*"][1:4] == ("0.15", "0.6", "0.075")
    patterns = [row[0] for row in seed_migration.PRICES]
    # Narrower patterns must come first: the list order becomes the priority.
    assert patterns.index("gpt-4o-mini*") < patterns.index("gpt-4o*")
    assert patterns.index("claude-opus-4-5*") < patterns.index("claude-opus-4*")


@pytest.mark.django_db
def test_migration_seeded_the_price_table() -> None:
    """Plain (rollback) DB test: pytest-django runs it before the transactional tests that flush seeded rows."""
    rows = {p.model_pattern: p for p in PriceEntry.objects.filter(provider__isnull=True)}
    for pattern in ("claude-sonnet-*", "claude-haiku-4-5*", "gpt-4o*", "gpt-4o-mini*"):
        assert pattern in rows, pattern
    sonnet = rows["claude-sonnet-*"]
    assert (sonnet.input_per_mtok, sonnet.output_per_mtok) == (Decimal(3), Decimal(15))
    assert (sonnet.cache_read_per_mtok, sonnet.cache_write_per_mtok) == (Decimal("0.3"), Decimal("3.75"))
    assert rows["gpt-4o*"].cache_write_per_mtok is None  # OpenAI bills no cache writes: falls back to input
    assert "seeded" in sonnet.note


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("model", "input_rate", "output_rate"),
    [
        ("claude-sonnet-4-5-20250929", "3", "15"),
        ("claude-sonnet-5", "3", "15"),
        ("claude-haiku-4-5-20251001", "1", "5"),
        ("gpt-4o-2024-08-06", "2.5", "10"),
        ("gpt-4o", "2.5", "10"),
        ("gpt-4o-mini", "0.15", "0.6"),
        ("gpt-4o-mini-2024-07-18", "0.15", "0.6"),
        ("claude-opus-4-5-20251101", "5", "25"),
        ("claude-opus-4-1-20250805", "15", "75"),
    ],
)
def test_seeded_prices_resolve_real_model_ids(model: str, input_rate: str, output_rate: str) -> None:
    price = price_match(prices_load(), provider_id=None, upstream_model=model)
    assert price is not None, model
    assert (price.input_per_mtok, price.output_per_mtok) == (Decimal(input_rate), Decimal(output_rate))


@pytest.mark.django_db
def test_seeded_sonnet_cost_end_to_end() -> None:
    price = price_match(prices_load(), provider_id=None, upstream_model="claude-sonnet-4-5")
    # 10k input, 2k output, 50k cache read, 5k cache write: 0.03 + 0.03 + 0.015 + 0.01875
    cost = cost_usd(price, input_tokens=10_000, output_tokens=2_000, cache_read_tokens=50_000, cache_write_tokens=5_000)
    assert cost == Decimal("0.09375")
    gpt = price_match(prices_load(), provider_id=None, upstream_model="gpt-4o-mini")
    # OpenAI-style cached prompt tokens are carried as cache reads at the cached rate.
    assert cost_usd(gpt, input_tokens=M, output_tokens=M, cache_read_tokens=M) == Decimal("0.825")


@pytest.mark.django_db
def test_unknown_model_has_no_seeded_price() -> None:
    assert price_match(prices_load(), provider_id=None, upstream_model="llama3.1:8b") is None
