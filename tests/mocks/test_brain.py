"""The backend-neutral scripted model (no HTTP): every script, step by step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.mocks.brain import (
    REASONING_TEXT,
    TITLE_JSON,
    Brain,
    Reply,
    ToolCall,
    Turn,
    next_call_id,
    parse_arguments,
)

TOOLS = ["Bash", "Edit", "Read", "Write"]
SYSTEM = Turn("system", "# Environment\nPrimary working directory: /tmp/proj\nPlatform: linux")
REMINDER = "<system-reminder>\nToday's date is 2026-11-26.\n</system-reminder>"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "claude_code"


def ask(turns: list[Turn], **flags: Any) -> Reply:
    return Brain().reply(turns, TOOLS, **flags)


def start(prompt: str) -> list[Turn]:
    return [SYSTEM, Turn("user", REMINDER), Turn("user", prompt)]


def answer(turns: list[Turn], reply: Reply, result: str, images: int = 0) -> list[Turn]:
    """The conversation after the client ran the reply's (single) tool call."""
    (call,) = reply.tool_calls
    return [*turns, Turn("assistant", tool_calls=[call]), Turn("tool", result, tool_call_id=call.id, images=images)]


def only_call(reply: Reply) -> ToolCall:
    assert reply.text == ""
    assert reply.reasoning == ""
    (call,) = reply.tool_calls
    assert call.id.startswith("call_")
    return call


def test_create_file_then_done() -> None:
    turns = start("Create a file hello.txt containing hi there")
    call = only_call(ask(turns))
    assert (call.name, call.arguments) == ("Write", {"file_path": "/tmp/proj/hello.txt", "content": "hi there"})
    done = ask(answer(turns, ask(turns), "File created successfully at: /tmp/proj/hello.txt"))
    assert done == Reply(text="DONE")


def test_run_command_then_output() -> None:
    turns = start("Run the command: echo lynkr-$((6*7))")
    reply = ask(turns)
    call = only_call(reply)
    assert (call.name, call.arguments) == ("Bash", {"command": "echo lynkr-$((6*7))", "description": "run"})
    assert ask(answer(turns, reply, "lynkr-42\n")) == Reply(text="OUTPUT: lynkr-42")


def test_replace_reads_then_edits_then_done() -> None:
    turns = start("Replace foo with bar in notes.txt")
    read = ask(turns)
    assert only_call(read).name == "Read"
    assert only_call(read).arguments == {"file_path": "/tmp/proj/notes.txt"}
    turns = answer(turns, read, "     1\tfoo baz\n")
    edit = ask(turns)
    args = {"file_path": "/tmp/proj/notes.txt", "old_string": "foo", "new_string": "bar"}
    assert (only_call(edit).name, only_call(edit).arguments) == ("Edit", args)
    assert ask(answer(turns, edit, "The file /tmp/proj/notes.txt has been updated.")) == Reply(text="DONE")


def test_replace_accepts_quoted_strings() -> None:
    call = only_call(ask(start("Replace \"old text\" with 'new text' in dir/a.md.")))
    assert call.arguments == {"file_path": "/tmp/proj/dir/a.md"}
    turns = answer(start("Replace \"old text\" with 'new text' in dir/a.md."), Reply(tool_calls=[call]), "x")
    edit = only_call(ask(turns))
    assert (edit.arguments["old_string"], edit.arguments["new_string"]) == ("old text", "new text")


@pytest.mark.parametrize(
    ("tool_images", "user_images", "expected"),
    [(1, 0, "IMAGE SEEN"), (0, 2, "IMAGE SEEN"), (0, 0, "NO IMAGE")],
)
def test_describe_image(tool_images: int, user_images: int, expected: str) -> None:
    turns = start("Describe the image shot.png")
    read = ask(turns)
    assert only_call(read).arguments == {"file_path": "/tmp/proj/shot.png"}
    turns = answer(turns, read, "[image]", images=tool_images)
    if user_images:
        # How a gateway carries a tool result's image to OpenAI: a user message after the tool message.
        turns.append(Turn("user", "Image from the tool result:", images=user_images))
    assert ask(turns) == Reply(text=expected)


def test_images_before_the_read_result_do_not_count() -> None:
    turns = start("Describe the image shot.png")
    turns[-1].images = 1  # an image pasted with the prompt is not the tool result's
    assert ask(answer(turns, ask(turns), "[image]")) == Reply(text="NO IMAGE")


def test_plain_answers() -> None:
    assert ask(start("What is 2+2?")) == Reply(text="4")
    assert ask(start("hi there")) == Reply(text="Hello from mock")
    assert ask([Turn("user", REMINDER)]) == Reply(text="Hello from mock")


def test_reasoning_only_on_text_replies() -> None:
    assert ask(start("What is 2+2?"), reasoning=True) == Reply(text="4", reasoning=REASONING_TEXT)
    assert ask(start("Create a file a containing b"), reasoning=True).reasoning == ""


