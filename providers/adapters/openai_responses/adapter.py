"""The OpenAI Responses API adapter behind the narrow adapter interface (OpenAI and Azure OpenAI)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from gateway.wire.errors import GatewayError
from providers.adapters.base import InboundContext, StreamDecoder, UpstreamRequest
from providers.adapters.common.content import tools_for_backend
from providers.adapters.common.toolnames import toolname_reverse_map
from providers.adapters.openai_responses import translate
from providers.adapters.openai_responses.errors import openai_error
from providers.adapters.openai_responses.stream import decoder_for
from providers.routing import ProviderConfig, Route


class OpenAIResponsesAdapter:
    kind = "openai_responses"

    def build_request(self, route: Route, body: dict[str, Any], inbound: InboundContext) -> UpstreamRequest:
        return translate.build_request(route, body, inbound)

    def stream_decoder(
        self, route: Route, body: dict[str, Any], inbound: InboundContext, content_type: str
    ) -> StreamDecoder:
        # The same tool list the request declared (tools revealed by ToolSearch included), to undo name encoding.
        tools = tools_for_backend(body.get("tools"), body.get("messages") or [])
        return decoder_for(
            content_type,
            message_id=f"msg_{uuid.uuid4().hex[:24]}",
            model=route.client_model,
            input_tokens=inbound.input_estimate,
            names=toolname_reverse_map([str(t.get("name", "")) for t in tools]),
            secret=inbound.signing_key,
        )

    def error_from_response(
        self, provider: ProviderConfig, status: int, headers: Mapping[str, str], body: bytes
    ) -> GatewayError:
        return openai_error(provider, status, headers, body)
