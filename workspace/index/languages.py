"""Language detection by file name, and the tree-sitter grammars (loaded lazily, cached per process).

Only the languages with an official grammar wheel pinned in pyproject.toml parse with tree-sitter; other code
languages go to the heuristic extractor; documents and data files are indexed without symbols.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import PurePosixPath

import tree_sitter

logger = logging.getLogger(__name__)

_EXTENSIONS: dict[str, str] = {
    # tree-sitter languages
    ".py": "python",
    ".pyi": "python",
    ".pyw": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".rb": "ruby",
    ".rake": "ruby",
    ".gemspec": "ruby",
    ".ru": "ruby",
    # heuristic languages
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".hxx": "cpp",
    ".ipp": "cpp",
    ".m": "objc",
    ".mm": "objc",
    ".cs": "csharp",
    ".php": "php",
    ".kt": "kotlin",
    ".kts": "kotlin",
    ".swift": "swift",
    ".scala": "scala",
    ".sc": "scala",
    ".groovy": "groovy",
    ".gradle": "groovy",
    ".sh": "shell",
    ".bash": "shell",
    ".zsh": "shell",
    ".ksh": "shell",
    ".lua": "lua",
    ".pl": "perl",
    ".pm": "perl",
    ".r": "r",
    ".ex": "elixir",
    ".exs": "elixir",
    ".erl": "erlang",
    ".hrl": "erlang",
    ".hs": "haskell",
    ".ml": "ocaml",
    ".mli": "ocaml",
    ".fs": "fsharp",
    ".fsx": "fsharp",
    ".dart": "dart",
    ".jl": "julia",
    ".clj": "clojure",
    ".cljs": "clojure",
    ".cljc": "clojure",
    ".zig": "zig",
    ".nim": "nim",
    ".cr": "crystal",
    ".elm": "elm",
    ".vb": "vb",
    ".ps1": "powershell",
    ".psm1": "powershell",
    ".tcl": "tcl",
    ".pas": "pascal",
    ".vue": "vue",
    ".svelte": "svelte",
    # documents and data: indexed (hash, size, lines) without symbols
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdx": "markdown",
    ".rst": "rst",
    ".txt": "text",
    ".json": "json",
    ".jsonc": "json",
    ".yml": "yaml",
    ".yaml": "yaml",
    ".toml": "toml",
    ".xml": "xml",
    ".svg": "xml",
    ".html": "html",
    ".htm": "html",
    ".css": "css",
    ".scss": "scss",
    ".sass": "sass",
    ".less": "less",
    ".ini": "ini",
    ".cfg": "ini",
    ".conf": "ini",
    ".csv": "csv",
    ".po": "po",
    ".sql": "sql",
    ".graphql": "graphql",
    ".proto": "protobuf",
    ".mk": "makefile",
    ".cmake": "cmake",
}

_FILENAMES: dict[str, str] = {
    "Rakefile": "ruby",
    "Gemfile": "ruby",
    "Guardfile": "ruby",
    "Vagrantfile": "ruby",
    "Podfile": "ruby",
    "Dockerfile": "dockerfile",
    "Containerfile": "dockerfile",
    "Makefile": "makefile",
    "GNUmakefile": "makefile",
    "CMakeLists.txt": "cmake",
    "Jenkinsfile": "groovy",
}

TREE_SITTER_LANGUAGES = frozenset({"python", "javascript", "typescript", "tsx", "go", "rust", "java", "ruby"})
HEURISTIC_LANGUAGES = frozenset(
    {
        "c",
        "cpp",
        "objc",
        "csharp",
        "php",
        "kotlin",
        "swift",
        "scala",
        "groovy",
        "shell",
        "lua",
        "perl",
        "r",
        "elixir",
        "erlang",
        "haskell",
        "ocaml",
        "fsharp",
        "dart",
        "julia",
        "clojure",
        "zig",
        "nim",
        "crystal",
        "elm",
        "vb",
        "powershell",
        "tcl",
        "pascal",
        "vue",
        "svelte",
    }
)


def language_for(path: str) -> str:
    """The language of a '/'-separated path by its name, or '' when unknown."""
    pure = PurePosixPath(path)
    name = pure.name
    if name in _FILENAMES:
        return _FILENAMES[name]
    if name.startswith("Dockerfile."):
        return "dockerfile"
    suffix = pure.suffix
    return _EXTENSIONS.get(suffix) or _EXTENSIONS.get(suffix.lower(), "")


def is_code(language: str) -> bool:
    return language in TREE_SITTER_LANGUAGES or language in HEURISTIC_LANGUAGES


# --- tree-sitter grammars -----------------------------------------------------------------------------------------

# module and function of the official grammar wheels (each exposes a PyCapsule for tree_sitter.Language)
_GRAMMARS: dict[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "java": ("tree_sitter_java", "language"),
    "ruby": ("tree_sitter_ruby", "language"),
}


@dataclass(frozen=True, slots=True)
class Grammar:
    language: tree_sitter.Language
    query: tree_sitter.Query


@cache
def grammar(name: str) -> Grammar | None:
    """The compiled grammar and extraction query of a language, or None when its wheel is missing or broken."""
    from workspace.index.queries import QUERIES

    spec = _GRAMMARS.get(name)
    source = QUERIES.get(name)
    if spec is None or source is None:
        return None
    try:
        module = importlib.import_module(spec[0])
        capsule_fn: Callable[[], object] = getattr(module, spec[1])
        language = tree_sitter.Language(capsule_fn())
        return Grammar(language=language, query=tree_sitter.Query(language, source))
    except Exception:  # an ABI mismatch or a query the grammar rejects: fall back to the heuristic, loudly
        logger.warning("tree-sitter grammar %s is unavailable; using the heuristic extractor", name, exc_info=True)
        return None


# A Parser holds mutable state, so each thread gets its own (Celery may run threads; tests run several).
_local = threading.local()


def parser_for(name: str) -> tree_sitter.Parser | None:
    loaded = grammar(name)
    if loaded is None:
        return None
    parsers: dict[str, tree_sitter.Parser] | None = getattr(_local, "parsers", None)
    if parsers is None:
        parsers = _local.parsers = {}
    parser = parsers.get(name)
    if parser is None:
        parser = parsers[name] = tree_sitter.Parser(loaded.language)
    return parser
