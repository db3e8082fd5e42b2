"""Every model registered in the admin (ours and django_celery_beat's): its list (with a search and every
filter's first choice), its add page and a row's change page render for a superuser."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.db.models import Model
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)
from selectolax.lexbor import LexborHTMLParser

from gateway.models import ApiKey, Budget, BudgetUsage, PriceEntry, RateLimit, Session, Turn, UsageDaily, UsageRecord
from gateway.services import apikey_create
from mcp_app.models import McpServer
from providers.models import ModelMapping, Provider, RouteTier, RoutingRule, TierTarget
from tasks_app.models import Task
from workspace.models import IndexedFile, JobKind, JobRun, Policy, Symbol, TestRun, Workspace, WorkspaceGrant

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client: Client) -> Client:
    User.objects.create_superuser(username="boss", password="x" * 16)
    client.login(username="boss", password="x" * 16)
    return client


def _seed(root: Path) -> None:
    """One row (or more) of every registered model, linked the way real data is."""
    team = Group.objects.create(name="platform")
    dev = User.objects.create_user(username="dev", password="y" * 16)
    dev.groups.add(team)
    apikey_create(user=dev, name="laptop")
    key = ApiKey.objects.get(user=dev)
    budget = Budget.objects.create(name="dev monthly", user=dev, limit_usd=Decimal("10"))
    Budget.objects.create(name="team daily", group=team, period="day", limit_tokens=100_000)
    BudgetUsage.objects.create(budget=budget, period_start=datetime(2026, 1, 1, tzinfo=UTC), spent_usd=Decimal("1"))
    RateLimit.objects.create(user=dev, requests_per_minute=60)
    RateLimit.objects.create(api_key=key, input_tokens_per_minute=10_000)
    session = Session.objects.create(external_id="sess-1", user=dev, api_key=key)
    Turn.objects.create(session=session, request_id="req-1", new_messages=[{"role": "user", "content": "hi"}])
    UsageRecord.objects.create(
        record_id="req-1:request", kind="request", request_id="req-1", user=dev, api_key=key, session=session,
        provider="mock", client_model="claude-sonnet-5", input_tokens=10, output_tokens=5, cost_usd=Decimal("0.01"),
    )  # fmt: skip
    UsageDaily.objects.create(day=datetime(2026, 1, 1).date(), user=dev, api_key=key, provider="mock", requests=1)
    provider = Provider.objects.create(name="mock", base_url="http://127.0.0.1:9")
    PriceEntry.objects.create(model_pattern="mock-*", provider=provider, input_per_mtok=1, output_per_mtok=2)
    ModelMapping.objects.create(pattern="claude-*", match_type="glob", provider=provider, group=team)
    tier = RouteTier.objects.create(name="light")
    TierTarget.objects.create(tier=tier, provider=provider, upstream_model="small")
    RoutingRule.objects.create(name="background", tier=tier, background=True)
    policy = Policy.objects.create(name="careful")
    workspace = Workspace.objects.create(name="proj", root_path=str(root), policy=policy)
    WorkspaceGrant.objects.create(workspace=workspace, user=dev)
    JobRun.objects.create(workspace=workspace, kind=JobKind.INDEX_REBUILD, progress_done=1, progress_total=4)
    TestRun.objects.create(workspace=workspace, command="pytest -q", outcome="passed", passed=3)
    indexed = IndexedFile.objects.create(workspace=workspace, path="app.py", content_hash="0" * 64, language="python")
    Symbol.objects.create(workspace=workspace, file=indexed, name="main", kind="function", line=1)
    Task.objects.create(workspace=workspace, user=dev, title="write the docs")
    McpServer.objects.create(name="files", command="mcp-files")
    interval = IntervalSchedule.objects.create(every=15, period=IntervalSchedule.MINUTES)
    CrontabSchedule.objects.create(minute="0", hour="3")
    SolarSchedule.objects.create(event="sunrise", latitude=Decimal("51.5"), longitude=Decimal("0.1"))
    ClockedSchedule.objects.create(clocked_time=datetime(2030, 1, 1, tzinfo=UTC))
    PeriodicTask.objects.create(name="reindex", task="workspace.tasks.index_rebuild", interval=interval)


def _filter_choices(page: str) -> list[str]:
    """The first real choice of each list filter, as its query string (skipping the 'All' links)."""
    tree = LexborHTMLParser(page)
    choices = []
    for block in tree.css("#changelist-filter details, #changelist-filter ul"):
        links = [a.attributes.get("href") or "" for a in block.css("li a")]
        picked = [href for href in links if href.startswith("?") and href != "?"]
        if picked:
            choices.append(picked[0])
    return sorted(set(choices))


def test_every_registered_model_renders(staff: Client, tmp_path: Path) -> None:
    _seed(tmp_path)
    checked = []
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        name = f"{opts.app_label}.{opts.model_name}"
        row: Model | None = model._default_manager.first()
        assert row is not None, f"seed a row of {name} in _seed() so its change page is checked"
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        page = staff.get(changelist)
        assert page.status_code == 200, name
        assert changelist in page.content.decode()
        if model_admin.search_fields:
            assert staff.get(changelist, {"q": "zz"}).status_code == 200, f"{name} search"
        for query in _filter_choices(page.content.decode()):
            assert staff.get(changelist + query).status_code == 200, f"{name} filter {query}"
        change = staff.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.pk]))
        assert change.status_code == 200, f"{name} change page"
        if model_admin.has_add_permission(_request(staff)):
            add = staff.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
            assert add.status_code == 200, f"{name} add page"
        checked.append(name)
    assert {"gateway.budget", "auth.user", "auth.group", "django_celery_beat.periodictask"} <= set(checked)
    assert len(checked) >= 25


def _request(client: Client) -> Any:
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = User.objects.get(username="boss")
    return request


def test_usage_and_sessions_are_read_only(staff: Client, tmp_path: Path) -> None:
    _seed(tmp_path)
    record, session, daily = UsageRecord.objects.get(), Session.objects.get(), UsageDaily.objects.get()
    # No add, no edit form; the usage ledger cannot be deleted by hand either (retention purges it).
    for url in ("/admin/gateway/usagerecord/add/", "/admin/gateway/usagedaily/add/", "/admin/gateway/session/add/"):
        assert staff.get(url).status_code == 403, url
    for url in (
        f"/admin/gateway/usagerecord/{record.pk}/change/",
        f"/admin/gateway/usagedaily/{daily.pk}/change/",
        f"/admin/gateway/session/{session.pk}/change/",
    ):
        page = staff.get(url).content.decode()
        assert 'name="_save"' not in page, url
    assert staff.get(f"/admin/gateway/usagerecord/{record.pk}/delete/").status_code == 403
    assert staff.get(f"/admin/gateway/session/{session.pk}/delete/").status_code == 200  # a transcript may go
    before = UsageRecord.objects.count()
    staff.post(f"/admin/gateway/usagerecord/{record.pk}/change/", {"cost_usd": "0"})
    assert UsageRecord.objects.count() == before and UsageRecord.objects.get().cost_usd == Decimal("0.01")
