"""Definitions, references and imports of one file: tree-sitter when there is a grammar, else the heuristic.

``extract`` never raises: a grammar that fails to load or a parser error falls back to the heuristic, and the
result records which parser produced it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import tree_sitter

from workspace.index.heuristic import extract_heuristic
from workspace.index.languages import HEURISTIC_LANGUAGES, TREE_SITTER_LANGUAGES, grammar, parser_for
from workspace.index.values import (
    CONTAINER_KINDS,
    EMPTY,
    PARSER_TREE_SITTER,
    Definition,
    Extraction,
    Import,
    Reference,
)

logger = logging.getLogger(__name__)

# A minified bundle can hold hundreds of thousands of calls; past these the rest of the file adds only noise.
MAX_DEFINITIONS = 5_000
MAX_REFERENCES = 10_000

# When two patterns match the same name (a Go struct is also a type spec; `const f = () => ...` is also a
# variable) the more specific kind wins.
_KIND_RANK = {"type": 1, "constant": 2, "variable": 3}
_REF_RANK = {"call": 0, "import": 1, "type": 2, "reference": 3}
# A function whose direct parent is one of these is a method (a function in a Rust `mod` or TS namespace is not).
_METHOD_PARENTS = frozenset({"class", "interface", "struct", "enum", "trait", "impl"})
_CONSTANT_NAME = re.compile(r"[A-Z][A-Z0-9_]+")
# Builtin types referenced on almost every line: rows that no definition in a workspace can answer.
_BUILTIN_TYPES = {
    "go": frozenset(
        [
            "any",
            "bool",
            "byte",
            "comparable",
            "complex64",
            "complex128",
            "error",
            "float32",
            "float64",
            "int",
            "int8",
            "int16",
            "int32",
            "int64",
            "rune",
            "string",
            "uint",
            "uint8",
            "uint16",
            "uint32",
            "uint64",
            "uintptr",
        ]
    ),
    "python": frozenset(
        ["bool", "bytes", "dict", "float", "int", "list", "object", "set", "str", "tuple", "type", "None"]
    ),
    "rust": frozenset({"Self"}),
}


def extract(source: bytes, language: str) -> Extraction:
    """What ``source`` (the bytes of a file in ``language``) defines, references and imports."""
    if language in TREE_SITTER_LANGUAGES:
        try:
            result = _extract_tree_sitter(source, language)
        except Exception:  # a bug in a query handler or the binding must not stop the index
            logger.debug("tree-sitter extraction failed for a %s file; using the heuristic", language, exc_info=True)
            result = None
        return result if result is not None else extract_heuristic(source, language)
    if language in HEURISTIC_LANGUAGES:
        return extract_heuristic(source, language)
    return EMPTY


@dataclass(slots=True)
class _Found:
    start: int
    end: int
    name: str
    kind: str
    line: int
    column: int
    end_line: int
    name_start: int
    container: str = ""
    parent: _Found | None = None


def _text(node: tree_sitter.Node) -> str:
    raw = node.text
    return raw.decode("utf-8", "replace") if raw is not None else ""


def _extract_tree_sitter(source: bytes, language: str) -> Extraction | None:
    loaded = grammar(language)
    parser = parser_for(language)
    if loaded is None or parser is None:
        return None
    tree = parser.parse(source)
    found: dict[int, _Found] = {}  # by the name's start byte
    scopes: list[_Found] = []
    refs: dict[int, tuple[str, tree_sitter.Node]] = {}
    imports: list[Import] = []
    for _, captures in tree_sitter.QueryCursor(loaded.query).matches(tree.root_node):
        for capture, nodes in captures.items():
            if capture.startswith("def.") or capture == "scope":
                _add_definitions(capture, nodes[0], captures, found, scopes)
            elif capture.startswith("ref."):
                kind = capture[4:]
                for node in nodes:
                    previous = refs.get(node.start_byte)
                    if previous is None or _REF_RANK.get(kind, 9) < _REF_RANK.get(previous[0], 9):
                        refs[node.start_byte] = (kind, node)
            elif capture in _IMPORT_HANDLERS:
                imports.extend(_IMPORT_HANDLERS[capture](nodes[0], captures))
    definitions = _finish_definitions(list(found.values()), scopes)
    references = _finish_references(refs, found, _BUILTIN_TYPES.get(language, frozenset()))
    return Extraction(
        parser=PARSER_TREE_SITTER,
        definitions=tuple(definitions[:MAX_DEFINITIONS]),
        references=tuple(references[:MAX_REFERENCES]),
        imports=tuple(imports),
    )


def _add_definitions(
    capture: str,
    node: tree_sitter.Node,
    captures: dict[str, list[tree_sitter.Node]],
    found: dict[int, _Found],
    scopes: list[_Found],
) -> None:
    kind = "impl" if capture == "scope" else capture[4:]
    explicit = captures.get("container")
    container = _text(explicit[0]) if explicit else ""
    for name_node in captures.get("name", ()):
        name = _clean_name(_text(name_node))
        if not name:
            continue
        item = _Found(
            start=node.start_byte,
            end=node.end_byte,
            name=name,
            kind=kind,
            line=name_node.start_point[0] + 1,
            column=name_node.start_point[1],
            end_line=node.end_point[0] + 1,
            name_start=name_node.start_byte,
            container=container,
        )
        if capture == "scope":
            scopes.append(item)
            continue
        previous = found.get(item.name_start)
        if previous is None or (_KIND_RANK.get(kind, 0), not container) < (
            _KIND_RANK.get(previous.kind, 0),
            not previous.container,
        ):
            found[item.name_start] = item


def _clean_name(raw: str) -> str:
    # `declare module "foo"` names a module by a string; Ruby `attr_reader :items` by a symbol.
    return raw.replace("\x00", "").strip().strip("\"'`").lstrip(":")[:300]


def _finish_definitions(defs: list[_Found], scopes: list[_Found]) -> list[Definition]:
    """Nest definitions by their byte ranges to find containers, then promote functions in classes to methods."""
    items = sorted([*defs, *scopes], key=lambda item: (item.start, -item.end))
    stack: list[_Found] = []
    for item in items:
        while stack and stack[-1].end <= item.start:
            stack.pop()
        while stack and stack[-1].end < item.end:  # overlapping but not nested: not a parent
            stack.pop()
        item.parent = stack[-1] if stack else None
        stack.append(item)
    out: list[Definition] = []
    for item in sorted(defs, key=lambda d: d.name_start):
        kind = item.kind
        parent = item.parent
        if kind == "function" and parent is not None and parent.kind in _METHOD_PARENTS:
            kind = "method"
        elif kind == "variable" and _CONSTANT_NAME.fullmatch(item.name):
            kind = "constant"
        container = item.container
        while not container and parent is not None:
            if parent.kind in CONTAINER_KINDS:
                container = parent.name
            parent = parent.parent
        out.append(Definition(item.name, kind, item.line, item.column, item.end_line, container[:300]))
    return out


def _finish_references(
    refs: dict[int, tuple[str, tree_sitter.Node]], found: dict[int, _Found], builtins: frozenset[str]
) -> list[Reference]:
    out: list[Reference] = []
    for start in sorted(refs):
        if start in found:  # a definition's own name (TS class names are type_identifiers too)
            continue
        kind, node = refs[start]
        name = _text(node)
        if kind == "jsx":
            # <div> is an HTML tag; <Button> is a component (React's own rule for JSX names).
            if not name[:1].isupper():
                continue
            kind = "call"
        elif kind == "type" and name in builtins:
            continue
        out.append(Reference(name[:300], kind, node.start_point[0] + 1, node.start_point[1]))
    return out


# --- imports, per language ----------------------------------------------------------------------------------------


def _line(node: tree_sitter.Node) -> int:
    return node.start_point[0] + 1


def _squash(text: str) -> str:
    return "".join(text.split())


def _python_imports(node: tree_sitter.Node, captures: dict[str, list[tree_sitter.Node]]) -> list[Import]:
    def target(child: tree_sitter.Node) -> str:
        named = child.child_by_field_name("name") if child.type == "aliased_import" else child
        return _squash(_text(named)) if named is not None else ""

    names = [name for name in (target(child) for child in node.children_by_field_name("name")) if name]
    if node.type == "import_statement":
        return [Import(name, (), _line(node)) for name in names]
    module = node.child_by_field_name("module_name")
    if module is None:
        return []
    return [Import(_squash(_text(module)), tuple(names), _line(node))]


def _js_imports(node: tree_sitter.Node, captures: dict[str, list[tree_sitter.Node]]) -> list[Import]:
    return [Import(_text(node), (), _line(node))]


_go_imports = _js_imports


def _rust_use(node: tree_sitter.Node, captures: dict[str, list[tree_sitter.Node]]) -> list[Import]:
    # `use a::b::{c, d}` -> module a::b, names c and d; `use a::b as c` -> a::b; `use a::*` -> a.
    names: tuple[str, ...] = ()
    path: tree_sitter.Node | None = node
    if node.type == "scoped_use_list":
        path = node.child_by_field_name("path")
        listed = node.child_by_field_name("list")
        if listed is not None:
            names = tuple(_squash(_text(child)) for child in listed.named_children if child.type == "identifier")
    elif node.type == "use_as_clause":
        path = node.child_by_field_name("path")
    elif node.type == "use_wildcard":
        path = node.named_children[0] if node.named_children else None
    if path is None or node.type == "use_list":
        return []
    return [Import(_squash(_text(path)), names, _line(node))]


def _rust_mod(node: tree_sitter.Node, captures: dict[str, list[tree_sitter.Node]]) -> list[Import]:
    return [Import(f"mod {_text(node)}", (), _line(node))]


def _java_imports(node: tree_sitter.Node, captures: dict[str, list[tree_sitter.Node]]) -> list[Import]:
    text = _squash(_text(node).removeprefix("import").removesuffix(";").replace("static ", "", 1))
    return [Import(text, (), _line(node))] if text else []


def _ruby_imports(node: tree_sitter.Node, captures: dict[str, list[tree_sitter.Node]]) -> list[Import]:
    args = captures.get("import.ruby_arg")
    if not args:
        return []
    module = _text(args[0])
    # require_relative resolves against the requiring file: written here as a './' path like JS.
    if _text(node) == "require_relative" and not module.startswith("."):
        module = f"./{module}"
    return [Import(module, (), _line(node))]


_IMPORT_HANDLERS = {
    "import.python": _python_imports,
    "import.js": _js_imports,
    "import.go": _go_imports,
    "import.rust_use": _rust_use,
    "import.rust_mod": _rust_mod,
    "import.java": _java_imports,
    "import.ruby": _ruby_imports,
}
