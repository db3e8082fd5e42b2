"""The Anthropic adapter: the translate and stream modules behind the narrow adapter interface."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.wire.errors import GatewayError
from providers.adapters.anthropic import translate
from providers.adapters.anthropic.stream import AnthropicJsonDecoder, AnthropicSseDecoder
from providers.adapters.base import InboundContext, StreamDecoder, UpstreamRequest
from providers.routing import ProviderConfig, Route


class AnthropicAdapter:
    def build_request(self, route: Route, body: dict[str, Any], inbound: InboundContext) -> UpstreamRequest:
        return translate.build_request(route, body, inbound)

    def stream_decoder(
        self, route: Route, body: dict[str, Any], inbound: InboundContext, content_type: str
    ) -> StreamDecoder:
        if content_type.startswith("application/json"):
            return AnthropicJsonDecoder()
        return AnthropicSseDecoder()

    def error_from_response(
        self, provider: ProviderConfig, status: int, headers: Mapping[str, str], body: bytes
    ) -> GatewayError:
        return translate.error_from_response(provider, status, headers, body)

    def build_count_request(self, route: Route, body: dict[str, Any], inbound: InboundContext) -> UpstreamRequest:
        return translate.build_count_request(route, body, inbound)

    def parse_count_response(self, body: bytes) -> int:
        return translate.parse_count_response(body)
