"""Parsers for manifests that are not plain TOML or JSON: requirements files, go.mod, pom.xml, Gradle, Gemfile.

Each takes the decoded text and returns signals; each raises on input it cannot make sense of (the caller,
``signals.signals_for``, turns that into "no signals").
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from workspace.index.frameworks import Signal, manifest

# PEP 508: a name, optional [extras], then a version specifier, a URL (`@ ...`) and/or `; markers`.
_REQUIREMENT = re.compile(r"\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?P<rest>.*)")


def requirements_txt(text: str, *, dev: bool, with_manifest: bool = True) -> list[Signal]:
    """pip's requirements format (https://pip.pypa.io/en/stable/reference/requirements-file-format/), also used
    for the PEP 508 strings of pyproject.toml."""
    out = [manifest("pypi")] if with_manifest else []
    for raw in text.replace("\\\n", "").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")) or "://" in line.split("@", 1)[0]:
            continue  # comments, options (-r, -e, --hash ...) and bare URLs
        matched = _REQUIREMENT.fullmatch(line.split(" --", 1)[0])
        if matched is None:
            continue
        rest = matched.group("rest").split(";", 1)[0].strip()
        version = "" if rest.startswith("@") else rest.strip("() ")
        out.append(Signal("dependency", "pypi", matched.group("name"), version[:100], dev))
    return out


_GO_REQUIRE = re.compile(r"(?P<path>\S+)\s+(?P<version>v\S+)")


def go_mod(text: str) -> list[Signal]:
    """The require directives of a go.mod (https://go.dev/ref/mod#go-mod-file-require), single or in blocks."""
    out = [manifest("go")]
    in_block = False
    for raw in text.splitlines():
        line = raw.split("//", 1)[0].strip()
        if in_block:
            if line.startswith(")"):
                in_block = False
                continue
            entry = line
        elif line.startswith("require"):
            entry = line[len("require") :].strip()
            if entry.startswith("("):
                in_block = True
                entry = entry[1:].strip()
        else:
            continue
        matched = _GO_REQUIRE.match(entry)
        if matched:
            out.append(Signal("dependency", "go", matched.group("path"), matched.group("version")[:100]))
    return out


def pom(text: str) -> list[Signal]:
    """A Maven POM's parent, dependencies and managed dependencies; scope test = dev.

    ElementTree does not fetch external entities, but it does expand internal ones (billion laughs), so any
    document with a DOCTYPE is refused outright: a POM never needs one.
    """
    lowered = text.lower()
    if "<!doctype" in lowered or "<!entity" in lowered:
        raise ValueError("pom.xml with a DOCTYPE is refused")
    project = ET.fromstring(text)  # noqa: S314 - see the docstring
    out = [manifest("maven")]

    def local(tag: str) -> str:
        return tag.rsplit("}", 1)[-1]

    def child(element: ET.Element, name: str) -> str:
        for item in element:
            if local(item.tag) == name:
                return (item.text or "").strip()
        return ""

    def coordinates(element: ET.Element) -> None:
        group, artifact = child(element, "groupId"), child(element, "artifactId")
        if group and artifact:
            dev = child(element, "scope") == "test"
            out.append(Signal("dependency", "maven", f"{group}:{artifact}", child(element, "version")[:100], dev))

    for section in project:
        name = local(section.tag)
        if name == "parent":
            coordinates(section)
        elif name in ("dependencies", "dependencyManagement"):
            for element in section.iter():
                if local(element.tag) == "dependency":
                    coordinates(element)
    return out


_GRADLE_DEPENDENCY = re.compile(
    r"\b(?P<conf>implementation|api|compileOnly|runtimeOnly|testImplementation|testRuntimeOnly|testCompileOnly|"
    r"annotationProcessor|kapt|ksp|developmentOnly|androidTestImplementation|debugImplementation)\b"
    r"[ \t]*\(?[ \t]*(?:platform[ \t]*\([ \t]*)?[\"'](?P<group>[^\"':\s]+):(?P<artifact>[^\"':\s]+)"
    r"(?::(?P<version>[^\"'\s]+))?[\"']"
)
_GRADLE_PLUGIN = re.compile(r"\bid[ \t]*\(?[ \t]*[\"'](?P<id>[\w.-]+)[\"']")
# Plugin ids that are the framework (https://plugins.gradle.org); its dependencies often carry no version.
_GRADLE_PLUGINS = {
    "org.springframework.boot": "spring-boot",
    "io.quarkus": "quarkus",
    "io.micronaut.application": "micronaut",
}


def gradle(text: str) -> list[Signal]:
    """Dependency lines of build.gradle / build.gradle.kts (Groovy or Kotlin DSL) and well-known plugins."""
    out = [manifest("gradle")]
    for matched in _GRADLE_DEPENDENCY.finditer(text):
        dev = matched.group("conf").startswith(("test", "androidTest"))
        name = f"{matched.group('group')}:{matched.group('artifact')}"
        out.append(Signal("dependency", "gradle", name, (matched.group("version") or "")[:100], dev))
    for matched in _GRADLE_PLUGIN.finditer(text):
        framework = _GRADLE_PLUGINS.get(matched.group("id"))
        if framework:
            out.append(Signal("framework", "gradle", framework))
    return out


_GEM = re.compile(r"\s*gem\s*\(?\s*[\"'](?P<name>[^\"']+)[\"'](?:\s*,\s*[\"'](?P<version>[^\"']+)[\"'])?")
_GEM_GROUP = re.compile(r"\s*group\b(?P<groups>.*?)\bdo\b")
_BLOCK_OPEN = re.compile(r"\bdo\s*(?:\|[^|]*\|)?\s*$")
_DEV_GROUPS = re.compile(r":(?:development|test)\b|[\"'](?:development|test)[\"']")


def gemfile(text: str) -> list[Signal]:
    """gem lines of a Gemfile; inside `group :development` / `:test` blocks (or with group: :test) = dev."""
    out = [manifest("gem")]
    blocks: list[bool] = []  # one entry per open `do` block: is it a development/test group?
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        group = _GEM_GROUP.match(line)
        if group:
            blocks.append(bool(_DEV_GROUPS.search(group.group("groups"))))
            continue
        if _BLOCK_OPEN.search(line):
            blocks.append(False)
            continue
        if line.strip() == "end":
            if blocks:
                blocks.pop()
            continue
        matched = _GEM.match(line)
        if matched:
            dev = any(blocks) or ("group" in line and bool(_DEV_GROUPS.search(line)))
            out.append(Signal("dependency", "gem", matched.group("name"), (matched.group("version") or "")[:100], dev))
    return out
