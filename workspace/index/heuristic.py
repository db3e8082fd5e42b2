"""Line-based extraction for languages without a tree-sitter grammar (and when a grammar fails).

Regexes for the common definition forms (def / function / fn / func / sub / proc / class / struct / interface ...),
C-family signatures, calls and imports. Containers come from indentation. It never raises on any input, and every
regex is anchored and free of nested quantifiers so a hostile line cannot make it backtrack for long; lines longer
than ``MAX_LINE`` are skipped (generated code).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from workspace.index.values import (
    CONTAINER_KINDS,
    PARSER_HEURISTIC,
    Definition,
    Extraction,
    Import,
    Reference,
)

logger = logging.getLogger(__name__)

MAX_LINE = 400
MAX_DEFINITIONS = 5_000
MAX_REFERENCES = 10_000

_MODIFIERS = (
    r"(?:(?:public|private|protected|internal|static|final|abstract|override|open|async|export|default|inline|"
    r"suspend|virtual|extern|unsafe|pub|local|sealed|data|case|partial|readonly|native|synchronized|operator|"
    r"infix|tailrec|fileprivate|mutating|inner|annotation|enum|value|lazy|actor|global)[ \t]+)*"
)
# A name, possibly qualified (Lua `M.encode` / `obj:method`, Kotlin `String.slugify`, Perl `A::b`, PHP `App\Http`):
# every repetition starts with a separator, so there is only one way to match.
_NAME = r"[A-Za-z_$][\w$!?'-]*(?:(?:\.|::?|\\)[A-Za-z_$][\w$!?'-]*)*"
_FUNCTION = re.compile(
    rf"[ \t]*\(?{_MODIFIERS}(?:function\*?|fun|fn|def|defp|defmacro|defn|defun|sub|proc|procedure|method)"
    rf"[ \t]+(?:<[^<>\n]{{0,100}}>[ \t]*)?(?P<name>{_NAME})"
)
# Go's receiver comes before the name: `func (s *Server) Start(`.
_GO_FUNCTION = re.compile(rf"[ \t]*func[ \t]+(?:\([^()\n]{{0,200}}\)[ \t]*)?(?P<name>{_NAME})")
_CLASS_KEYWORDS = {
    "class": "class",
    "struct": "struct",
    "interface": "interface",
    "trait": "trait",
    "enum": "enum",
    "object": "class",
    "protocol": "interface",
    "module": "module",
    "namespace": "module",
    "record": "class",
    "union": "struct",
    "defmodule": "module",
    "extension": "impl",  # Swift / Dart: holds methods of another type, defines nothing itself
}
_CLASS = re.compile(rf"[ \t]*{_MODIFIERS}(?P<kw>{'|'.join(_CLASS_KEYWORDS)})[ \t]+(?P<name>{_NAME})(?P<rest>.*)")
# After a class-like name, what shows it is a use rather than a definition: `struct node *n = ...`,
# `struct node;`, `class Foo bar` (a C++ elaborated type specifier).
_CLASS_USE = re.compile(
    r"[ \t]*(?:[*&;,)=]|(?!(?:extends|implements|with|where|derives|is|of|do|inherits|final|sealed|abstract|open)\b)"
    r"[A-Za-z_])"
)
_PERL_PACKAGE = re.compile(r"[ \t]*package[ \t]+(?P<name>[A-Za-z_][\w:]*)[ \t]*[;{]")
_SHELL_FUNCTION = re.compile(r"[ \t]*(?:function[ \t]+)?(?P<name>[A-Za-z_][\w.:-]*)[ \t]*\([ \t]*\)[ \t]*(?:\{|$)")
_LUA_ASSIGNED = re.compile(r"[ \t]*(?:local[ \t]+)?(?P<name>[A-Za-z_][\w.:]*)[ \t]*=[ \t]*function\b")
_R_ASSIGNED = re.compile(r"[ \t]*(?P<name>[A-Za-z_.][\w.]*)[ \t]*(?:<-|=)[ \t]*function\b")
_ML_TYPE = re.compile(r"(?:data|newtype|type(?:[ \t]+alias)?)[ \t]+(?P<name>[A-Z][\w']*)")
_ML_SIGNATURE = re.compile(r"(?P<name>[a-z_][\w']*)[ \t]*::")
_ERLANG_FUNCTION = re.compile(r"(?P<name>[a-z][\w]*)\([^()\n]{0,200}\)[ \t]*(?:when\b[^\n]{0,200})?->")
_C_PREFIX = re.compile(r"[ \t]*[A-Za-z_][\w:<>,*&\[\] \t]*")
_C_NOT_FUNCTIONS = frozenset(
    [
        "if",
        "for",
        "while",
        "switch",
        "return",
        "else",
        "do",
        "case",
        "catch",
        "using",
        "new",
        "delete",
        "throw",
        "sizeof",
        "typedef",
        "goto",
        "define",
    ]
)
_CALL = re.compile(r"\b(?P<name>[A-Za-z_]\w{0,200})[ \t]*\(")
_NOT_CALLS = frozenset(
    [
        "if",
        "for",
        "while",
        "switch",
        "return",
        "function",
        "func",
        "fn",
        "def",
        "sizeof",
        "catch",
        "elif",
        "and",
        "or",
        "not",
        "in",
        "is",
        "typeof",
        "new",
        "delete",
        "foreach",
        "elseif",
        "unless",
        "until",
        "case",
        "when",
        "match",
        "with",
        "lambda",
        "print",
        "echo",
        "super",
        "this",
        "self",
    ]
)

_C_FAMILY = frozenset({"c", "cpp", "objc", "csharp", "dart", "groovy"})
_ML_FAMILY = frozenset({"haskell", "elm"})
_IMPORTS: dict[str, tuple[re.Pattern[str], ...]] = {}
for _languages, _patterns in (
    (("c", "cpp", "objc"), (r"[ \t]*#[ \t]*(?:include|import)[ \t]*[<\"](?P<module>[^>\"\n]{1,300})[>\"]",)),
    (
        ("php",),
        (
            r"[ \t]*use[ \t]+(?P<module>[\w\\]{1,300})",
            r"[ \t]*(?:require|include)(?:_once)?[ \t]*\(?[ \t]*['\"](?P<module>[^'\"\n]{1,300})['\"]",
        ),
    ),
    (
        ("kotlin", "scala", "swift", "groovy", "haskell", "elm", "julia", "nim", "dart"),
        (r"[ \t]*import[ \t]+(?:qualified[ \t]+)?['\"]?(?P<module>[\w.:/*-]{1,300})",),
    ),
    (("lua",), (r".*?\brequire[ \t]*\(?[ \t]*['\"](?P<module>[^'\"\n]{1,300})['\"]",)),
    (("perl",), (r"[ \t]*(?:use|require)[ \t]+(?P<module>[\w:]{1,300})",)),
    (("elixir",), (r"[ \t]*(?:alias|import|use|require)[ \t]+(?P<module>[\w.]{1,300})",)),
    (("shell",), (r"[ \t]*(?:source|\.)[ \t]+['\"]?(?P<module>[^\s;'\"]{1,300})",)),
    (("r",), (r".*?\b(?:library|require)\([ \t]*['\"]?(?P<module>[\w.]{1,300})",)),
    (("csharp",), (r"[ \t]*using[ \t]+(?:static[ \t]+)?(?P<module>[\w.]{1,300})[ \t]*;",)),
    (("erlang",), (r"-include(?:_lib)?\(\"(?P<module>[^\"\n]{1,300})\"\)",)),
    (("ocaml", "fsharp"), (r"[ \t]*open[ \t]+(?P<module>[\w.]{1,300})",)),
    (("zig",), (r".*?@import\(\"(?P<module>[^\"\n]{1,300})\"\)",)),
    (("vue", "svelte"), (r"[ \t]*import[^'\"\n]{0,300}['\"](?P<module>[^'\"\n]{1,300})['\"]",)),
):
    for _language in _languages:
        _IMPORTS[_language] = tuple(re.compile(pattern) for pattern in _patterns)


@dataclass(slots=True)
class _Def:
    name: str
    kind: str
    line: int
    column: int
    indent: int
    container: str


def extract_heuristic(source: bytes | str, language: str) -> Extraction:
    """Definitions, calls and imports found by regexes; an empty heuristic result on any failure."""
    try:
        text = source.decode("utf-8", "replace") if isinstance(source, bytes) else source
        return heuristic_extract_text(text, language)
    except Exception:  # the contract is "never raises"; heuristic_extract_text itself is fuzzed in the tests
        logger.debug("heuristic extraction failed for a %s file", language, exc_info=True)
        return Extraction(parser=PARSER_HEURISTIC)


def heuristic_extract_text(text: str, language: str) -> Extraction:
    lines = text.splitlines()
    defs: list[_Def] = []
    refs: list[Reference] = []
    imports: list[Import] = []
    stack: list[_Def] = []  # open containers by indentation
    previous = ""  # the last non-blank line: C puts the return type of a definition on the line before its name
    import_patterns = _IMPORTS.get(language, ())
    for number, line in enumerate(lines, start=1):
        if len(line) > MAX_LINE or not line.strip():
            continue
        found = _definition(line, language, previous)
        previous = line
        defined = ""
        if found is not None:
            name, kind, column = found
            indent = len(line[: len(line) - len(line.lstrip())].expandtabs(4))
            while stack and stack[-1].indent >= indent:
                stack.pop()
            container = stack[-1].name if stack else ""
            if "." in name or ":" in name:
                owner, _, name = name.replace(":", ".").rpartition(".")
                container = container or ("" if owner == "self" else owner.rpartition(".")[2])
            if kind == "function" and stack and stack[-1].kind != "module":
                kind = "method"
            item = _Def(name[:300], kind, number, column, indent, container[:300])
            if name and len(defs) < MAX_DEFINITIONS:
                defs.append(item)
            if kind in CONTAINER_KINDS:
                stack.append(item)
            defined = name
        for pattern in import_patterns:
            matched = pattern.match(line)
            if matched:
                imports.append(Import(matched.group("module").strip(), (), number))
                break
        if len(refs) < MAX_REFERENCES and "(" in line:
            for call in _CALL.finditer(line):
                name = call.group("name")
                if name != defined and name not in _NOT_CALLS:
                    refs.append(Reference(name, "call", number, call.start("name")))
    return Extraction(
        parser=PARSER_HEURISTIC,
        definitions=tuple(_with_end_lines(defs, lines)),
        references=tuple(refs[:MAX_REFERENCES]),
        imports=tuple(imports),
    )


def _definition(line: str, language: str, previous: str) -> tuple[str, str, int] | None:
    """(name, kind, column) of a definition on this line, if it looks like one."""
    if language == "shell":
        matched = _SHELL_FUNCTION.match(line) or _FUNCTION.match(line)
        return (matched.group("name"), "function", matched.start("name")) if matched else None
    if language == "perl" and (matched := _PERL_PACKAGE.match(line)):
        return matched.group("name"), "module", matched.start("name")
    if language in _ML_FAMILY:
        if matched := _ML_TYPE.match(line):
            return matched.group("name"), "type", matched.start("name")
        if matched := _ML_SIGNATURE.match(line):
            return matched.group("name"), "function", matched.start("name")
    if language == "erlang" and (matched := _ERLANG_FUNCTION.match(line)):
        return matched.group("name"), "function", matched.start("name")
    if (matched := _CLASS.match(line)) and not _CLASS_USE.match(matched.group("rest")):
        return matched.group("name"), _CLASS_KEYWORDS[matched.group("kw")], matched.start("name")
    if matched := _FUNCTION.match(line) or _GO_FUNCTION.match(line):
        return matched.group("name"), "function", matched.start("name")
    if language == "lua" and (matched := _LUA_ASSIGNED.match(line)):
        return matched.group("name"), "function", matched.start("name")
    if language == "r" and (matched := _R_ASSIGNED.match(line)):
        return matched.group("name"), "function", matched.start("name")
    if language in _C_FAMILY:
        return _c_function(line, previous)
    return None


def _c_function(line: str, previous: str) -> tuple[str, str, int] | None:
    """`type name(args) {` without regex backtracking: the last word before the first '(' is the name."""
    stripped = line.rstrip()
    paren = stripped.find("(")
    if paren <= 0 or stripped.endswith((";", ",")) or "=" in stripped[:paren]:
        return None
    head = stripped[:paren].rstrip()
    words = head.split()
    if len(words) < 2 and not _return_type_line(line, previous):
        return None  # `foo(x)`: a call or a macro, not a definition with a return type
    name = words[-1].lstrip("*&")
    if not name or not (name[0].isalpha() or name[0] in "_~") or words[0] in _C_NOT_FUNCTIONS:
        return None
    if not all(ch.isalnum() or ch in "_:~" for ch in name) or name in _C_NOT_FUNCTIONS:
        return None
    prefix = head[: len(head) - len(words[-1])]
    if prefix.strip() and not _C_PREFIX.fullmatch(prefix):
        return None
    return name, "function", len(head) - len(words[-1]) + (len(words[-1]) - len(name))


def _return_type_line(line: str, previous: str) -> bool:
    """GNU style: `static struct node *` alone on the line above `make_node(int value)` at column 0."""
    tail = previous.rstrip()
    return (
        not line[:1].isspace()
        and bool(tail)
        and not tail.endswith((";", ")", "{", "}", ",", "\\"))
        and not tail.lstrip().startswith(("#", "//", "/*", "*"))
        and _C_PREFIX.fullmatch(tail) is not None
        and tail.split()[0] not in _C_NOT_FUNCTIONS
    )


def _with_end_lines(defs: list[_Def], lines: list[str]) -> list[Definition]:
    """A definition ends before the next one at the same or a lower indentation (trailing blank lines trimmed)."""
    last_nonblank = [0] * (len(lines) + 1)
    for index, line in enumerate(lines, start=1):
        last_nonblank[index] = index if line.strip() else last_nonblank[index - 1]
    ends = [len(lines)] * len(defs)
    open_defs: list[int] = []  # indexes of definitions not yet closed, indentation increasing
    for position, item in enumerate(defs):
        while open_defs and defs[open_defs[-1]].indent >= item.indent:
            ends[open_defs.pop()] = item.line - 1
        open_defs.append(position)
    return [
        Definition(item.name, item.kind, item.line, item.column, max(item.line, last_nonblank[end]), item.container)
        for item, end in zip(defs, ends, strict=True)
    ]
