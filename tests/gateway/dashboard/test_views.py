"""The pages: who may see them, what they show, and that /me/ never shows another user's data."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from gateway.models import Budget, BudgetUsage, Session
from tests.gateway.dashboard.conftest import make_key, make_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(db: None) -> User:
    return User.objects.create_user(username="lead", password="lead-password-1", is_staff=True, is_superuser=True)


@pytest.fixture
def world(alice: User, bob: User) -> dict[str, object]:
    """Two users with keys, usage, a session and budgets each; bob's things are marked so leaks are easy to spot."""
    now = timezone.now()
    team = Group.objects.create(name="alice-team")
    alice.groups.add(team)
    a_key = make_key(alice, "lk_alice_key", "alice laptop")
    b_key = make_key(bob, "lk_bob_secret_key", "bob-private-label")
    b_session = Session.objects.create(external_id="bob-session-xyz", user=bob)
    make_record(user=alice, key=a_key, when=now - timedelta(minutes=5), cost="0.00012345", request_id="req_alice_1",
                model="alice-model")  # fmt: skip
    make_record(user=alice, key=a_key, when=now - timedelta(minutes=4), cost=None, request_id="req_alice_unpriced",
                model="alice-model")  # fmt: skip
    make_record(user=bob, key=b_key, when=now - timedelta(minutes=3), cost="4.271828", request_id="req_bob_1",
                model="bob-model", session=b_session, rule="bob-rule")  # fmt: skip
    Budget.objects.create(name="alice-budget", user=alice, limit_usd=Decimal(10))
    Budget.objects.create(name="alice-key-budget", api_key=a_key, limit_tokens=1000)
    Budget.objects.create(name="alice-team-budget", group=team, limit_usd=Decimal(50))
    Budget.objects.create(name="bob-budget", user=bob, limit_usd=Decimal(20))
    return {"alice_key": a_key, "bob_key": b_key}


def test_staff_dashboard_renders_everything(client: Client, staff: User, world: dict[str, object]) -> None:
    client.force_login(staff)
    response = client.get("/dashboard/")
    assert response.status_code == 200
    assert response["cache-control"].startswith("max-age=0")
    page = response.content.decode()
    needles = ('id="recent-requests"', "req_alice_1", "req_bob_1", "bob-session-xyz", "bob-rule", "alice-budget",
               "bob-budget", "Routing decisions", "Circuit breakers", "Latency p50", "lk_bob_secret_key")  # fmt: skip
    for needle in needles:
        assert needle in page, needle
    table = _table(page, "recent-requests")
    alice_row = next(row for row in table if "req_alice_1" in row)
    assert "$0.000123" in alice_row and 'data-cost-usd="0.00012345"' in alice_row
    unpriced = next(row for row in table if "req_alice_unpriced" in row)
    assert 'title="no price configured"' in unpriced and "—" in unpriced
    for svg in re.findall(r"<svg xmlns=.*?</svg>", page, flags=re.S):
        ET.fromstring(svg)  # every chart is well-formed


def _table(page: str, table_id: str) -> list[str]:
    match = re.search(rf'<table[^>]*id="{table_id}".*?</table>', page, flags=re.S)
    assert match, table_id
    return re.findall(r"<tr.*?</tr>", match.group(0), flags=re.S)


def test_user_filter_and_time_range(client: Client, staff: User, alice: User, world: dict[str, object]) -> None:
    client.force_login(staff)
    page = client.get("/dashboard/", {"user": alice.pk, "range": "24h"}).content.decode()
    recent = "".join(_table(page, "recent-requests"))
    assert "req_alice_1" in recent and "req_bob_1" not in recent
    assert "bob-session-xyz" not in page and "bob-budget" not in page
    assert f'<option value="{alice.pk}" selected>alice</option>' in page
    yesterday = (timezone.now() - timedelta(days=2)).date().isoformat()
    page = client.get("/dashboard/", {"range": "custom", "from": yesterday, "to": yesterday}).content.decode()
    assert "No requests in this range." in page and "req_alice_1" not in page
    for huge in ("9" * 40, "99999999", "\uff11"):  # no such user, or not an id at all: everyone, never a 500
        response = client.get("/dashboard/", {"user": huge})
        assert response.status_code == 200 and "showing everyone" in response.content.decode()
    page = client.get("/dashboard/", {"user": "nobody", "range": "bogus"}).content.decode()
    assert "The user filter must be a user id" in page and "Unknown range" in page and "req_bob_1" in page