def test_title_call() -> None:
    assert ask(start("Create a file a containing b"), json_output=True) == Reply(text=TITLE_JSON)
    title_system = Turn("system", "Generate a concise title for this session. Reply as JSON: {title}.")
    assert Brain().reply([title_system, Turn("user", "fix the bug")], []) == Reply(text=TITLE_JSON)
    assert json.loads(TITLE_JSON) == {"title": "Mock title"}


def test_reminders_are_skipped_even_when_merged_into_the_prompt() -> None:
    turns = [SYSTEM, Turn("user", f"{REMINDER}\nCreate a file x.txt containing y\n{REMINDER}")]
    assert only_call(ask(turns)).arguments == {"file_path": "/tmp/proj/x.txt", "content": "y"}


def test_working_dir_from_a_mid_conversation_system_turn() -> None:
    # Claude Code 2.1.332 sends its environment as a role:"system" message after the prompt.
    turns = [Turn("user", "Create a file x.txt containing y"), Turn("system", " - Primary working directory: /w/p")]
    assert only_call(ask(turns)).arguments["file_path"] == "/w/p/x.txt"


def test_no_working_dir_keeps_the_name_and_absolute_paths_stay() -> None:
    assert only_call(ask([Turn("user", "Create a file x.txt containing y")])).arguments["file_path"] == "x.txt"
    assert only_call(ask(start("Create a file /abs/x.txt containing y"))).arguments["file_path"] == "/abs/x.txt"


def test_text_next_to_a_tool_result_is_not_a_new_prompt() -> None:
    turns = start("Create a file a.txt containing b")
    turns = answer(turns, ask(turns), "ok")
    turns.append(Turn("user", "(image attachments of the tool result follow)"))
    assert ask(turns) == Reply(text="DONE")


def test_a_new_prompt_starts_a_new_script() -> None:
    turns = start("Create a file a.txt containing b")
    turns = answer(turns, ask(turns), "ok")
    turns += [Turn("assistant", "DONE"), Turn("user", "What is 2+2?")]
    assert ask(turns) == Reply(text="4")


def test_result_ids_in_any_format_are_matched() -> None:
    call = ToolCall("toolu_01ABC", "Write", {})
    turns = [*start("Create a file a containing b"), Turn("assistant", tool_calls=[call])]
    turns.append(Turn("tool", "ok", tool_call_id="toolu_01ABC"))
    assert ask(turns) == Reply(text="DONE")
    turns[-1].tool_call_id = "someone-else"
    assert ask(turns).tool_calls[0].name == "Write"


def test_missing_tool_is_reported() -> None:
    assert Brain().reply(start("Create a file a containing b"), ["Bash"]) == Reply(text="MISSING TOOL Write")


def test_call_ids_are_unique() -> None:
    ids = {next_call_id() for _ in range(50)} | {only_call(ask(start("Run the command: ls"))).id for _ in range(5)}
    assert len(ids) == 55
    assert all(i.startswith("call_") and i.removeprefix("call_").isdigit() for i in ids)


def test_parse_arguments() -> None:
    assert parse_arguments('{"a": 1}') == {"a": 1}
    assert parse_arguments({"a": 1}) == {"a": 1}
    assert parse_arguments("") == {}
    assert parse_arguments("not json") == {}
    assert parse_arguments("[1]") == {}
    assert parse_arguments(None) == {}


def _anthropic_turns(body: dict[str, Any]) -> list[Turn]:
    """A minimal Anthropic -> neutral conversion, to run the real Claude Code bodies through the brain."""
    turns = [Turn("system", "\n".join(block["text"] for block in body["system"]))]
    for message in body["messages"]:
        content = message["content"]
        if isinstance(content, str):
            turns.append(Turn(message["role"], content))
            continue
        texts = [block["text"] for block in content if block.get("type", "text") == "text"]
        calls = [ToolCall(b["id"], b["name"], b["input"]) for b in content if b.get("type") == "tool_use"]
        for block in content:
            if block.get("type") == "tool_result":
                turns.append(Turn("tool", str(block["content"]), tool_call_id=block["tool_use_id"]))
        if texts or calls:
            turns.append(Turn(message["role"], "\n".join(texts), calls))
    return turns


@pytest.mark.parametrize("version", ["2.1.197", "2.1.332"])
def test_real_claude_code_bodies(version: str) -> None:
    turn1 = json.loads((FIXTURES / f"{version}-turn1.json").read_text())
    tools = [tool["name"] for tool in turn1["tools"]]
    call = only_call(Brain().reply(_anthropic_turns(turn1), tools))
    assert call.name == "Write"
    assert call.arguments["content"] == "hi"
    assert call.arguments["file_path"].endswith("/project/hello.txt")
    turn2 = json.loads((FIXTURES / f"{version}-turn2.json").read_text())
    assert Brain().reply(_anthropic_turns(turn2), tools) == Reply(text="DONE")
