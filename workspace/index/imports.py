"""Resolving imports to workspace files: the dependency graph behind goto-definition and "who imports this".

Resolution is best effort and only ever points at a file that exists in the workspace; anything else (the
standard library, third-party packages, unsupported forms) keeps an empty target. A Go import names a package,
that is a directory: its target is the package's first non-test ``.go`` file (sorted), and readers treat every
file of that directory as imported.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from workspace.index.values import Import


@dataclass(frozen=True, slots=True)
class Dependency:
    module: str  # as written, or the submodule a from-import names ('pkg.mod.helpers', '.views')
    target_path: str  # '' when it does not resolve to a workspace file


@dataclass(frozen=True, slots=True)
class FileSet:
    """Every indexed path plus the lookups resolution needs, built once per index run."""

    paths: frozenset[str]
    python_modules: Mapping[str, str]  # dotted module name -> file
    go_modules: tuple[tuple[str, str], ...]  # (module path from go.mod, its directory), longest path first
    go_packages: Mapping[str, str]  # directory -> its first non-test .go file
    by_name: Mapping[str, tuple[str, ...]]  # file name -> paths (JVM imports name classes, i.e. files)


_GO_MODULE_LINE = re.compile(r"^\s*module\s+\"?([^\s\"]+)", re.MULTILINE)


def fileset_build(paths: Iterable[str], *, root_name: str = "", go_mods: Mapping[str, str] | None = None) -> FileSet:
    """``root_name`` is the root directory's own name (a root that is a Python package imports as that name);
    ``go_mods`` maps each go.mod path to its text."""
    all_paths = frozenset(paths)
    go_modules: list[tuple[str, str]] = []
    for path, text in (go_mods or {}).items():
        matched = _GO_MODULE_LINE.search(text)
        if matched:
            go_modules.append((matched.group(1), posixpath.dirname(path)))
    go_modules.sort(key=lambda item: -len(item[0]))
    go_packages: dict[str, str] = {}
    by_name: dict[str, list[str]] = {}
    for path in sorted(all_paths):
        name = posixpath.basename(path)
        if name.endswith((".java", ".kt")):
            by_name.setdefault(name, []).append(path)
        if name.endswith(".go") and not name.endswith("_test.go"):
            go_packages.setdefault(posixpath.dirname(path), path)
    return FileSet(
        paths=all_paths,
        python_modules=_python_modules(all_paths, root_name),
        go_modules=tuple(go_modules),
        go_packages=go_packages,
        by_name={name: tuple(found) for name, found in by_name.items()},
    )


def _python_modules(paths: frozenset[str], root_name: str) -> dict[str, str]:
    """Each Python file under up to three names: by its package chain (walking up while __init__.py exists,
    prefixed by the root's name when the root is itself a package), by its path from the root, and by its path
    below a src/ or lib/ directory. The first name claimed wins, in that order."""
    python = sorted(path for path in paths if path.endswith((".py", ".pyi")))
    packages = {posixpath.dirname(path) for path in python if posixpath.basename(path).startswith("__init__.")}
    named: list[list[tuple[str, str]]] = [[], [], []]
    for path in python:
        stem = path.rsplit(".", 1)[0].split("/")
        if stem[-1] == "__init__":
            stem = stem[:-1]
        dirs = path.split("/")[:-1]
        top = len(dirs)
        while top > 0 and "/".join(dirs[:top]) in packages:
            top -= 1
        chain = stem[top:]
        if top == 0 and "" in packages and root_name:
            chain = [root_name, *chain]
        if chain:
            named[0].append((".".join(chain), path))
        if stem:
            named[1].append((".".join(stem), path))
        if len(stem) > 1 and stem[0] in ("src", "lib"):
            named[2].append((".".join(stem[1:]), path))
    modules: dict[str, str] = {}
    for group in named:
        for name, path in group:
            modules.setdefault(name, path)
    return modules


def imports_resolve(files: FileSet, *, path: str, language: str, imports: Sequence[Import]) -> list[Dependency]:
    """The dependency rows of one file: each import, or each submodule a from-import names, with its target."""
    out: dict[tuple[str, str], None] = {}
    separator = {"python": ".", "rust": "::"}.get(language)
    for item in imports:
        whole = module_resolve(files, path=path, language=language, module=item.module)
        whole_needed = True
        if separator and item.names:
            whole_needed = False
            for name in item.names:
                joined = item.module + name if item.module.endswith(".") else f"{item.module}{separator}{name}"
                target = "" if name == "*" else module_resolve(files, path=path, language=language, module=joined)
                if target and target != whole:
                    out[(joined, target)] = None
                else:
                    whole_needed = True  # a name defined in the module itself, not a submodule
        if whole_needed:
            out[(item.module, whole)] = None
    # NUL cannot be stored in PostgreSQL text; a string literal in a file may hold one.
    return [Dependency(module.replace("\x00", "")[:500], target) for module, target in out]


def module_resolve(files: FileSet, *, path: str, language: str, module: str) -> str:
    """The workspace file that ``module``, imported from ``path``, refers to; '' when there is none."""
    resolver = _RESOLVERS.get(language)
    if resolver is None or not module:
        return ""
    return resolver(files, path, module)


def _existing(files: FileSet, candidates: Iterable[str]) -> str:
    for candidate in candidates:
        if candidate and candidate in files.paths:
            return candidate
    return ""


def _inside(base: str, relative: str) -> str | None:
    """``relative`` joined to ``base`` and normalised, or None when it climbs above the root."""
    joined = posixpath.normpath(posixpath.join(base, relative))
    if joined == ".":
        return ""
    if joined == ".." or joined.startswith(("../", "/")):
        return None
    return joined


def _python(files: FileSet, importer: str, module: str) -> str:
    if not module.startswith("."):
        return files.python_modules.get(module, "")
    dots = len(module) - len(module.lstrip("."))
    parts = importer.split("/")[:-1]
    if dots - 1 > len(parts):
        return ""
    base = parts[: len(parts) - (dots - 1)]
    rest = [part for part in module[dots:].split(".") if part]
    stem = "/".join([*base, *rest])
    prefix = f"{stem}/" if stem else ""
    candidates = [f"{prefix}__init__.py", f"{prefix}__init__.pyi"]
    if rest:
        candidates = [f"{stem}.py", f"{stem}.pyi", *candidates]
    return _existing(files, candidates)


_JS_EXTENSIONS = (".ts", ".tsx", ".d.ts", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts", ".vue", ".svelte", ".json")
# TypeScript's ESM style imports './x.js' for the file x.ts
# (https://www.typescriptlang.org/docs/handbook/modules/reference.html#file-extension-substitution).
_TS_SUBSTITUTES = {".js": (".ts", ".tsx"), ".jsx": (".tsx",), ".mjs": (".mts",), ".cjs": (".cts",)}


def _javascript(files: FileSet, importer: str, module: str) -> str:
    if not (module.startswith(("./", "../")) or module in (".", "..")):
        return ""  # a package name or a path alias: not resolvable without the bundler's configuration
    joined = _inside(posixpath.dirname(importer), module)
    if joined is None:
        return ""
    candidates = [joined] if joined else []
    stem, extension = posixpath.splitext(joined)
    candidates += [stem + substitute for substitute in _TS_SUBSTITUTES.get(extension, ())]
    candidates += [joined + extension for extension in _JS_EXTENSIONS]
    index = f"{joined}/index" if joined else "index"
    candidates += [index + extension for extension in _JS_EXTENSIONS]
    return _existing(files, candidates)


def _go(files: FileSet, importer: str, module: str) -> str:
    for module_path, directory in files.go_modules:
        if module == module_path or module.startswith(module_path + "/"):
            package = _inside(directory, module[len(module_path) :].lstrip("/") or ".")
            return files.go_packages.get(package, "") if package is not None else ""
    return ""


def _rust(files: FileSet, importer: str, module: str) -> str:
    segments = ["self", module[4:].strip()] if module.startswith("mod ") else module.split("::")
    crate = _rust_crate_root(files, importer)
    if crate is None or not segments:
        return ""
    relative = importer[len(crate) + 1 :] if crate else importer
    here = relative.removesuffix(".rs").split("/")
    if relative in ("lib.rs", "main.rs"):
        here = []
    elif here[-1] == "mod":
        here = here[:-1]
    bases: list[list[str]]
    if segments[0] == "crate":
        bases, rest = [[]], segments[1:]
    elif segments[0] in ("self", "super"):
        base = list(here)
        while segments and segments[0] in ("self", "super"):
            if segments.pop(0) == "super":
                if not base:
                    return ""
                base.pop()
        bases, rest = [base], segments
    else:  # a 2018-edition path relative to the current module, or an external crate
        bases, rest = [here, []], segments
    for base in bases:
        for length in range(len(rest), 0, -1):
            stem = "/".join(part for part in (crate, *base, *rest[:length]) if part)
            found = _existing(files, (f"{stem}.rs", f"{stem}/mod.rs"))
            if found:
                return found
    return ""


def _rust_crate_root(files: FileSet, importer: str) -> str | None:
    """The directory holding lib.rs or main.rs nearest above ``importer`` ('' = the workspace root)."""
    directory = posixpath.dirname(importer)
    while True:
        prefix = f"{directory}/" if directory else ""
        if f"{prefix}lib.rs" in files.paths or f"{prefix}main.rs" in files.paths:
            return directory
        if not directory:
            return None
        directory = posixpath.dirname(directory)


def _jvm(files: FileSet, importer: str, module: str) -> str:
    if module.endswith("*"):
        return ""
    parts = [part for part in module.split(".") if part]
    extensions = (".kt", ".java") if importer.endswith((".kt", ".kts")) else (".java", ".kt")
    # `import static a.b.C.member` names a member of class C: try the class too.
    for length in (len(parts), len(parts) - 1):
        if length < 1:
            break
        for extension in extensions:
            suffix = "/".join(parts[:length]) + extension
            for candidate in files.by_name.get(parts[length - 1] + extension, ()):
                if candidate == suffix or candidate.endswith("/" + suffix):
                    return candidate
    return ""


def _ruby(files: FileSet, importer: str, module: str) -> str:
    name = module if module.endswith(".rb") else f"{module}.rb"
    if module.startswith("."):
        joined = _inside(posixpath.dirname(importer), name)
        return _existing(files, [joined] if joined else [])
    return _existing(files, (f"lib/{name}", name, f"app/{name}"))


def _relative_or_rooted(files: FileSet, importer: str, module: str) -> str:
    """C/C++ includes and PHP requires: next to the file, then from the root, include/ and src/."""
    candidates = []
    for base in (posixpath.dirname(importer), "", "include", "src"):
        joined = _inside(base, module)
        if joined:
            candidates.append(joined)
    return _existing(files, candidates)


_RESOLVERS: dict[str, Callable[[FileSet, str, str], str]] = {
    "python": _python,
    "javascript": _javascript,
    "typescript": _javascript,
    "tsx": _javascript,
    "vue": _javascript,
    "svelte": _javascript,
    "go": _go,
    "rust": _rust,
    "java": _jvm,
    "kotlin": _jvm,
    "ruby": _ruby,
    "c": _relative_or_rooted,
    "cpp": _relative_or_rooted,
    "objc": _relative_or_rooted,
    "php": _relative_or_rooted,
}
