"""What a project's manifests and config files say: its dependencies, frameworks and lint/style tools.

``signals_for(path, data)`` looks at one file by its name. A malformed file yields nothing (logged at DEBUG): a
broken manifest in someone's repository must never stop the index.
"""

from __future__ import annotations

import configparser
import fnmatch
import json
import logging
import posixpath
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from workspace.index.frameworks import FRAMEWORKS, Signal, framework_of, lint, manifest
from workspace.index.manifests import gemfile, go_mod, gradle, pom, requirements_txt

logger = logging.getLogger(__name__)

__all__ = ["FRAMEWORKS", "Signal", "signals_for"]

# Files that only configure a lint or style tool: their presence is the signal.
_LINT_FILES: tuple[tuple[str, str], ...] = (
    (".eslintrc", "eslint"),
    (".eslintrc.*", "eslint"),
    ("eslint.config.*", "eslint"),
    (".prettierrc", "prettier"),
    (".prettierrc.*", "prettier"),
    ("prettier.config.*", "prettier"),
    ("ruff.toml", "ruff"),
    (".ruff.toml", "ruff"),
    (".flake8", "flake8"),
    ("mypy.ini", "mypy"),
    (".mypy.ini", "mypy"),
    (".pylintrc", "pylint"),
    ("pylintrc", "pylint"),
    (".editorconfig", "editorconfig"),
    (".rubocop.yml", "rubocop"),
    (".golangci.yml", "golangci-lint"),
    (".golangci.yaml", "golangci-lint"),
    (".golangci.toml", "golangci-lint"),
    (".golangci.json", "golangci-lint"),
    ("rustfmt.toml", "rustfmt"),
    (".rustfmt.toml", "rustfmt"),
    ("clippy.toml", "clippy"),
    (".clippy.toml", "clippy"),
    ("checkstyle.xml", "checkstyle"),
    ("biome.json", "biome"),
    ("biome.jsonc", "biome"),
    (".stylelintrc", "stylelint"),
    (".stylelintrc.*", "stylelint"),
    ("stylelint.config.*", "stylelint"),
    (".pre-commit-config.yaml", "pre-commit"),
    (".clang-format", "clang-format"),
    (".clang-tidy", "clang-tidy"),
    (".swiftlint.yml", "swiftlint"),
    ("phpcs.xml", "phpcs"),
    ("phpcs.xml.dist", "phpcs"),
    (".php-cs-fixer.php", "php-cs-fixer"),
    (".php-cs-fixer.dist.php", "php-cs-fixer"),
    ("detekt.yml", "detekt"),
)
# [tool.<name>] tables in pyproject.toml and sections of setup.cfg / tox.ini that configure a lint tool.
_PYPROJECT_TOOLS = ("ruff", "black", "isort", "mypy", "pylint", "pyright", "flake8", "bandit", "yapf", "pydocstyle")
_INI_SECTIONS = {"flake8": "flake8", "mypy": "mypy", "isort": "isort", "pycodestyle": "pycodestyle", "pylint": "pylint"}
_REQUIREMENTS = re.compile(r"(?:.*requirements.*|requirements/.+)\.(?:txt|in)$")


def signals_for(path: str, data: bytes) -> list[Signal]:
    """The signals one file gives, by its '/'-separated path and content; [] for files that say nothing."""
    parse = _parser_for(path)
    if parse is None:
        return []
    try:
        found = list(parse(data.decode("utf-8-sig")))
    except Exception:  # malformed: TOML, JSON, XML and our own parsers all raise their own types
        logger.debug("ignoring malformed manifest %s", path, exc_info=True)
        return []
    return _with_frameworks(found)


def _parser_for(path: str) -> Callable[[str], Iterable[Signal]] | None:
    name = posixpath.basename(path)
    by_name: dict[str, Callable[[str], Iterable[Signal]]] = {
        "package.json": _package_json,
        "pyproject.toml": _pyproject,
        "Pipfile": _pipfile,
        "go.mod": go_mod,
        "Cargo.toml": _cargo,
        "pom.xml": pom,
        "build.gradle": gradle,
        "build.gradle.kts": gradle,
        "Gemfile": gemfile,
        "composer.json": _composer,
        "setup.cfg": _ini,
        "tox.ini": _ini,
    }
    if name in by_name:
        return by_name[name]
    if name.startswith("tsconfig") and name.endswith(".json"):
        return _tsconfig
    if _REQUIREMENTS.fullmatch(path.lower()) and "/node_modules/" not in path:
        dev = any(word in name.lower() for word in ("dev", "test", "lint", "doc")) or "/dev" in path.lower()
        return lambda text: requirements_txt(text, dev=dev)
    for pattern, tool in _LINT_FILES:
        if fnmatch.fnmatchcase(name, pattern):
            return _presence(tool)
    return None


def _presence(tool: str) -> Callable[[str], Iterable[Signal]]:
    def parse(text: str) -> list[Signal]:
        return [lint(tool)]

    return parse


def _with_frameworks(found: list[Signal]) -> list[Signal]:
    out = list(found)
    seen: set[str] = set()
    for signal in found:
        if signal.kind != "dependency":
            continue
        framework = framework_of(signal.ecosystem, signal.name)
        if framework and framework not in seen:
            seen.add(framework)
            out.append(Signal("framework", signal.ecosystem, framework, signal.version, signal.dev))
    return out


def _no_skip(name: str) -> bool:
    return False


