"""Pure release notes: commits grouped by Conventional Commits type, rendered as Markdown.

Follows conventionalcommits.org v1.0.0: ``type(scope)!: description``; a '!' or a ``BREAKING CHANGE:`` /
``BREAKING-CHANGE:`` footer marks a breaking change. Subjects that do not follow the format go under "Other".
No Django, no GitPython: callers pass commit values (``workspace.gitops.commits_between`` gives them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

# Section order of the rendered notes; titles as most changelog generators print them.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("feat", "Features"),
    ("fix", "Bug fixes"),
    ("perf", "Performance"),
    ("refactor", "Refactoring"),
    ("docs", "Documentation"),
    ("test", "Tests"),
    ("build", "Build"),
    ("ci", "CI"),
    ("chore", "Chores"),
    ("style", "Style"),
    ("revert", "Reverts"),
)
KNOWN_TYPES = frozenset(name for name, _ in SECTIONS)
_ALIASES = {"feature": "feat", "bugfix": "fix", "docs": "docs", "doc": "docs", "tests": "test", "perf": "perf"}

_SUBJECT = re.compile(r"^(?P<type>[A-Za-z]+)(?:\((?P<scope>[^()\r\n]*)\))?(?P<bang>!)?:[ \t]+(?P<desc>\S.*)$")
_GIT_REVERT = re.compile(r'^Revert "(?P<subject>.+)"$')
# A footer token ends a breaking-change note: "Token: value" or "Token #value" (git trailer convention).
_FOOTER = re.compile(r"^(?:BREAKING[ -]CHANGE|[A-Za-z][\w-]*)(?::[ \t]|[ \t]#)")
_BREAKING_FOOTER = re.compile(r"^BREAKING[ -]CHANGE:[ \t]*(?P<text>.*)$")


class CommitLike(Protocol):
    @property
    def sha(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def author(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ParsedCommit:
    sha: str
    type: str  # a KNOWN_TYPES member, or "other"
    scope: str
    description: str
    breaking: bool
    breaking_note: str  # the footer's text, else ""
    author: str


def _breaking_note(body: str) -> str:
    note: list[str] = []
    collecting = False
    for line in body.splitlines():
        match = _BREAKING_FOOTER.match(line)
        if match:
            collecting = True
            note.append(match["text"].strip())
        elif collecting:
            if _FOOTER.match(line):
                collecting = False
            elif line.strip():
                note.append(line.strip())
            # a blank line inside the footer keeps it going only until the next token
    return " ".join(part for part in note if part)


def _has_breaking_footer(body: str) -> bool:
    return any(_BREAKING_FOOTER.match(line) for line in body.splitlines())


def commit_parse(*, sha: str, subject: str, body: str = "", author: str = "") -> ParsedCommit:
    subject = subject.strip()
    breaking = _has_breaking_footer(body)
    note = _breaking_note(body) if breaking else ""
    match = _SUBJECT.match(subject)
    if match:
        kind = match["type"].lower()
        kind = _ALIASES.get(kind, kind)
        known = kind in KNOWN_TYPES
        return ParsedCommit(
            sha=sha,
            type=kind if known else "other",
            scope=(match["scope"] or "").strip() if known else "",
            description=match["desc"].strip() if known else subject,
            breaking=breaking or bool(match["bang"]),
            breaking_note=note,
            author=author,
        )
    reverted = _GIT_REVERT.match(subject)
    if reverted:  # git's own "Revert "<subject>"" message
        return ParsedCommit(sha, "revert", "", reverted["subject"], breaking, note, author)
    return ParsedCommit(sha, "other", "", subject, breaking, note, author)


@dataclass(frozen=True, slots=True)
class ReleaseNotes:
    breaking: tuple[ParsedCommit, ...]
    sections: tuple[tuple[str, str, tuple[ParsedCommit, ...]], ...]  # (type, title, commits), non-empty only


def release_notes_group(commits: Iterable[CommitLike]) -> ReleaseNotes:
    """Group commits (newest first, as git lists them) by type; breaking ones are also listed on their own."""
    parsed = [commit_parse(sha=c.sha, subject=c.subject, body=c.body, author=c.author) for c in commits]
    sections = []
    for kind, title in (*SECTIONS, ("other", "Other")):
        members = tuple(p for p in parsed if p.type == kind)
        if members:
            sections.append((kind, title, members))
    return ReleaseNotes(breaking=tuple(p for p in parsed if p.breaking), sections=tuple(sections))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _item(commit: ParsedCommit, *, text: str | None = None) -> str:
    scope = f"**{_one_line(commit.scope)}:** " if commit.scope else ""
    return f"- {scope}{_one_line(text or commit.description)} ({commit.sha[:7]})"


def release_notes_render(commits: Iterable[CommitLike], *, title: str = "") -> str:
    """Markdown: an optional '## title', then '### Breaking changes' and one '###' section per type."""
    notes = release_notes_group(commits)
    out: list[str] = [f"## {_one_line(title)}", ""] if title else []
    if notes.breaking:
        out += ["### Breaking changes", ""]
        out += [_item(commit, text=commit.breaking_note or None) for commit in notes.breaking]
        out.append("")
    for _, section_title, members in notes.sections:
        out += [f"### {section_title}", ""]
        out += [_item(commit) for commit in members]
        out.append("")
    if not notes.sections:
        out += ["No changes.", ""]
    return "\n".join(out).rstrip("\n") + "\n"
