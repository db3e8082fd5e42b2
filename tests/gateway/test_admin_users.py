"""Users and teams in the admin: budgets (and a user's rate limit) inline, their keys listed read-only, and the
budget a lead adds there applies to the very next request of this process."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone
from selectolax.lexbor import LexborHTMLParser

from gateway.auth import request_authenticate
from gateway.budgets import budgets_for
from gateway.models import ApiKey, Budget, RateLimit
from gateway.services import apikey_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client: Client) -> Client:
    User.objects.create_superuser(username="boss", password="x" * 16)
    client.login(username="boss", password="x" * 16)
    return client


def form_data(html: str, form_id: str) -> dict[str, Any]:
    """What the browser would submit from the form as rendered (inline templates excluded)."""
    form = LexborHTMLParser(html).css_first(f"form#{form_id}")
    assert form is not None, html[:2000]
    data: dict[str, Any] = {}
    for field in form.css("input, select, textarea"):
        attrs = field.attributes
        name = attrs.get("name")
        if not name or "__prefix__" in name or "disabled" in attrs:
            continue
        kind = (attrs.get("type") or "text").lower()
        if kind in ("submit", "button", "image", "file"):
            continue
        if kind in ("checkbox", "radio"):
            if "checked" in attrs:
                data.setdefault(name, []).append(attrs.get("value") or "on")
        elif field.tag == "select":
            data[name] = [o.attributes.get("value") or "" for o in field.css("option") if "selected" in o.attributes]
        elif field.tag == "textarea":
            data[name] = field.text()
        else:
            data[name] = attrs.get("value") or ""
    return data


def _with_budget(data: dict[str, Any], **budget: str) -> dict[str, Any]:
    row = int(data["budget_set-TOTAL_FORMS"])
    data["budget_set-TOTAL_FORMS"] = str(row + 1)
    fields = {"name": "", "period": "month", "limit_usd": "", "limit_tokens": "", "soft_threshold": "0.8", **budget}
    if fields.pop("enabled", "on"):
        data[f"budget_set-{row}-enabled"] = "on"
    for key, value in fields.items():
        data[f"budget_set-{row}-{key}"] = value
    return data


def test_user_page_lists_keys_read_only_and_links_to_issuance(staff: Client) -> None:
    dev = User.objects.create_user(username="dev", password="y" * 16)
    issued = apikey_create(user=dev, name="laptop")
    page = staff.get(f"/admin/auth/user/{dev.pk}/change/").content.decode()
    assert issued.prefix in page and issued.secret not in page
    assert 'name="api_keys-0-name"' not in page  # shown, not editable
    assert f"/admin/gateway/apikey/add/?user={dev.pk}" in page
    assert 'name="budget_set-TOTAL_FORMS"' in page and 'name="ratelimit_set-TOTAL_FORMS"' in page
    # The add page has no inlines: budgets need the user to exist.
    assert "budget_set-TOTAL_FORMS" not in staff.get("/admin/auth/user/add/").content.decode()
    apikey_create(user=dev, name="old")
    ApiKey.objects.filter(name="old").update(revoked_at=timezone.now())  # not counted as active
    listing = LexborHTMLParser(staff.get("/admin/auth/user/").content.decode())
    counts = {
        row.css_first(".field-username").text(): row.css_first(".field-active_keys").text()
        for row in listing.css("#result_list tbody tr")
    }
    assert counts == {"boss": "0", "dev": "1"}


@pytest.mark.django_db(transaction=True)  # commit hooks (cache clearing) run for real, as in the server
def test_budget_added_on_the_user_page_applies_at_once(staff: Client) -> None:
    dev = User.objects.create_user(username="dev", password="y" * 16)
    secret = apikey_create(user=dev).secret
    key = async_to_sync(request_authenticate)({"x-api-key": secret})
    assert async_to_sync(budgets_for)(key) == ()  # cached: "no budget" for LYNKR_KEY_CACHE_TTL seconds
    url = f"/admin/auth/user/{dev.pk}/change/"
    data = _with_budget(form_data(staff.get(url).content.decode(), "user_form"), name="dev cap", limit_usd="0.0001")
    data["ratelimit_set-TOTAL_FORMS"] = "1"
    data["ratelimit_set-0-requests_per_minute"] = "30"
    response = staff.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    budget = Budget.objects.get(user=dev)
    assert (budget.name, budget.limit_usd, budget.group_id, budget.api_key_id) == (
        "dev cap",
        Decimal("0.0001"),
        None,
        None,
    )
    assert RateLimit.objects.get(user=dev).requests_per_minute == 30
    assert [b.name for b in async_to_sync(budgets_for)(key)] == ["dev cap"]  # not the cached "none"


def test_budget_inline_explains_a_missing_limit(staff: Client) -> None:
    dev = User.objects.create_user(username="dev", password="y" * 16)
    url = f"/admin/auth/user/{dev.pk}/change/"
    data = _with_budget(form_data(staff.get(url).content.decode(), "user_form"), name="no limit")
    response = staff.post(url, data)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Set a USD limit, a token limit, or both" in page
    assert "Give a limit in USD" not in page  # the model's own message is not repeated
    assert not Budget.objects.exists()


def test_team_page_has_budgets(staff: Client) -> None:
    team = Group.objects.create(name="platform")
    User.objects.create_user(username="dev").groups.add(team)
    url = f"/admin/auth/group/{team.pk}/change/"
    page = staff.get(url).content.decode()
    assert 'name="budget_set-TOTAL_FORMS"' in page
    data = _with_budget(form_data(page, "group_form"), name="team daily", period="day", limit_tokens="500000")
    assert staff.post(url, data).status_code == 302
    budget = Budget.objects.get(group=team)
    assert (budget.limit_tokens, budget.limit_usd, budget.user_id) == (500_000, None, None)
    listing = staff.get("/admin/auth/group/").content.decode()
    assert "members" in listing and "platform" in listing