def _dependency_map(ecosystem: str, table: Any, *, dev: bool, skip: Callable[[str], bool] = _no_skip) -> list[Signal]:
    """``{name: "1.2" | {"version": "1.2", "package": "real-name"}}``, the shape of npm, Cargo, Poetry, Pipfile."""
    if not isinstance(table, Mapping):
        return []
    out = []
    for name, spec in table.items():
        if not isinstance(name, str) or skip(name):
            continue
        version = ""
        real = name
        if isinstance(spec, str):
            version = spec
        elif isinstance(spec, Mapping):
            version = str(spec.get("version", ""))
            real = str(spec.get("package", name))
        out.append(Signal("dependency", ecosystem, real, "" if version == "*" else version[:100], dev))
    return out


def _package_json(text: str) -> list[Signal]:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("package.json is not an object")
    out = [manifest("npm")]
    for key, dev in (("dependencies", False), ("devDependencies", True), ("peerDependencies", False)):
        out += _dependency_map("npm", data.get(key), dev=dev)
    out += _dependency_map("npm", data.get("optionalDependencies"), dev=False)
    for key, tool in (("eslintConfig", "eslint"), ("prettier", "prettier"), ("stylelint", "stylelint")):
        if key in data:
            out.append(lint(tool))
    return out


def _composer(text: str) -> list[Signal]:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("composer.json is not an object")

    def platform(name: str) -> bool:  # PHP itself and its extensions are not packages
        return name in ("php", "composer-plugin-api") or name.startswith(("ext-", "lib-"))

    out = [manifest("composer")]
    out += _dependency_map("composer", data.get("require"), dev=False, skip=platform)
    out += _dependency_map("composer", data.get("require-dev"), dev=True, skip=platform)
    return out


def _pyproject(text: str) -> list[Signal]:
    data = tomllib.loads(text)
    out: list[Signal] = []
    project = _table(data.get("project"))
    tool = _table(data.get("tool"))
    poetry = _table(tool.get("poetry"))
    if project or poetry or "build-system" in data:
        out.append(manifest("pypi"))
    out += requirements_txt("\n".join(_strings(project.get("dependencies"))), dev=False, with_manifest=False)
    optional = project.get("optional-dependencies")
    for group, items in optional.items() if isinstance(optional, dict) else ():
        dev = group.lower() in ("dev", "test", "tests", "testing", "lint", "docs", "typing")
        out += requirements_txt("\n".join(_strings(items)), dev=dev, with_manifest=False)
    groups = data.get("dependency-groups")  # PEP 735: development-only by definition
    for items in groups.values() if isinstance(groups, dict) else ():
        out += requirements_txt("\n".join(_strings(items)), dev=True, with_manifest=False)
    out += _dependency_map("pypi", poetry.get("dependencies"), dev=False, skip=lambda name: name == "python")
    out += _dependency_map("pypi", poetry.get("dev-dependencies"), dev=True)
    poetry_groups = poetry.get("group")
    for group in poetry_groups.values() if isinstance(poetry_groups, dict) else ():
        if isinstance(group, dict):
            out += _dependency_map("pypi", group.get("dependencies"), dev=True)
    out += [lint(name) for name in _PYPROJECT_TOOLS if name in tool]
    return out


def _table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _pipfile(text: str) -> list[Signal]:
    data = tomllib.loads(text)
    return [
        manifest("pypi"),
        *_dependency_map("pypi", data.get("packages"), dev=False),
        *_dependency_map("pypi", data.get("dev-packages"), dev=True),
    ]


def _cargo(text: str) -> list[Signal]:
    data = tomllib.loads(text)
    out = [manifest("cargo")]
    tables: list[tuple[Any, bool]] = [
        (data.get("dependencies"), False),
        (data.get("dev-dependencies"), True),
        (data.get("build-dependencies"), False),
    ]
    workspace = data.get("workspace")
    if isinstance(workspace, dict):
        tables.append((workspace.get("dependencies"), False))
    targets = data.get("target")
    for target in targets.values() if isinstance(targets, dict) else ():
        if isinstance(target, dict):
            tables += [(target.get("dependencies"), False), (target.get("dev-dependencies"), True)]
    for table, dev in tables:
        out += _dependency_map("cargo", table, dev=dev)
    return out


def _ini(text: str) -> list[Signal]:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read_string(text)
    # mypy's per-module sections are named like "mypy-package.*"
    heads = {section.split("-")[0] for section in parser.sections()}
    return [lint(tool) for tool in sorted({_INI_SECTIONS[head] for head in heads if head in _INI_SECTIONS})]


def _tsconfig(text: str) -> list[Signal]:
    data = json.loads(_strip_jsonc(text))
    if not isinstance(data, dict):
        raise ValueError("tsconfig is not an object")
    options = data.get("compilerOptions")
    strict = isinstance(options, dict) and options.get("strict") is True
    return [lint("tsconfig", version="strict" if strict else "")]


def _strip_jsonc(text: str) -> str:
    """JSON with comments and trailing commas (what tsc accepts) to plain JSON; strings are left alone."""
    out: list[str] = []
    index, length = 0, len(text)
    while index < length:
        char = text[index]
        if char == '"':
            end = index + 1
            while end < length and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            out.append(text[index : end + 1])
            index = end + 1
        elif text.startswith("//", index):
            newline = text.find("\n", index)
            index = length if newline < 0 else newline
        elif text.startswith("/*", index):
            close = text.find("*/", index + 2)
            index = length if close < 0 else close + 2
        else:
            out.append(char)
            index += 1
    return re.sub(r",(\s*[}\]])", r"\1", "".join(out))
