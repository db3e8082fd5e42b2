from __future__ import annotations

from typing import Any

import mcp_types as types
import pytest
from django.core import serializers

from mcp_app.results import clip, result_error_text, result_payload


def test_clip_cuts_on_a_character_boundary() -> None:
    assert clip("abc", 10) == ("abc", False)
    assert clip("ééé", 5) == ("éé", True)


def test_blocks_keep_the_mcp_wire_shape() -> None:
    result = types.CallToolResult(
        content=[
            types.TextContent(type="text", text="hello"),
            types.ImageContent(type="image", data="aGk=", mime_type="image/png"),
            types.ResourceLink(type="resource_link", uri="file:///a.txt", name="a.txt", description="a file"),
            types.EmbeddedResource(
                type="resource", resource=types.TextResourceContents(uri="file:///b.txt", text="bee")
            ),
        ],
        structured_content={"ok": True},
    )
    assert result_payload(result, max_bytes=10_000) == {
        "content": [
            {"type": "text", "text": "hello"},
            {"type": "image", "mimeType": "image/png", "data": "aGk="},
            {"type": "resource_link", "uri": "file:///a.txt", "name": "a.txt", "description": "a file"},
            {"type": "resource", "uri": "file:///b.txt", "text": "bee"},
        ],
        "structured_content": {"ok": True},
    }


def test_a_binary_block_over_the_budget_is_left_out_whole() -> None:
    result = types.CallToolResult(
        content=[
            types.TextContent(type="text", text="x" * 10),
            types.ImageContent(type="image", data="A" * 100, mime_type="image/png"),
        ]
    )
    payload = result_payload(result, max_bytes=50)
    assert payload["content"][1] == {
        "type": "image",
        "mimeType": "image/png",
        "omitted": "100 bytes, over the output limit",
    }
    assert payload["truncated"] is True


def test_error_text() -> None:
    failed = types.CallToolResult(content=[types.TextContent(type="text", text="boom")], is_error=True)
    assert result_error_text(failed, max_bytes=100) == "boom"
    assert "without a message" in result_error_text(types.CallToolResult(content=[], is_error=True), max_bytes=100)


@pytest.mark.django_db
def test_serialized_servers_hold_no_plaintext_secret(make_server: Any) -> None:
    server = make_server(env={"API_KEY": "sk-plaintext-value"})
    dumped = serializers.serialize("json", [server])
    assert "sk-plaintext-value" not in dumped
    (restored,) = serializers.deserialize("json", dumped)
    assert restored.object.env == {"API_KEY": "sk-plaintext-value"}
