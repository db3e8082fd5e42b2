"""Plain Django views: the root (Claude Code pre-warms with ``HEAD /``) and Anthropic-shaped fallbacks for
anything under /v1 that no operation matched, so no client ever sees a Django HTML error page."""

from __future__ import annotations

import orjson
from django.http import HttpRequest, HttpResponse

from gateway.errors import ApiError, NotFoundError, error_response


def root(request: HttpRequest) -> HttpResponse:
    return HttpResponse(orjson.dumps({"name": "lynkr", "status": "ok"}), content_type="application/json")


def _request_id(request: HttpRequest) -> str:
    return getattr(request, "lynkr_request_id", "")


def api_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(NotFoundError(f"{request.method} {request.path} is not an API route"), _request_id(request))


def server_error(request: HttpRequest) -> HttpResponse:
    return error_response(ApiError("internal gateway error"), _request_id(request))


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    from gateway.errors import InvalidRequestError

    return error_response(InvalidRequestError(str(exception) or "bad request"), _request_id(request))


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    from gateway.errors import PermissionDeniedError

    return error_response(PermissionDeniedError("permission denied"), _request_id(request))
