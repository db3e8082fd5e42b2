"""The OpenAI chat completions adapter behind the narrow adapter interface."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from gateway.wire.body import SharedTools
from gateway.wire.errors import GatewayError
from providers.adapters.base import InboundContext, StreamDecoder, UpstreamRequest
from providers.adapters.common.content import tools_declared, tools_revealed
from providers.adapters.common.signatures import signature_mint
from providers.adapters.common.toolnames import toolname_reverse_map
from providers.adapters.openai_chat import translate
from providers.adapters.openai_chat.errors import openai_error
from providers.adapters.openai_chat.stream import decoder_for
from providers.routing import ProviderConfig, Route


def chat_signer(inbound: InboundContext, kind: str) -> Callable[[str], str]:
    """Thinking we relay is signed as ours; the text itself is what gets echoed back (reasoning_content)."""
    return lambda _text: signature_mint({"k": kind}, inbound.signing_key)


def tool_names_reverse(body: dict[str, Any]) -> dict[str, str]:
    """Encoded -> original tool names. Tools revealed by ToolSearch are declared upstream too (tools_for_backend),
    so their names come back. Of a request's shared tools (gateway/wire/body.py) the map is made once."""
    tools = body.get("tools")
    declared = tools_declared(tools)
    revealed = tools_revealed(declared, body.get("messages") or [])
    if revealed or not isinstance(tools, SharedTools):
        return _reverse_map(declared + revealed)
    return tools.derive(_NAMES, lambda: _reverse_map(declared))


def _reverse_map(tools: list[dict[str, Any]]) -> dict[str, str]:
    return toolname_reverse_map([str(t.get("name", "")) for t in tools])


_NAMES = "openai_chat.tool_names_reverse"


class OpenAIChatAdapter:
    kind = "openai_chat"

    def url(self, route: Route) -> str | None:
        return None

    def build_request(self, route: Route, body: dict[str, Any], inbound: InboundContext) -> UpstreamRequest:
        return translate.build_request(route, body, inbound, url=self.url(route))

    def stream_decoder(
        self, route: Route, body: dict[str, Any], inbound: InboundContext, content_type: str
    ) -> StreamDecoder:
        names = tool_names_reverse(body)
        return decoder_for(
            content_type,
            message_id=f"msg_{uuid.uuid4().hex[:24]}",
            model=route.client_model,
            input_tokens=inbound.input_estimate,
            names=names,
            stop_sequences=list(body.get("stop_sequences") or []),
            signer=chat_signer(inbound, self.kind),
        )

    def error_from_response(
        self, provider: ProviderConfig, status: int, headers: Mapping[str, str], body: bytes
    ) -> GatewayError:
        return openai_error(provider, status, headers, body)
