"""/dashboard/ (staff)."""

from __future__ import annotations

from django.urls import path

from gateway.dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.dashboard, name="index"),
]
