"""The dashboard pages (thin: parse the filters, call the selectors, hand the results to a template).

``/dashboard/`` is for staff (anyone else is sent to the admin login). ``/me/`` is for any logged-in user and shows
only what belongs to them: every selector it calls is given the logged-in user's id, never one from the request,
so no GET parameter can widen it. Non-staff users cannot use the admin login form (it admits staff only), so
``/me/`` has its own login and logout.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView, LogoutView
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from gateway.dashboard import accounts
from gateway.dashboard import selectors as s
from gateway.dashboard.burndown import budget_burndown, budget_statuses
from gateway.dashboard.charts import fmt_ms
from gateway.dashboard.panels import (
    chart_burndown,
    chart_cache,
    chart_latency,
    chart_requests,
    chart_rules,
    chart_spend_tokens,
    dimension_panels,
    summary_of,
)
from gateway.dashboard.window import MAX_DAYS, PRESETS, TimeWindow, window_parse
from gateway.metrics import observability_snapshot

REFRESH_SECONDS = 60


def _user_filter(value: str, users: list[tuple[int, str]]) -> tuple[int | None, str]:
    if not value:
        return None, ""
    if not (value.isascii() and value.isdigit() and len(value) <= 18):
        return None, "The user filter must be a user id: showing everyone."
    user_id = int(value)
    if all(pk != user_id for pk, _ in users):
        return None, f"No user with id {user_id}: showing everyone."
    return user_id, ""


def _filters(window: TimeWindow) -> dict[str, Any]:
    return {
        "window": window,
        "presets": list(PRESETS.items()),
        "max_days": MAX_DAYS,
        "refresh_seconds": REFRESH_SECONDS,
    }


@never_cache
@require_GET
@staff_member_required
def dashboard(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    window, problem = window_parse(params=request.GET, now=now)
    requested = request.GET.get("user") or ""
    plausible = requested.isascii() and requested.isdigit() and len(requested) <= 18  # a 64-bit id
    users = accounts.users_for_filter(selected=int(requested) if plausible else None)
    user_id, user_problem = _user_filter(requested, users)
    buckets = s.usage_timeseries(window=window, user_id=user_id)
    latency = s.latency_percentiles(window=window, user_id=user_id)
    rows = s.usage_daily_rows(window=window, user_id=user_id, now=now)
    rules = s.routing_decisions_by_rule(window=window, user_id=user_id)
    statuses = budget_statuses(user_id=user_id, now=now)
    burndowns = budget_burndown(statuses=statuses, now=now)
    breakers, breaker_error = s.breaker_states_list()
    process_cache = observability_snapshot()["cache"]
    lookups = process_cache["hits"] + process_cache["misses"]
    context = {
        **admin.site.each_context(request),
        **_filters(window),
        "title": "Dashboard",
        "problems": [p for p in (problem, user_problem) if p],
        "users": users,
        "user_id": user_id,
        "selected_username": next((name for pk, name in users if pk == user_id), ""),
        "summary": summary_of(buckets),
        "latency": latency,
        "latency_text": f"{fmt_ms(latency.overall_p50 or 0)} / {fmt_ms(latency.overall_p95 or 0)}",
        "chart_requests": chart_requests(buckets=buckets, window=window),
        "chart_latency": chart_latency(latency=latency, window=window),
        "chart_cache": chart_cache(buckets=buckets, window=window),
        "dimensions": dimension_panels(rows=rows, days=window.days()),
        "burndowns": [(b, chart_burndown(b)) for b in burndowns],
        "budgets_more": max(0, len(statuses) - len(burndowns)),
        "sessions": s.sessions_top_by_cost(window=window, user_id=user_id),
        "rules": rules,
        "chart_rules": chart_rules(rules),
        "breakers": breakers,
        "breaker_error": breaker_error,
        "process_cache": process_cache,
        "process_cache_rate": round(100 * process_cache["hits"] / lookups, 1) if lookups else None,
        "recent": s.requests_recent(window=window, user_id=user_id),
        "recent_limit": s.RECENT_LIMIT,
        "max_latency_samples": s.MAX_LATENCY_SAMPLES,
        "generated_at": now,
    }
    return render(request, "dashboard/staff.html", context)


@never_cache
@require_GET
@login_required(login_url="me:login")
def me(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    window, problem = window_parse(params=request.GET, now=now)
    assert request.user.pk is not None  # login_required
    own = int(request.user.pk)  # the only user this page ever reads about
    buckets = s.usage_timeseries(window=window, user_id=own)
    rows = s.usage_daily_rows(window=window, user_id=own, now=now)
    context = {
        **admin.site.each_context(request),
        **_filters(window),
        "title": "My usage",
        "problems": [problem] if problem else [],
        "keys": accounts.apikeys_of_user(user_id=own, now=now),
        "summary": summary_of(buckets),
        "chart_requests": chart_requests(buckets=buckets, window=window, chart_id="my-requests"),
        "chart_spend": chart_spend_tokens(buckets=buckets, window=window, chart_id="my-spend"),
        "dimensions": dimension_panels(rows=rows, days=window.days(), dimensions=("key", "model")),
        "budgets": budget_statuses(user_id=own, now=now),
        "recent": s.requests_recent(window=window, user_id=own),
        "recent_limit": s.RECENT_LIMIT,
        "generated_at": now,
    }
    return render(request, "dashboard/me.html", context)


def me_login(request: HttpRequest) -> HttpResponseBase:
    """The admin's login page, but admitting any active user (the admin's own form admits staff only)."""
    context = {
        **admin.site.each_context(request),
        "title": "Log in",
        "app_path": request.get_full_path(),
    }
    view = LoginView.as_view(
        template_name="admin/login.html",
        authentication_form=AuthenticationForm,
        redirect_authenticated_user=True,
        next_page=reverse("me:index"),
        extra_context=context,
    )
    response: HttpResponseBase = view(request)
    return response


me_logout = LogoutView.as_view(next_page="me:login")
