"""Budgets on the dashboard: the ledger's numbers and the burn-down curve from the usage records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User

from gateway.dashboard.burndown import budget_burndown, budget_statuses
from gateway.models import Budget, BudgetUsage
from tests.gateway.dashboard.conftest import NOW, make_key, make_record

pytestmark = pytest.mark.django_db

MONTH_START = datetime(2026, 3, 1, tzinfo=UTC)


def test_statuses_read_the_current_period_ledger(alice: User) -> None:
    budget = Budget.objects.create(name="alice monthly", user=alice, period="month", limit_usd=Decimal(10),
                                   limit_tokens=1000)  # fmt: skip
    BudgetUsage.objects.create(budget=budget, period_start=MONTH_START, spent_usd=Decimal(4), spent_tokens=900,
                               reserved_usd=Decimal("0.5"))  # fmt: skip
    BudgetUsage.objects.create(budget=budget, period_start=datetime(2026, 2, 1, tzinfo=UTC), spent_usd=Decimal(99))
    Budget.objects.create(name="off", user=alice, limit_usd=Decimal(1), enabled=False)
    [status] = budget_statuses(now=NOW)
    assert (status.scope_kind, status.scope, status.period_start, status.period_end) == (
        "user", "alice", MONTH_START, datetime(2026, 4, 1, tzinfo=UTC))  # fmt: skip
    assert (status.spent_usd, status.spent_tokens, status.reserved_usd) == (Decimal(4), 900, Decimal("0.5"))
    assert (status.fraction, status.percent, status.state) == (0.9, 90.0, "warning")  # tokens are the tighter limit
    assert (status.spent_text, status.limit_text, status.unit) == ("$4.00", "$10.00", "usd")


def test_statuses_for_one_user_cover_their_keys_and_teams(alice: User, bob: User) -> None:
    team = Group.objects.create(name="platform")
    alice.groups.add(team)
    key = make_key(alice, "lk_alice")
    Budget.objects.create(name="a-user", user=alice, limit_usd=Decimal(1))
    Budget.objects.create(name="a-key", api_key=key, limit_tokens=100, period="day")
    Budget.objects.create(name="a-team", group=team, limit_usd=Decimal(5), period="week")
    Budget.objects.create(name="b-user", user=bob, limit_usd=Decimal(1))
    Budget.objects.create(name="other-team", group=Group.objects.create(name="other"), limit_usd=Decimal(1))
    mine = budget_statuses(user_id=alice.pk, now=NOW)
    assert [(s.name, s.scope_kind, s.scope) for s in mine] == [
        ("a-key", "key", "lk_alice"), ("a-team", "team", "platform"), ("a-user", "user", "alice")]  # fmt: skip
    week = next(s for s in mine if s.period == "week")
    assert (week.period_start, week.period_end) == (
        datetime(2026, 3, 16, tzinfo=UTC),
        datetime(2026, 3, 23, tzinfo=UTC),
    )
    assert [s.name for s in budget_statuses(user_id=bob.pk, now=NOW)] == ["b-user"]
    assert len(budget_statuses(now=NOW)) == 5


def test_monthly_burndown_cumulates_per_day(alice: User, bob: User) -> None:
    budget = Budget.objects.create(name="alice monthly", user=alice, period="month", limit_usd=Decimal(31))
    make_record(user=alice, when=datetime(2026, 3, 2, 10, tzinfo=UTC), cost="1.5")
    make_record(user=alice, when=datetime(2026, 3, 2, 23, tzinfo=UTC), cost="0.5")
    make_record(user=alice, when=datetime(2026, 3, 18, 9, tzinfo=UTC), cost="3", kind="attempt")  # not a request
    make_record(user=alice, when=datetime(2026, 3, 18, 9, tzinfo=UTC), cost=None)  # unknown price: no USD
    make_record(user=alice, when=datetime(2026, 2, 28, 9, tzinfo=UTC), cost="50")  # the previous period
    make_record(user=bob, when=datetime(2026, 3, 5, tzinfo=UTC), cost="7")  # someone else
    [curve] = budget_burndown(statuses=budget_statuses(now=NOW), now=NOW)
    assert curve.budget.id == budget.pk and curve.limit == 31.0
    assert len(curve.labels) == 31 and curve.labels[0] == "03-01" and curve.labels[-1] == "03-31"
    assert curve.spent[:3] == (0.0, 2.0, 2.0)
    assert curve.spent[17] == 2.0 and curve.spent[18] is None  # 03-18 is today; 03-19 is the future
    assert curve.pace[0] == 1.0 and curve.pace[-1] == 31.0


def test_daily_token_budget_of_a_key_cumulates_per_hour(alice: User) -> None:
    key = make_key(alice, "lk_key")
    other = make_key(alice, "lk_other")
    Budget.objects.create(name="key daily", api_key=key, period="day", limit_tokens=10_000)
    make_record(user=alice, key=key, when=datetime(2026, 3, 18, 1, 30, tzinfo=UTC), input_tokens=100, output_tokens=10,
                cache_read_tokens=5, cache_write_tokens=1)  # fmt: skip
    make_record(user=alice, key=other, when=datetime(2026, 3, 18, 2, tzinfo=UTC), input_tokens=999)
    [curve] = budget_burndown(statuses=budget_statuses(now=NOW), now=NOW)
    assert curve.budget.unit == "tokens" and len(curve.labels) == 24 and curve.labels[1] == "01:00"
    assert curve.spent[:3] == (0.0, 116.0, 116.0) and curve.spent[15] == 116.0 and curve.spent[16] is None


def test_team_budget_counts_its_members(alice: User, bob: User) -> None:
    team = Group.objects.create(name="team")
    alice.groups.add(team)
    bob.groups.add(team)
    outsider = User.objects.create_user(username="carol")
    Budget.objects.create(name="team weekly", group=team, period="week", limit_usd=Decimal(7))
    make_record(user=alice, when=datetime(2026, 3, 16, 8, tzinfo=UTC), cost="1")
    make_record(user=bob, when=datetime(2026, 3, 17, 8, tzinfo=UTC), cost="2")
    make_record(user=outsider, when=datetime(2026, 3, 17, 8, tzinfo=UTC), cost="4")
    [curve] = budget_burndown(statuses=budget_statuses(now=NOW), now=NOW)
    assert curve.labels == ("03-16", "03-17", "03-18", "03-19", "03-20", "03-21", "03-22")
    assert curve.spent == (1.0, 3.0, 3.0, None, None, None, None)


def test_total_budget_starts_from_the_ledger_before_the_curve(alice: User) -> None:
    budget = Budget.objects.create(name="forever", user=alice, period="total", limit_usd=Decimal(100))
    BudgetUsage.objects.create(budget=budget, period_start=datetime(2000, 1, 1, tzinfo=UTC), spent_usd=Decimal(12))
    make_record(user=alice, when=NOW - timedelta(days=1), cost="2")
    [curve] = budget_burndown(statuses=budget_statuses(now=NOW), now=NOW)
    assert len(curve.spent) == 30 and curve.spent[0] == 10.0 and curve.spent[-2:] == (12.0, 12.0)
    assert set(curve.pace) == {None}


def test_burndown_shows_the_budgets_closest_to_their_limit(alice: User) -> None:
    for n, spent in enumerate((1, 9, 5)):
        budget = Budget.objects.create(name=f"b{n}", user=alice, period="month", limit_usd=Decimal(10))
        BudgetUsage.objects.create(budget=budget, period_start=MONTH_START, spent_usd=Decimal(spent))
    curves = budget_burndown(statuses=budget_statuses(now=NOW), now=NOW, limit=2)
    assert [c.budget.name for c in curves] == ["b1", "b2"]
    assert budget_burndown(statuses=[], now=NOW) == []
