"""The issue's proof, in a browser: a lead logs into admin, sets a price, creates a user and issues them a key, reads
the secret shown once (and its copy button), uses it for /v1/messages, sees that request with its cost on the
dashboard, adds a budget on the user's page and sees the next request refused; then the user logs in to /me/ and
sees their own request and nobody else's.

Playwright drives Debian's Chromium (installed by .ci/run; reference/services.md) against a real ``lynkr serve``
with a scripted upstream. Screenshots go to ``$LYNKR_TEST_ARTIFACTS`` (default ``<tmp>/lynkr-artifacts``)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

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
MODEL = "dash-model-1"  # matches no seeded price: the only price is the one set in the browser
PRICE_IN, PRICE_OUT = Decimal("3"), Decimal("15")  # USD per million tokens
PASSWORDS = {"dev-alice": "alice-horse-battery-7", "dev-bob": "bob-staple-lantern-3"}
WAIT = 30.0  # seconds: upper bound for usage to be written behind and shown


def artifacts_dir() -> Path:
    path = Path(os.environ.get("LYNKR_TEST_ARTIFACTS") or Path(tempfile.gettempdir()) / "lynkr-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        message = "BROWSER TEST: Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("LYNKR_TEST_SERVICES") == "required":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[LynkrServer]:
    with MockAnthropicUpstream() as upstream:
        server = LynkrServer(
            data_dir=tmp_path / "lynkr",
            env_extra={
                "MODEL_PROVIDER": "azure-anthropic",
                "AZURE_ANTHROPIC_ENDPOINT": f"{upstream.url}/anthropic/v1/messages",
                "AZURE_ANTHROPIC_API_KEY": "upstream-secret",
                "API_RETRY_MAX_RETRIES": "0",
            },
        ).start()
        try:
            assert server.admin_password, server.log()
            yield server
        finally:
            server.stop()


def _saved(page: Any, what: str = "was added successfully") -> None:
    message = page.wait_for_selector(".messagelist li", timeout=15000)
    assert what in message.inner_text(), page.content()


def _admin_login(page: Any, base: str, password: str) -> None:
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")


def _create_user(page: Any, base: str, username: str) -> str:
    """Through the admin's user form; returns the user's change page URL (where the admin lands after adding)."""
    page.goto(f"{base}/admin/auth/user/add/")
    page.fill("#id_username", username)
    enabled = page.query_selector("input[name=usable_password][value=true]")
    if enabled is not None:  # Django >= 5.1 asks whether password login is enabled
        enabled.check()
    page.fill("#id_password1", PASSWORDS[username])
    page.fill("#id_password2", PASSWORDS[username])
    page.click("input[name=_save]")
    _saved(page)
    assert re.search(r"/admin/auth/user/\d+/change/$", page.url), page.url
    return str(page.url)


def _issue_key(page: Any, base: str, username: str, shots: Path | None = None) -> str:
    page.goto(f"{base}/admin/gateway/apikey/add/")
    page.select_option("#id_user", label=username)
    page.fill("#id_name", "laptop")
    page.fill("#id_expires_days", "30")
    page.click("input[name=_save]")
    shown = page.wait_for_selector("#new-api-key", timeout=15000)
    secret = str(shown.input_value())
    assert re.fullmatch(r"sk-lynkr-[a-z0-9]{8}_[A-Za-z0-9]{40}", secret), secret
    lines = page.inner_text("#claude-code-lines").splitlines()
    assert lines == [
        f"export ANTHROPIC_BASE_URL={base}",
        f"export ANTHROPIC_API_KEY={secret}",
        "export CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
    ]
    if shots is not None:
        page.click("button[data-copy=new-api-key]")
        page.wait_for_function("document.querySelector('.copy-status').textContent.length > 0")
        assert page.evaluate("navigator.clipboard.readText()") == secret
        page.screenshot(path=str(shots / "key-issued.png"), full_page=True)
    return secret


def _message(base: str, secret: str, text: str) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/messages",
        headers={"x-api-key": secret},
        json={"model": MODEL, "max_tokens": 20, "messages": [{"role": "user", "content": text}]},
        timeout=30,
    )


def _expected_cost(response: httpx.Response) -> Decimal:
    usage = response.json()["usage"]
    total = Decimal(usage["input_tokens"]) * PRICE_IN + Decimal(usage["output_tokens"]) * PRICE_OUT
    return total / Decimal(1_000_000)


def _row_when_written(page: Any, url: str, request_id: str) -> Any:
    """Usage is written behind (batched): reload until the row is there, for at most WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while True:
        page.goto(url)
        row = page.query_selector(f'#recent-requests tr[data-request-id="{request_id}"]')
        if row is not None:
            return row
        assert time.monotonic() < deadline, f"request {request_id} not on {url} after {WAIT}s:\n{page.content()}"
        page.wait_for_timeout(500)


