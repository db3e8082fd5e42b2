"""The narrow adapter interface every backend implements (pure types; no I/O here).

An adapter turns a canonical request into an ``UpstreamRequest`` (pure), decodes the upstream's byte stream
into Anthropic stream events (pure, incremental), and maps an upstream HTTP failure to a gateway error (pure).
Sending is shared (``providers.adapters.http``). Optional capabilities, such as forwarding token counts,
are separate protocols.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from gateway.wire.errors import GatewayError
from providers.routing import ProviderConfig, Route

Event = dict[str, Any]


@dataclass(frozen=True, slots=True)
class InboundContext:
    """What of the client's request an adapter may use besides the body."""

    anthropic_version: str = ""
    anthropic_beta: str = ""
    request_id: str = ""
    input_estimate: int = 0  # tokens, estimated from the body size (message_start before the upstream reports)
    signing_key: bytes = field(default=b"", repr=False)  # for thinking signatures we mint


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    body: bytes = field(repr=False)
    connect_timeout: float = 10.0
    read_timeout: float = 600.0


class StreamDecoder(Protocol):
    def feed(self, chunk: bytes) -> list[Event]: ...

    def flush(self) -> list[Event]: ...


class Adapter(Protocol):
    def build_request(self, route: Route, body: dict[str, Any], inbound: InboundContext) -> UpstreamRequest: ...

    def stream_decoder(
        self, route: Route, body: dict[str, Any], inbound: InboundContext, content_type: str
    ) -> StreamDecoder: ...

    def error_from_response(
        self, provider: ProviderConfig, status: int, headers: Mapping[str, str], body: bytes
    ) -> GatewayError: ...


@runtime_checkable
class TokenCounter(Protocol):
    """Optional: the backend counts tokens itself."""

    def build_count_request(self, route: Route, body: dict[str, Any], inbound: InboundContext) -> UpstreamRequest: ...

    def parse_count_response(self, body: bytes) -> int: ...


@runtime_checkable
class RoutePreparer(Protocol):
    """Optional: learn what the target model can do before translating (e.g. Ollama's /api/show), cached by the
    adapter; returns the route with the provider's capabilities filled in."""

    async def prepare(self, route: Route) -> Route: ...
