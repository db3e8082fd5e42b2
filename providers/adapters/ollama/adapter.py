"""The Ollama adapter behind the narrow adapter interface."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from gateway.wire.errors import GatewayError
from providers.adapters.base import InboundContext, StreamDecoder, UpstreamRequest
from providers.adapters.common.signatures import signature_mint
from providers.adapters.ollama import translate
from providers.adapters.ollama.client import ollama_model_info
from providers.adapters.ollama.errors import ollama_error
from providers.adapters.ollama.stream import decoder_for
from providers.adapters.ollama.wire import provider_with_model_info
from providers.routing import ProviderConfig, Route


def ollama_signer(inbound: InboundContext) -> Callable[[str], str]:
    """Thinking we relay is signed as ours; the text itself is what gets echoed back (the message's ``thinking``)."""
    return lambda _text: signature_mint({"k": OllamaAdapter.kind}, inbound.signing_key)


class OllamaAdapter:
    kind = "ollama"

    async def prepare(self, route: Route) -> Route:
        """Fill in context length and capabilities from /api/show (cached; unknown on failure)."""
        info = await ollama_model_info(route.provider, route.upstream_model)
        return dataclasses.replace(route, provider=provider_with_model_info(route.provider, info))

    def build_request(self, route: Route, body: dict[str, Any], inbound: InboundContext) -> UpstreamRequest:
        return translate.build_request(route, body, inbound)

    def stream_decoder(
        self, route: Route, body: dict[str, Any], inbound: InboundContext, content_type: str
    ) -> StreamDecoder:
        return decoder_for(
            content_type,
            message_id=f"msg_{uuid.uuid4().hex[:24]}",
            model=route.client_model,
            input_tokens=inbound.input_estimate,
            signer=ollama_signer(inbound),
        )

    def error_from_response(
        self, provider: ProviderConfig, status: int, headers: Mapping[str, str], body: bytes
    ) -> GatewayError:
        return ollama_error(provider, status, headers, body)