def test_lead_issues_a_key_sees_the_cost_caps_the_budget_and_the_user_sees_only_their_own(
    browser: Any, gateway: LynkrServer
) -> None:
    base, shots = gateway.url, artifacts_dir()
    print(f"\nscreenshots: {shots}")
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    _admin_login(page, base, gateway.admin_password)

    page.goto(f"{base}/admin/gateway/priceentry/add/")
    page.fill("#id_model_pattern", "dash-model-*")
    page.fill("#id_input_per_mtok", str(PRICE_IN))
    page.fill("#id_output_per_mtok", str(PRICE_OUT))
    page.fill("#id_note", "browser test")
    page.click("input[name=_save]")
    _saved(page)

    alice_page = _create_user(page, base, "dev-alice")
    alice_key = _issue_key(page, base, "dev-alice", shots=shots)
    _create_user(page, base, "dev-bob")
    bob_key = _issue_key(page, base, "dev-bob")

    answered = _message(base, alice_key, "hello from alice")
    assert answered.status_code == 200, answered.text
    alice_request = answered.headers["request-id"]
    bob_answer = _message(base, bob_key, "hello from bob")
    assert bob_answer.status_code == 200, bob_answer.text
    bob_request = bob_answer.headers["request-id"]

    # The dashboard lists the request under its full id, with its cost.
    row = _row_when_written(page, f"{base}/dashboard/", alice_request)
    cost = _expected_cost(answered)
    assert cost > 0
    cell = row.query_selector("td.cost")
    assert Decimal(cell.get_attribute("data-cost-usd")) == cost
    assert cell.inner_text().strip() == f"${cost.quantize(Decimal('0.000001'), rounding=ROUND_HALF_UP):.6f}"
    assert "dev-alice" in row.inner_text()
    page.screenshot(path=str(shots / "dashboard.png"), full_page=True)

    # A budget below one request's price, added on the user's own admin page: the next request is refused.
    page.goto(alice_page)
    page.click("#budget_set-group .add-row a")
    page.fill("#id_budget_set-0-name", "alice cap")
    page.select_option("#id_budget_set-0-period", "total")
    page.fill("#id_budget_set-0-limit_usd", "0.0001")
    page.click("input[name=_save]")
    _saved(page, "was changed successfully")
    refused = _message(base, alice_key, "hello again")
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["type"] == "rate_limit_error" and "alice cap" in error["message"], error
    assert _message(base, bob_key, "bob is not capped").status_code == 200
    page.goto(alice_page)
    assert page.input_value("#id_budget_set-0-limit_usd") == "0.0001"
    page.screenshot(path=str(shots / "user-with-budget.png"), full_page=True)
    context.close()

    # Alice, who is not staff, logs in to /me/: her request and budget are there, Bob's data is not.
    own = browser.new_context()
    mine = own.new_page()
    mine.goto(f"{base}/me/")
    mine.wait_for_selector("#id_username")
    mine.fill("#id_username", "dev-alice")
    mine.fill("#id_password", PASSWORDS["dev-alice"])
    mine.click("input[type=submit]")
    mine.wait_for_url(f"{base}/me/")
    _row_when_written(mine, f"{base}/me/", alice_request)
    html = mine.content()
    assert "alice cap" in mine.inner_text("#my-budgets")
    assert alice_key.split("_")[0] in mine.inner_text("#my-keys")
    assert bob_request not in html and "dev-bob" not in html and bob_key.split("_")[0] not in html
    assert alice_key not in html  # the secret is not shown again, even to its owner
    mine.screenshot(path=str(shots / "me.png"), full_page=True)
    mine.goto(f"{base}/dashboard/")  # staff only
    assert "/dashboard/" not in mine.url.split("?")[0] and "recent-requests" not in mine.content()
    own.close()
    log = gateway.log()
    assert alice_key not in log and bob_key not in log  # issued keys are never logged
