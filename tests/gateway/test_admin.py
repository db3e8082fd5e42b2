"""Django admin: key issuance shows the secret once and stores its hash; env providers are read-only."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

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


def test_issue_key_in_admin_shows_secret_once(staff: Client) -> None:
    owner = User.objects.create_user(username="dev", password="z" * 16)
    response = staff.post(
        "/admin/gateway/apikey/add/", {"user": owner.pk, "name": "laptop", "expires_days": "30"}, follow=True
    )
    assert response.status_code == 200
    page = response.content.decode()
    match = re.search(r"(sk-lynkr-[a-z0-9]{8}_[A-Za-z0-9]{40})", page)
    assert match, page[:2000]
    secret = match.group(1)
    assert f"ANTHROPIC_API_KEY={secret}" in page
    row = ApiKey.objects.get(user=owner)
    assert row.key_hash == key_hash(secret) and row.name == "laptop" and row.expires_at is not None
    # Not shown again: the change page and the list show the prefix only.
    assert secret not in staff.get(f"/admin/gateway/apikey/{row.pk}/change/").content.decode()
    assert secret not in staff.get("/admin/gateway/apikey/").content.decode()


def test_revoke_action(staff: Client) -> None:
    owner = User.objects.create_user(username="dev2", password="z" * 16)
    staff.post("/admin/gateway/apikey/add/", {"user": owner.pk, "name": "k"})
    row = ApiKey.objects.get(user=owner)
    staff.post("/admin/gateway/apikey/", {"action": "revoke", "_selected_action": [row.pk]})
    row.refresh_from_db()
    assert row.revoked_at is not None


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