def test_non_staff_and_anonymous_are_sent_to_the_admin_login(client: Client, alice: User) -> None:
    response = client.get("/dashboard/")
    assert response.status_code == 302 and response["location"] == "/admin/login/?next=/dashboard/"
    client.force_login(alice)
    response = client.get("/dashboard/")
    assert response.status_code == 302 and response["location"].startswith("/admin/login/")


def test_dashboard_issues_a_bounded_number_of_queries(
    client: Client, staff: User, world: dict[str, object], django_assert_max_num_queries: object
) -> None:
    client.force_login(staff)
    for n in range(30):  # more rows must not mean more queries
        make_record(user=staff, when=timezone.now() - timedelta(hours=n), request_id=f"req_bulk_{n}",
                    session=Session.objects.create(external_id=f"s{n}", user=staff))  # fmt: skip
        Budget.objects.create(name=f"budget {n}", user=staff, limit_usd=Decimal(1))
    with django_assert_max_num_queries(20):  # type: ignore[operator]  # 16 today
        assert client.get("/dashboard/", {"range": "30d"}).status_code == 200


def test_me_requires_login_with_next(client: Client) -> None:
    response = client.get("/me/")
    assert response.status_code == 302 and response["location"] == "/me/login/?next=/me/"


def test_a_non_staff_user_logs_in_and_sees_their_page(client: Client, alice: User, world: dict[str, object]) -> None:
    login = client.get("/me/login/?next=/me/")
    assert login.status_code == 200 and 'id="login-form"' in login.content.decode()
    response = client.post(
        "/me/login/?next=/me/", {"username": "alice", "password": "alice-password-1", "next": "/me/"}
    )
    assert response.status_code == 302 and response["location"] == "/me/"
    page = client.get("/me/").content.decode()
    assert "lk_alice_key" in page and "req_alice_1" in page and "$0.000123" in page
    assert client.post("/me/logout/").status_code == 302
    assert client.get("/me/").status_code == 302


def test_me_shows_nothing_of_another_user(client: Client, alice: User, bob: User, world: dict[str, object]) -> None:
    client.force_login(alice)
    leaks = ("bob", "lk_bob_secret_key", "bob-private-label", "req_bob_1", "bob-model", "bob-session-xyz",
             "bob-rule", "bob-budget", "$4.27", "4.271828")  # fmt: skip
    for params in (
        {},
        {"user": bob.pk},
        {"user_id": bob.pk},
        {"range": "30d", "user": bob.pk},
        {"key": "lk_bob_secret_key"},
    ):
        response = client.get("/me/", params)
        assert response.status_code == 200
        page = response.content.decode()
        for leak in leaks:
            assert leak not in page, (params, leak)
        assert "req_alice_1" in page and "lk_alice_key" in page and "alice laptop" in page
        for budget in ("alice-budget", "alice-key-budget", "alice-team-budget"):
            assert budget in page
    assert "key_hash" not in page and world["alice_key"].key_hash not in page  # type: ignore[attr-defined]


def test_me_budget_shows_spent_and_limit(client: Client, alice: User) -> None:
    budget = Budget.objects.create(name="monthly", user=alice, limit_usd=Decimal(10))
    start = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    BudgetUsage.objects.create(budget=budget, period_start=start, spent_usd=Decimal("2.5"))
    client.force_login(alice)
    row = next(r for r in _table(client.get("/me/").content.decode(), "my-budgets") if "monthly" in r)
    assert "$2.50 / $10.00" in row and "25.0%" in row


def test_admin_index_links_the_dashboard(client: Client, staff: User) -> None:
    client.force_login(staff)
    page = client.get("/admin/").content.decode()
    assert 'href="/dashboard/"' in page and 'href="/me/"' in page
    assert 'class="app-gateway' in page and 'id="recent-actions-module"' in page  # the admin's own index is still there


def test_times_are_shown_in_utc_whatever_the_time_zone(client: Client, staff: User, alice: User, settings: Any) -> None:
    settings.TIME_ZONE = "Asia/Tokyo"
    when = timezone.now().replace(microsecond=0) - timedelta(minutes=1)
    make_record(user=alice, when=when, request_id="req_tz")
    client.force_login(staff)
    row = next(r for r in _table(client.get("/dashboard/").content.decode(), "recent-requests") if "req_tz" in r)
    assert when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") in row
