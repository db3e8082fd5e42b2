"""Pure conventional-commit parsing and Markdown release notes."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from workspace.release_notes import commit_parse, release_notes_group, release_notes_render


@dataclass(frozen=True)
class C:
    sha: str
    subject: str
    body: str = ""
    author: str = "Ada"


@pytest.mark.parametrize(
    ("subject", "body", "expected"),
    [
        ("feat: add export", "", ("feat", "", "add export", False)),
        ("fix(parser): handle tabs", "", ("fix", "parser", "handle tabs", False)),
        ("FEAT(api)!: new auth", "", ("feat", "api", "new auth", True)),
        ("refactor!: drop v1", "", ("refactor", "", "drop v1", True)),
        ("chore: bump", "Details.\n\nBREAKING CHANGE: node 20 required", ("chore", "", "bump", True)),
        ("perf: faster", "BREAKING-CHANGE: cache format changed", ("perf", "", "faster", True)),
        ('Revert "feat: add export"', "This reverts commit abc.", ("revert", "", "feat: add export", False)),
        ("revert: feat: add export", "", ("revert", "", "feat: add export", False)),
        ("wip: half done", "", ("other", "", "wip: half done", False)),
        ("Update README", "", ("other", "", "Update README", False)),
        ("feat:missing space", "", ("other", "", "feat:missing space", False)),
        ("docs(readme): typo", "", ("docs", "readme", "typo", False)),
    ],
)
def test_commit_parse(subject: str, body: str, expected: tuple[str, str, str, bool]) -> None:
    parsed = commit_parse(sha="a" * 40, subject=subject, body=body)
    assert (parsed.type, parsed.scope, parsed.description, parsed.breaking) == expected


def test_breaking_note_spans_lines_until_the_next_footer() -> None:
    body = "Why.\n\nBREAKING CHANGE: the config key\n  moved to [lynkr].\nReviewed-by: Bob\nRefs #12"
    assert commit_parse(sha="b", subject="feat: x", body=body).breaking_note == "the config key moved to [lynkr]."
    assert commit_parse(sha="b", subject="feat!: x", body="").breaking_note == ""
    assert commit_parse(sha="b", subject="feat: x", body="mentions BREAKING CHANGE: inline").breaking is False


def test_group_keeps_git_order_and_lists_breaking_twice() -> None:
    commits = [
        C("1" * 40, "fix: second fix"),
        C("2" * 40, "feat(ui)!: new layout"),
        C("3" * 40, "fix: first fix"),
        C("4" * 40, "random"),
        C("5" * 40, "ci: cache deps"),
    ]
    notes = release_notes_group(commits)
    assert [(kind, [c.sha[0] for c in members]) for kind, _, members in notes.sections] == [
        ("feat", ["2"]),
        ("fix", ["1", "3"]),
        ("ci", ["5"]),
        ("other", ["4"]),
    ]
    assert [c.sha[0] for c in notes.breaking] == ["2"]


def test_render_markdown() -> None:
    commits = [
        C("a" * 40, "feat(api): add  export\n"),
        C("b" * 40, "fix: crash", "BREAKING CHANGE: empty input now raises"),
        C("c" * 40, "tweak"),
    ]
    assert release_notes_render(commits, title="v1.1.0") == (
        "## v1.1.0\n\n"
        "### Breaking changes\n\n- empty input now raises (bbbbbbb)\n\n"
        "### Features\n\n- **api:** add export (aaaaaaa)\n\n"
        "### Bug fixes\n\n- crash (bbbbbbb)\n\n"
        "### Other\n\n- tweak (ccccccc)\n"
    )
    assert release_notes_render([]) == "No changes.\n"
