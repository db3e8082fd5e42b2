"""Django admin: key issuance shows the secret once and stores its hash; env providers are read-only."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.test import Client
from selectolax.lexbor import LexborHTMLParser as HTMLParser

from gateway.keys import key_hash
from gateway.models import ApiKey
from providers.models import Provider, ProviderSource

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client: Client) -> Client:
    User.objects.create_superuser(username="boss", password="x" * 16)
    client.login(username="boss", password="x" * 16)
    return client


def test_admin_is_staff_only(client: Client) -> None:
    User.objects.create_user(username="plain", password="y" * 16)
    client.login(username="plain", password="y" * 16)
    response = client.get("/admin/gateway/apikey/")
    assert response.status_code == 302 and "/admin/login/" in response["location"]


def _issue(staff: Client, owner: User, **fields: str) -> tuple[HttpResponse, str]:
    response = staff.post("/admin/gateway/apikey/add/", {"user": owner.pk, "name": "laptop", **fields})
    assert response.status_code == 200, response.content[:2000]
    tree = HTMLParser(response.content.decode())
    shown = tree.css_first("#new-api-key")
    assert shown is not None, response.content[:3000]
    return response, shown.attributes["value"] or ""


def test_issue_key_in_admin_shows_secret_once(staff: Client, caplog: pytest.LogCaptureFixture) -> None:
    owner = User.objects.create_user(username="dev", password="z" * 16)
    caplog.set_level(logging.DEBUG)
    response, secret = _issue(staff, owner, expires_days="30")
    assert re.fullmatch(r"sk-lynkr-[a-z0-9]{8}_[A-Za-z0-9]{40}", secret), secret
    # Rendered in the response to the POST itself (no redirect to a page that would need the secret kept), and
    # not cached by the browser.
    assert "no-store" in response["Cache-Control"]
    lines = HTMLParser(response.content.decode()).css_first("#claude-code-lines")
    assert lines is not None
    assert lines.text().splitlines() == [
        f"export ANTHROPIC_BASE_URL={settings.LYNKR_PUBLIC_URL.rstrip('/')}",
        f"export ANTHROPIC_API_KEY={secret}",
        "export CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
    ]
    assert 'data-copy="new-api-key"' in response.content.decode() and "navigator.clipboard" in response.content.decode()
    row = ApiKey.objects.get(user=owner)
    assert row.key_hash == key_hash(secret) and row.name == "laptop" and row.expires_at is not None
    # Kept nowhere on the server: not in the session, not in a message cookie, not in the admin log, not logged.
    session = staff.session
    assert all(secret not in str(value) for value in session.values())
    assert all(secret not in morsel.value for morsel in staff.cookies.values())
    assert not LogEntry.objects.filter(change_message__contains=secret).exists()
    assert not LogEntry.objects.filter(object_repr__contains=secret).exists()
    assert all(secret not in record.getMessage() for record in caplog.records)
    # Not shown again: the change page, the list and the user's page show the prefix only.
    for url in (
        f"/admin/gateway/apikey/{row.pk}/change/",
        "/admin/gateway/apikey/",
        f"/admin/auth/user/{owner.pk}/change/",
    ):
        page = staff.get(url).content.decode()
        assert row.prefix in page and secret not in page, url


def test_claude_code_lines_include_the_base_path(staff: Client, settings: Any) -> None:
    settings.LYNKR_PUBLIC_URL = "https://gw.example.test/"
    settings.LYNKR_BASE_PATH = "llm/"
    owner = User.objects.create_user(username="dev", password="z" * 16)
    response, secret = _issue(staff, owner)
    lines = HTMLParser(response.content.decode()).css_first("#claude-code-lines")
    assert lines is not None
    assert lines.text().splitlines()[:2] == [
        "export ANTHROPIC_BASE_URL=https://gw.example.test/llm",
        f"export ANTHROPIC_API_KEY={secret}",
    ]


def test_issue_form_offers_active_users_and_explains_expiry(staff: Client) -> None:
    active = User.objects.create_user(username="active-dev")
    gone = User.objects.create_user(username="gone-dev", is_active=False)
    page = staff.get(f"/admin/gateway/apikey/add/?user={active.pk}").content.decode()
    tree = HTMLParser(page)
    options = {o.attributes.get("value"): o for o in tree.css("#id_user option")}
    assert str(active.pk) in options and str(gone.pk) not in options
    assert "selected" in options[str(active.pk)].attributes  # preselected from the user's page link
    assert 'name="_addanother"' not in page and 'name="_continue"' not in page
    response = staff.post("/admin/gateway/apikey/add/", {"user": active.pk, "name": "x", "expires_days": "0"})
    assert "leave it empty for a key that does not expire" in response.content.decode()
    refused = staff.post("/admin/gateway/apikey/add/", {"user": gone.pk, "name": "x"})
    assert refused.status_code == 200 and "new-api-key" not in refused.content.decode()
    assert not ApiKey.objects.exists()


@pytest.mark.django_db(transaction=True)  # the key lookup runs on another thread; commit hooks run for real
def test_revoke_action_refuses_the_key_at_once(staff: Client) -> None:
    from asgiref.sync import async_to_sync

    from gateway.auth import request_authenticate
    from gateway.errors import AuthenticationError

    owner = User.objects.create_user(username="dev2", password="z" * 16)
    _, secret = _issue(staff, owner)
    row = ApiKey.objects.get(user=owner)
    assert async_to_sync(request_authenticate)({"x-api-key": secret}).id == row.pk  # now in the key cache
    staff.post("/admin/gateway/apikey/", {"action": "revoke", "_selected_action": [row.pk]})
    row.refresh_from_db()
    assert row.revoked_at is not None
    with pytest.raises(AuthenticationError):  # the cache was cleared: not served from it for another TTL
        async_to_sync(request_authenticate)({"x-api-key": secret})
    listing = staff.get("/admin/gateway/apikey/?status=revoked").content.decode()
    assert row.prefix in listing
    assert row.prefix not in staff.get("/admin/gateway/apikey/?status=active").content.decode()


def test_env_provider_is_read_only_and_credential_masked(staff: Client) -> None:
    env_row = Provider.objects.create(
        name="from-env", base_url="https://a", api_key_env="AZURE_ANTHROPIC_API_KEY", source=ProviderSource.ENV
    )
    admin_row = Provider.objects.create(name="mine", base_url="https://b", api_key="sk-ant-supersecretvalue")
    listing = staff.get("/admin/providers/provider/").content.decode()
    assert "from environment" in listing and "sk-ant-supersecretvalue" not in listing
    change = staff.get(f"/admin/providers/provider/{admin_row.pk}/change/").content.decode()
    assert "sk-ant-supersecretvalue" not in change  # password widget never renders the stored value
    # Saving without retyping the credential keeps it.
    staff.post(
        f"/admin/providers/provider/{admin_row.pk}/change/",
        {"name": "mine", "kind": "anthropic", "base_url": "https://b2", "api_key": "", "api_key_env": "",
         "auth_style": "x-api-key", "api_version": "2023-06-01", "model_override": "", "advertised_models": "[]",
         "supports_count_tokens": "on", "enabled": "on", "priority": "100", "options": "{}",
         "supports_tools": "on", "supports_images": "on",
         "mappings-TOTAL_FORMS": "0", "mappings-INITIAL_FORMS": "0"},
    )  # fmt: skip
    admin_row.refresh_from_db()
    assert admin_row.base_url == "https://b2" and admin_row.api_key == "sk-ant-supersecretvalue"
    env_page = staff.get(f"/admin/providers/provider/{env_row.pk}/change/")
    assert env_page.status_code == 200 and 'name="base_url"' not in env_page.content.decode()
