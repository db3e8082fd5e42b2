"""Pure parser of unified diffs (``git diff`` output or plain ``diff -u``): files, hunks, line numbers.

No Django, no GitPython. Header lines follow git-diff(1) "Generating patch text with -p"; paths with unusual
characters arrive C-quoted (git-config(1) core.quotePath) and are unquoted here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# --- parsing --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DiffLine:
    kind: str  # "+" added, "-" removed, " " context
    text: str
    old_no: int | None
    new_no: int | None


@dataclass(frozen=True, slots=True)
class Hunk:
    old_start: int
    new_start: int
    lines: tuple[DiffLine, ...]

    @property
    def added(self) -> int:
        return sum(1 for line in self.lines if line.kind == "+")

    @property
    def removed(self) -> int:
        return sum(1 for line in self.lines if line.kind == "-")


@dataclass(frozen=True, slots=True)
class FileDiff:
    path: str  # the new path ('/dev/null' never: a deleted file keeps its old path here)
    old_path: str = ""  # set for renames and copies
    new: bool = False
    deleted: bool = False
    renamed: bool = False
    binary: bool = False
    hunks: tuple[Hunk, ...] = ()

    @property
    def added(self) -> int:
        return sum(hunk.added for hunk in self.hunks)

    @property
    def removed(self) -> int:
        return sum(hunk.removed for hunk in self.hunks)


_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_QUOTE_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


def _unquote(text: str) -> str:
    """git's C-style quoting of unusual paths (core.quotePath): "\\303\\251" is UTF-8 bytes in octal."""
    if not (len(text) >= 2 and text[0] == text[-1] == '"'):
        return text
    out = bytearray()
    body, i = text[1:-1], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in "01234567" and re.fullmatch(r"[0-7]{3}", body[i + 1 : i + 4]):
                out.append(int(body[i + 1 : i + 4], 8))
                i += 4
                continue
            out.append(_QUOTE_ESCAPES.get(nxt, ord(nxt)))
            i += 2
            continue
        out.extend(ch.encode())
        i += 1
    return out.decode("utf-8", "replace")


def _strip_prefix(path: str) -> str:
    path = _unquote(path.split("\t", 1)[0].rstrip())
    return path[2:] if path[:2] in ("a/", "b/", "i/", "w/", "c/", "o/") else path


def _git_header_paths(rest: str) -> tuple[str, str]:
    """The two paths of 'diff --git a/X b/Y' (ambiguous with spaces: --- and +++ lines refine them later)."""
    if rest.startswith('"') or rest.endswith('"'):
        tokens = re.findall(r'"(?:[^"\\]|\\.)*"|\S+', rest)
        if len(tokens) == 2:
            return _strip_prefix(tokens[0]), _strip_prefix(tokens[1])
    half = (len(rest) - 1) // 2
    if len(rest) % 2 == 1 and rest[half] == " " and rest[:half][2:] == rest[half + 1 :][2:]:
        return _strip_prefix(rest[:half]), _strip_prefix(rest[half + 1 :])
    old, sep, new = rest.rpartition(" b/")
    return (_strip_prefix(old), new) if sep else (rest, rest)


class _FileBuilder:
    def __init__(self, old: str = "", new: str = "") -> None:
        self.old, self.new = old, new
        self.flags = {"new": False, "deleted": False, "renamed": False, "binary": False}
        self.copied = False
        self.hunks: list[Hunk] = []

    def build(self) -> FileDiff:
        deleted = self.flags["deleted"] or (self.new == "/dev/null")
        new = self.flags["new"] or (self.old == "/dev/null")
        path = self.old if deleted else self.new
        moved = self.flags["renamed"] or self.copied
        return FileDiff(
            path=path,
            old_path=self.old if moved and self.old != self.new else "",
            new=new,
            deleted=deleted,
            renamed=self.flags["renamed"],
            binary=self.flags["binary"],
            hunks=tuple(self.hunks),
        )


def parse_unified_diff(text: str) -> list[FileDiff]:
    """Files of a ``git diff`` (or plain ``diff -u``) output, with hunks and line numbers on both sides."""
    files: list[FileDiff] = []
    current: _FileBuilder | None = None
    lines: list[DiffLine] = []
    old_no = new_no = old_left = new_left = 0
    hunk_start = (0, 0)

    def close_hunk() -> None:
        nonlocal lines
        if current is not None and lines:
            current.hunks.append(Hunk(hunk_start[0], hunk_start[1], tuple(lines)))
        lines = []

    def close_file() -> None:
        close_hunk()
        if current is not None:
            files.append(current.build())

    for raw in text.split("\n"):
        if old_left > 0 or new_left > 0:
            kind = raw[:1] or " "  # some tools drop the space of an empty context line
            if kind == "\\":  # "\ No newline at end of file"
                continue
            if kind in "+- ":
                text_part = raw[1:]
                if kind == "+":
                    lines.append(DiffLine("+", text_part, None, new_no))
                    new_no, new_left = new_no + 1, new_left - 1
                elif kind == "-":
                    lines.append(DiffLine("-", text_part, old_no, None))
                    old_no, old_left = old_no + 1, old_left - 1
                else:
                    lines.append(DiffLine(" ", text_part, old_no, new_no))
                    old_no, new_no, old_left, new_left = old_no + 1, new_no + 1, old_left - 1, new_left - 1
                continue
            old_left = new_left = 0  # malformed: fall through and read it as a header
        if raw.startswith("diff --git "):
            close_file()
            current = _FileBuilder(*_git_header_paths(raw[len("diff --git ") :]))
        elif raw.startswith("--- ") and (current is None or current.hunks or lines):
            close_file()  # a plain unified diff: each file starts at its '---' line
            current = _FileBuilder(_strip_prefix(raw[4:]), "")
        elif current is None:
            continue
        elif raw.startswith("--- "):
            current.old = _strip_prefix(raw[4:])
        elif raw.startswith("+++ "):
            current.new = _strip_prefix(raw[4:])
        elif match := _HUNK_HEADER.match(raw):
            close_hunk()
            old_no, new_no = int(match[1]), int(match[3])
            old_left = int(match[2]) if match[2] is not None else 1
            new_left = int(match[4]) if match[4] is not None else 1
            hunk_start = (old_no, new_no)
        elif raw.startswith("new file mode"):
            current.flags["new"] = True
        elif raw.startswith("deleted file mode"):
            current.flags["deleted"] = True
        elif raw.startswith(("rename from ", "copy from ")):
            current.old = _unquote(raw.split(" from ", 1)[1])
            current.flags["renamed"] = raw.startswith("rename")
            current.copied = raw.startswith("copy")
        elif raw.startswith(("rename to ", "copy to ")):
            current.new = _unquote(raw.split(" to ", 1)[1])
        elif raw.startswith(("Binary files ", "GIT binary patch")):
            current.flags["binary"] = True
    close_file()
    return files
