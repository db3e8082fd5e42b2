"""A backend-neutral scripted "model" for the mock upstreams.

Every mock converts its vendor's request into a list of ``Turn`` and asks
``Brain.reply``; the answer (``Reply``) is then rendered in that vendor's wire
format. The scripts are chosen from the last prompt the *user* typed (texts
starting with ``<system-reminder>`` and user turns that only carry a tool
result's attachments are skipped), and the step within a script from the tool
results that arrived after that prompt. Scripts:

- "Create a file NAME containing TEXT" -> Write{file_path: <cwd>/NAME, content}; then "DONE".
- "Run the command: CMD"               -> Bash{command, description: "run"}; then "OUTPUT: <result>".
- "Replace OLD with NEW in NAME"       -> Read{file_path}; then Edit{file_path, old_string, new_string}; then "DONE".
- "Describe the image NAME"            -> Read{file_path}; then "IMAGE SEEN" if an image came back with
                                          the result (on the tool turn or a user turn right after it), else "NO IMAGE".
- "What is 2+2?" -> "4"; a JSON-title request -> '{"title": "Mock title"}'; anything else -> "Hello from mock".

The working directory is read from ``Primary working directory: <path>`` in any
system or user text (Claude Code's environment section).
"""

from __future__ import annotations

import itertools
import json
import posixpath
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Brain",
    "Reply",
    "ToolCall",
    "Turn",
    "next_call_id",
    "parse_arguments",
]

Role = Literal["system", "user", "assistant", "tool"]

_CWD = re.compile(r"Primary working directory: (.+)")
_CREATE = re.compile(r"create a file (\S+) containing (.+)", re.IGNORECASE)
_RUN = re.compile(r"run the command:\s*(.+)", re.IGNORECASE)
_ARG = r"(?:\"([^\"]*)\"|'([^']*)'|`([^`]*)`|(\S+))"
_REPLACE = re.compile(rf"replace {_ARG} with {_ARG} in (\S+)", re.IGNORECASE)
_DESCRIBE = re.compile(r"describe the image (\S+)", re.IGNORECASE)
_TWO_PLUS_TWO = re.compile(r"what is 2\s*\+\s*2", re.IGNORECASE)
_TITLE_WORD = re.compile(r"\btitle\b", re.IGNORECASE)
_JSON_WORD = re.compile(r"\bjson\b", re.IGNORECASE)
_REMINDER = "<system-reminder>"

TITLE_JSON = '{"title": "Mock title"}'
REASONING_TEXT = "thinking about it"

_counter = itertools.count(1)
_counter_lock = threading.Lock()


def next_call_id(prefix: str = "call") -> str:
    """Process-wide unique, deterministic ids: call_1, call_2, ... (OpenAI style)."""
    with _counter_lock:
        return f"{prefix}_{next(_counter)}"


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass
class Turn:
    role: Role
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None  # on role "tool": the call it answers
    images: int = 0  # images attached to this turn


@dataclass
class Reply:
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    reasoning: str = ""


def parse_arguments(arguments: Any) -> dict[str, Any]:
    """Tool-call arguments as a dict, from a JSON string (OpenAI) or an object (Ollama); {} if unusable."""
    if isinstance(arguments, dict):
        return arguments
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments or "{}")
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _clean(value: str) -> str:
    return value.strip().rstrip(".!?,;:").strip("\"'` ")


def _working_dir(turns: Sequence[Turn]) -> str | None:
    for turn in turns:
        if turn.role in ("system", "user"):
            found = _CWD.search(turn.text)
            if found:
                return found.group(1).strip()
    return None


def _prompt_index(turns: Sequence[Turn]) -> int | None:
    """Index of the last user turn that carries a typed prompt.

    A user turn directly after tool results (possibly after other such turns)
    only carries that result's attachments, e.g. the image a gateway moved out
    of an OpenAI ``tool`` message; it is not a new prompt.
    """
    found: int | None = None
    after_tool = False
    for index, turn in enumerate(turns):
        if turn.role == "tool":
            after_tool = True
        elif turn.role == "assistant":
            after_tool = False
        elif turn.role == "user" and not after_tool and _prompt_text(turn):
            found = index
    return found


