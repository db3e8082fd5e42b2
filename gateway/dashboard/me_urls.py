"""/me/ (any logged-in user: their own keys, usage and budgets)."""

from __future__ import annotations

from django.urls import path

from gateway.dashboard import views

app_name = "me"

urlpatterns = [
    path("", views.me, name="index"),
    path("login/", views.me_login, name="login"),
    path("logout/", views.me_logout, name="logout"),
]
