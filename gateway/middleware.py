"""Request ids: taken from ``X-Request-ID`` when a caller sends a sane one, else generated; echoed back as
``request-id`` (Anthropic's header) and ``x-request-id`` on every response."""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from gateway.errors import ERRORS_BY_TYPE, ApiError, InvalidRequestError, error_response
from gateway.logcontext import log_context_clear, log_context_set

_SANE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_for(request: HttpRequest) -> str:
    """Always ours: usage records are keyed by it, so a caller must not be able to choose it."""
    return "req_" + secrets.token_hex(12)


def caller_request_id(request: HttpRequest) -> str:
    """The caller's X-Request-ID, when sane: echoed back and logged for correlation, never used as a key."""
    given = request.headers.get("x-request-id", "")
    return given if given and _SANE.match(given) else ""


class RequestIdMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]]):
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self._async:
            return self.__acall__(request)
        request.lynkr_request_id = request_id_for(request)  # type: ignore[attr-defined]
        response = self.get_response(request)
        assert isinstance(response, HttpResponseBase)
        return _stamp(request, response)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        request.lynkr_request_id = request_id_for(request)  # type: ignore[attr-defined]
        log_context_clear()
        log_context_set(request_id=request.lynkr_request_id, client_request_id=caller_request_id(request))  # type: ignore[attr-defined]
        response = await self.get_response(request)  # type: ignore[misc]
        return _stamp(request, response)


_TYPE_BY_STATUS = {cls.status: cls for cls in ERRORS_BY_TYPE.values()}


def _stamp(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    request_id: str = request.lynkr_request_id  # type: ignore[attr-defined]
    if (
        response.status_code >= 400
        and request.path.startswith(f"/{settings.LYNKR_BASE_PATH}v1")
        and not response.get("content-type", "").startswith("application/json")
    ):
        # A framework-made error (405 from the router, ...): answer in Anthropic's shape, never HTML/plain.
        error_class = _TYPE_BY_STATUS.get(
            response.status_code, ApiError if response.status_code >= 500 else InvalidRequestError
        )
        error = error_class(
            f"{request.method} {request.path}: HTTP {response.status_code}", status=response.status_code
        )
        replacement = error_response(error, request_id)
        if response.has_header("allow"):
            replacement["allow"] = response["allow"]
        response = replacement
    response["request-id"] = request_id
    response["x-request-id"] = caller_request_id(request) or request_id
    return response
