"""Where ``/mcp`` is mounted, without importing the MCP SDK: the SDK (with the Starlette, uvicorn and OpenTelemetry
modules it brings) adds tens of MB to every process, so the endpoint itself (mcp_app/asgi.py) is built on the first
``/mcp`` request and a deployment that never uses it never pays for it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from django.conf import settings

# Loosely typed on purpose: the apps mounted here (Django's, gateway/asgi_limits.py) type scope as a plain dict.
AsgiApp = Callable[[Any, Any, Any], Awaitable[None]]
App = TypeVar("App", bound=AsgiApp)


def mcp_path() -> str:
    """Under the same prefix as /v1 (LYNKR_BASE_PATH), e.g. ``/mcp`` or ``/gw/mcp``."""
    return f"/{settings.LYNKR_BASE_PATH}mcp"


class McpMount:
    """Routes ``/mcp`` (and ``/mcp/``) to the MCP app and every other request to ``fallback`` (Django)."""

    def __init__(self, mcp: AsgiApp, fallback: AsgiApp) -> None:
        self.mcp = mcp
        self.fallback = fallback
        path = mcp_path()
        self.paths = frozenset({path, path + "/"})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path") in self.paths:
            await self.mcp(scope, receive, send)
        else:
            await self.fallback(scope, receive, send)


class LazyApp(Generic[App]):
    """An ASGI app built by ``factory`` on its first request (building is synchronous: the first call imports)."""

    def __init__(self, factory: Callable[[], App]) -> None:
        self._factory = factory
        self._app: App | None = None

    def get(self) -> App:
        if self._app is None:
            self._app = self._factory()
        return self._app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.get()(scope, receive, send)