def _prompt_text(turn: Turn) -> str:
    # A gateway may merge several Anthropic text blocks into one text (joined by
    # newlines); drop the <system-reminder> blocks wherever they sit.
    text = re.sub(r"<system-reminder>.*?</system-reminder>", "", turn.text, flags=re.DOTALL)
    return "" if text.lstrip().startswith(_REMINDER) else text.strip()


class Brain:
    """Decides the next assistant turn. Stateless apart from the shared id counter."""

    def reply(
        self,
        turns: Sequence[Turn],
        tools: Sequence[str],
        *,
        reasoning: bool = False,
        json_output: bool = False,
    ) -> Reply:
        """``reasoning``: the request asked for thinking; ``json_output``: it asked for a JSON (schema) answer."""
        answer = self._decide(list(turns), list(tools), json_output)
        if reasoning and not answer.tool_calls:
            answer.reasoning = REASONING_TEXT
        return answer

    def _decide(self, turns: list[Turn], tools: list[str], json_output: bool) -> Reply:
        if json_output or self._is_title_call(turns, tools):
            return Reply(text=TITLE_JSON)
        index = _prompt_index(turns)
        if index is None:
            return Reply(text="Hello from mock")
        prompt = _prompt_text(turns[index])
        later = turns[index + 1 :]
        cwd = _working_dir(turns)

        def path(name: str) -> str:
            name = _clean(name)
            return posixpath.join(cwd, name) if cwd and not posixpath.isabs(name) else name

        if found := _CREATE.search(prompt):
            if _result(later, "Write"):
                return Reply(text="DONE")
            return _call(tools, "Write", {"file_path": path(found.group(1)), "content": _clean(found.group(2))})
        if found := _RUN.search(prompt):
            result = _result(later, "Bash")
            if result:
                return Reply(text=f"OUTPUT: {result.text.strip()}")
            command = found.group(1).strip().splitlines()[0].strip().strip("`")
            return _call(tools, "Bash", {"command": command, "description": "run"})
        if found := _REPLACE.search(prompt):
            groups = found.groups()
            old = next(g for g in groups[0:4] if g is not None)
            new = next(g for g in groups[4:8] if g is not None)
            file_path = path(groups[8])
            if _result(later, "Edit"):
                return Reply(text="DONE")
            if _result(later, "Read"):
                return _call(tools, "Edit", {"file_path": file_path, "old_string": old, "new_string": new})
            return _call(tools, "Read", {"file_path": file_path})
        if found := _DESCRIBE.search(prompt):
            result = _result(later, "Read")
            if result is None:
                return _call(tools, "Read", {"file_path": path(found.group(1))})
            return Reply(text="IMAGE SEEN" if _images_with(later, result) else "NO IMAGE")
        if _TWO_PLUS_TWO.search(prompt):
            return Reply(text="4")
        return Reply(text="Hello from mock")

    @staticmethod
    def _is_title_call(turns: list[Turn], tools: list[str]) -> bool:
        # Claude Code's session-title request: no tools, a system (or user) text asking for a JSON title.
        if tools:
            return False
        wanted = ("system", "user")
        return any(t.role in wanted and _TITLE_WORD.search(t.text) and _JSON_WORD.search(t.text) for t in turns)


def _call(tools: list[str], name: str, arguments: dict[str, Any]) -> Reply:
    if name not in tools:
        # Make a gateway that dropped the tool list visible instead of looping.
        return Reply(text=f"MISSING TOOL {name}")
    return Reply(tool_calls=[ToolCall(id=next_call_id(), name=name, arguments=arguments)])


def _result(later: list[Turn], name: str) -> Turn | None:
    """The first tool turn (after the prompt) answering a call of tool ``name``."""
    names = {call.id: call.name for turn in later for call in turn.tool_calls}
    for turn in later:
        if turn.role == "tool" and turn.tool_call_id is not None and names.get(turn.tool_call_id) == name:
            return turn
    return None


def _images_with(later: list[Turn], result: Turn) -> int:
    """Images on the tool turn itself plus on the user turns that follow it before the next assistant turn."""
    count = result.images
    start = next(i for i, turn in enumerate(later) if turn is result)
    for turn in later[start + 1 :]:
        if turn.role == "assistant":
            break
        if turn.role == "user":
            count += turn.images
    return count
