"""ASGI entry point (served by Daphne): ``/mcp`` to the MCP endpoint, everything else to Django behind the
body-size guard, via Channels' router; Django's ``/v1/`` API through its own lean handler (gateway/asgi_api.py)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lynkr_site.settings.base")

from channels.routing import ProtocolTypeRouter
from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

django_application: Any = get_asgi_application()  # sets Django up: import the gateway's modules after this line

from gateway.asgi_api import ApiASGIHandler, PathDispatch  # noqa: E402
from gateway.asgi_limits import BodyLimitMiddleware  # noqa: E402
from mcp_app.mount import LazyApp, McpMount  # noqa: E402

if TYPE_CHECKING:
    from mcp_app.asgi import McpApplication

if settings.LYNKR_SERVE_STATIC:
    # The admin's CSS/JS straight from the installed apps (only paths under STATIC_URL are intercepted), so a
    # laptop needs no collectstatic and no separate file server; behind a CDN/nginx set LYNKR_SERVE_STATIC=false.
    django_application = ASGIStaticFilesHandler(django_application)

# The API without the browser middleware's per-request thread hops (gateway/asgi_api.py); same URLconf and views.
api_prefixes = (f"/{settings.LYNKR_BASE_PATH}v1/", "/bench/floor/")
django_application = PathDispatch(api_prefixes, ApiASGIHandler(), django_application)

# /mcp is served before Django: the MCP SDK speaks ASGI itself and enforces its own body limit (the same
# LYNKR_MAX_BODY_BYTES), and the endpoint authenticates before reading any body.


def _mcp_application() -> McpApplication:
    from mcp_app.asgi import McpApplication  # the MCP SDK: imported on the first /mcp request (mcp_app/mount.py)

    return McpApplication()


mcp_application = LazyApp(_mcp_application)
application = ProtocolTypeRouter(
    {"http": McpMount(mcp_application, BodyLimitMiddleware(django_application, settings.LYNKR_MAX_BODY_BYTES))}
)
