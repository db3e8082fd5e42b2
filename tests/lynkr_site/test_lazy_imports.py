"""The server process loads neither httpx (~5 MB RSS with rich and pygments), jsonschema (~2 MB) nor the MCP SDK
(~21 MB with starlette, anyio and opentelemetry) until something needs them: a module-level import of any of them on
the serve path fails here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The serve path (the CLI's parser, lynkr serve's start-up imports, the API modules, the URLconf the first request
# loads, the upstream TLS context) and the modules that use httpx, jsonschema or the MCP SDK only in some functions.
SERVE = """
import sys
import django
django.setup()
import lynkr_site.cli
lynkr_site.cli.build_parser()
import gateway.keys, gateway.services, providers.services, workspace.services, mcp_app.services
from lynkr_site.serve import heap_freeze
heap_freeze()
import lynkr_site.asgi, gateway.api, workspace.api
from django.urls import get_resolver
get_resolver().url_patterns
import gateway.health, providers.adapters.ollama.client, workspace.web.fetch, workspace.web.search
import workspace.tools.registry
import providers.adapters.http as h
h._ssl_context()
print(sorted(m for m in ("httpx", "jsonschema", "mcp", "mcp_types") if m in sys.modules))
"""


def test_the_serve_path_imports_neither_httpx_jsonschema_nor_the_mcp_sdk(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LYNKR_", "DATABASE_URL", "REDIS_URL", "DJANGO_"))}
    env.update({"LYNKR_DATA_DIR": str(tmp_path), "LYNKR_ENV_FILE": "/nonexistent",
                "DJANGO_SETTINGS_MODULE": "lynkr_site.settings.base"})  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", SERVE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    # On failure, `python -X importtime -c ...` shows which module imported it.
    assert result.stdout.strip().splitlines()[-1] == "[]"
