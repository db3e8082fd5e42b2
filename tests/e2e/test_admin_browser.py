"""A person in a browser: log into admin, create a provider and a model mapping, and the next /v1/messages
goes where they said. Playwright drives Debian's Chromium (installed by .ci/run; reference/services.md)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import LynkrServer
from tests.mocks.anthropic_upstream import MockAnthropicUpstream

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


@pytest.fixture
def browser_page() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        message = "BROWSER TEST: Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("LYNKR_TEST_SERVICES") == "required":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        try:
            yield page
        finally:
            browser.close()


def _saved(page: object) -> None:
    message = page.wait_for_selector(".messagelist li", timeout=15000)  # type: ignore[attr-defined]
    assert "was added successfully" in message.inner_text(), page.content()  # type: ignore[attr-defined]


def test_admin_creates_provider_and_mapping_then_messages_use_them(browser_page: object, tmp_path: Path) -> None:
    page = browser_page
    with MockAnthropicUpstream() as upstream:
        server = LynkrServer(data_dir=tmp_path / "lynkr").start()
        try:
            base = server.url
            page.goto(f"{base}/admin/login/")  # type: ignore[attr-defined]
            page.fill("#id_username", "admin")  # type: ignore[attr-defined]
            page.fill("#id_password", server.admin_password)  # type: ignore[attr-defined]
            page.click("input[type=submit]")  # type: ignore[attr-defined]
            page.wait_for_url(f"{base}/admin/")  # type: ignore[attr-defined]

            page.goto(f"{base}/admin/providers/provider/add/")  # type: ignore[attr-defined]
            page.fill("#id_name", "browser-made")  # type: ignore[attr-defined]
            page.select_option("#id_kind", "anthropic")  # type: ignore[attr-defined]
            page.fill("#id_base_url", upstream.url)  # type: ignore[attr-defined]
            page.fill("#id_api_key", "upstream-from-browser")  # type: ignore[attr-defined]
            page.click("input[name=_save]")  # type: ignore[attr-defined]
            _saved(page)

            page.goto(f"{base}/admin/providers/modelmapping/add/")  # type: ignore[attr-defined]
            page.select_option("#id_match_type", "exact")  # type: ignore[attr-defined]
            page.fill("#id_pattern", "team-model")  # type: ignore[attr-defined]
            page.select_option("#id_provider", label="browser-made")  # type: ignore[attr-defined]
            page.fill("#id_upstream_model", "mapped-upstream")  # type: ignore[attr-defined]
            page.click("input[name=_save]")  # type: ignore[attr-defined]
            _saved(page)
            page.screenshot(path=str(tmp_path / "mapping-list.png"))  # type: ignore[attr-defined]

            response = httpx.post(
                f"{base}/v1/messages",
                headers={"x-api-key": server.api_key},
                json={"model": "team-model", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]},
                timeout=30,
            )
            assert response.status_code == 200, response.text
            assert response.headers["x-lynkr-route"] == "mapping:team-model"
            assert response.headers["x-lynkr-provider"] == "browser-made"
            assert response.json()["model"] == "team-model"
            sent = upstream.messages_requests[-1]
            assert sent.body is not None and sent.body["model"] == "mapped-upstream"
            assert sent.headers["x-api-key"] == "upstream-from-browser"
        finally:
            server.stop()
