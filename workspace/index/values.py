"""The values extraction produces: definitions, references and imports of one file."""

from __future__ import annotations

from dataclasses import dataclass

# Kinds that can hold other definitions: what ``Definition.container`` names.
CONTAINER_KINDS = frozenset({"class", "interface", "struct", "enum", "trait", "module", "impl"})
SYMBOL_KINDS = (
    "function",
    "method",
    "class",
    "interface",
    "struct",
    "enum",
    "trait",
    "type",
    "constant",
    "variable",
    "module",
    "macro",
)
REFERENCE_KINDS = ("call", "type", "import", "reference")

PARSER_TREE_SITTER = "tree-sitter"
PARSER_HEURISTIC = "heuristic"
PARSER_NONE = "none"


@dataclass(frozen=True, slots=True)
class Definition:
    name: str
    kind: str
    line: int  # 1-based, of the name
    column: int  # 0-based, of the name (bytes for tree-sitter, characters for the heuristic)
    end_line: int  # 1-based, last line of the whole definition
    container: str = ""  # the enclosing class / interface / impl / module


@dataclass(frozen=True, slots=True)
class Reference:
    name: str
    kind: str  # call, type, import or reference
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Import:
    """An import as written: ``module`` ('.models', 'react', 'crate::a::b', 'mod util', './x' ...) and, for
    from-style imports, the names taken from it (which may themselves be submodules)."""

    module: str
    names: tuple[str, ...] = ()
    line: int = 0


@dataclass(frozen=True, slots=True)
class Extraction:
    parser: str  # tree-sitter, heuristic or none
    definitions: tuple[Definition, ...] = ()
    references: tuple[Reference, ...] = ()
    imports: tuple[Import, ...] = ()


EMPTY = Extraction(parser=PARSER_NONE)
