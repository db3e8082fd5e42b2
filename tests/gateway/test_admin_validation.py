"""Admin validation explains itself: what is wrong and what to do, once, next to the field to change."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from gateway.admin_forms import BudgetForm, PriceEntryForm, RateLimitForm, glob_problem
from gateway.models import ApiKey, Budget, PriceEntry, RateLimit
from gateway.services import apikey_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client: Client) -> Client:
    User.objects.create_superuser(username="boss", password="x" * 16)
    client.login(username="boss", password="x" * 16)
    return client


def _budget(**fields: Any) -> dict[str, Any]:
    return {"name": "cap", "period": "month", "soft_threshold": "0.8", "enabled": "on", **fields}


def _messages(form: Any) -> dict[str, list[str]]:
    return {field: list(errors) for field, errors in form.errors.items()}


def test_budget_without_a_limit() -> None:
    dev = User.objects.create_user(username="dev")
    form = BudgetForm(_budget(user=dev.pk))
    assert not form.is_valid()
    assert _messages(form) == {
        "limit_usd": ["Set a USD limit, a token limit, or both: a budget without a limit would never refuse anything."]
    }


def test_budget_with_several_subjects_or_none() -> None:
    dev = User.objects.create_user(username="dev")
    team = Group.objects.create(name="t")
    apikey_create(user=dev)
    key = ApiKey.objects.get()
    form = BudgetForm(_budget(user=dev.pk, group=team.pk, api_key=key.pk, limit_usd="5"))
    assert not form.is_valid()
    assert _messages(form) == {
        "__all__": [
            "A budget limits one subject, but a user, a team, an API key are chosen: keep one and clear the "
            "others. To cap several, add one budget for each."
        ]
    }
    alone = BudgetForm(_budget(limit_usd="5"))
    assert not alone.is_valid()
    assert _messages(alone) == {"__all__": ["Choose who this budget limits: a user, a team or an API key."]}


def test_budget_limits_and_threshold_in_range() -> None:
    dev = User.objects.create_user(username="dev")
    form = BudgetForm(_budget(user=dev.pk, limit_usd="-1", soft_threshold="1.5"))
    assert not form.is_valid()
    errors = _messages(form)
    assert errors["limit_usd"] == [
        "A limit cannot be negative: use 0 to stop all spending, or untick 'enabled' to pause it."
    ]
    assert errors["soft_threshold"][0].startswith("Use a fraction of the limit between 0 and 1")
    assert BudgetForm(_budget(user=dev.pk, limit_tokens="1000", soft_threshold="1")).is_valid()


def test_mistyped_limit_is_not_reported_as_missing() -> None:
    dev = User.objects.create_user(username="dev")
    form = BudgetForm(_budget(user=dev.pk, limit_usd="ten"))
    assert not form.is_valid()
    assert _messages(form) == {"limit_usd": ["Enter a number."]}


def test_budget_admin_page_shows_the_explanation(staff: Client) -> None:
    dev = User.objects.create_user(username="dev")
    team = Group.objects.create(name="t")
    response = staff.post("/admin/gateway/budget/add/", _budget(user=dev.pk, group=team.pk))
    page = response.content.decode()
    assert response.status_code == 200
    assert "keep one and clear the others" in page and "Set a USD limit, a token limit, or both" in page
    assert "Attach a budget to exactly one of" not in page  # the model's message is not repeated
    assert not Budget.objects.exists()
    ok = staff.post("/admin/gateway/budget/add/", _budget(user=dev.pk, limit_usd="2.5"))
    assert ok.status_code == 302
    assert Budget.objects.get().limit_usd == Decimal("2.5")


def test_rate_limit_needs_one_subject_and_a_limit(staff: Client) -> None:
    dev = User.objects.create_user(username="dev")
    apikey_create(user=dev)
    key = ApiKey.objects.get()
    both = RateLimitForm({"user": dev.pk, "api_key": key.pk, "requests_per_minute": "10"})
    assert not both.is_valid()
    assert "not both: clear one of them" in both.errors["__all__"][0]
    empty = RateLimitForm({"user": dev.pk})
    assert not empty.is_valid()
    assert _messages(empty) == {
        "requests_per_minute": [
            "Set at least one limit (requests, input tokens or output tokens per minute); an empty rate limit "
            "limits nothing, delete it instead."
        ]
    }
    response = staff.post("/admin/gateway/ratelimit/add/", {"output_tokens_per_minute": "100"})
    assert "Choose what these limits apply to" in response.content.decode()
    assert (
        staff.post("/admin/gateway/ratelimit/add/", {"api_key": key.pk, "input_tokens_per_minute": "9"}).status_code
        == 302
    )
    assert RateLimit.objects.get().api_key_id == key.pk


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("claude-sonnet-*", None),
        ("gpt-4o-[0-9]*", None),
        ("exact-id", None),
        ("claude-[", "Close the '[' of the character class"),
        (" claude-*", "Remove the spaces"),
        ("claude *", "Remove the spaces"),
    ],
)
def test_glob_problem(pattern: str, problem: str | None) -> None:
    found = glob_problem(pattern)
    assert (found is None) if problem is None else (found is not None and found.startswith(problem))


def test_price_pattern_and_amounts() -> None:
    form = PriceEntryForm({"model_pattern": "gpt-[4", "input_per_mtok": "-1", "output_per_mtok": "2", "priority": "1"})
    assert not form.is_valid()
    assert form.errors["model_pattern"][0].startswith("Close the '['")
    assert form.errors["input_per_mtok"] == ["A price cannot be negative: USD per million tokens, e.g. 3 or 0.25."]
    good = PriceEntryForm(
        {"model_pattern": "gpt-4o*", "input_per_mtok": "2.5", "output_per_mtok": "10", "priority": "1"}
    )
    assert good.is_valid(), good.errors
    good.save()
    assert PriceEntry.objects.filter(model_pattern="gpt-4o*").exists()
