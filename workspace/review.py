"""Pure review of a unified diff: per-file counts, and findings a reviewer should look at before a commit.

No Django, no GitPython: input is the text of ``git diff`` (or any unified diff). Secrets are never echoed in
full; a finding shows the first four characters and masks the rest.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from workspace.git.unified_diff import DiffLine, FileDiff, Hunk, parse_unified_diff

__all__ = [
    "DiffLine",
    "DiffSummary",
    "FileDiff",
    "Finding",
    "Hunk",
    "diff_review",
    "diff_summary",
    "mask_secret",
    "parse_unified_diff",
]


@dataclass(frozen=True, slots=True)
class DiffSummary:
    files: tuple[FileDiff, ...]
    added: int
    removed: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": [
                {
                    "path": f.path,
                    "old_path": f.old_path,
                    "added": f.added,
                    "removed": f.removed,
                    "new": f.new,
                    "deleted": f.deleted,
                    "renamed": f.renamed,
                    "binary": f.binary,
                }
                for f in self.files
            ],
            "totals": {"files": len(self.files), "added": self.added, "removed": self.removed},
        }


def diff_summary(diff: str | list[FileDiff]) -> DiffSummary:
    files = tuple(parse_unified_diff(diff) if isinstance(diff, str) else diff)
    return DiffSummary(files, sum(f.added for f in files), sum(f.removed for f in files))


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    severity: str  # high | medium | low | info
    path: str
    line: int | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "path": self.path,
            "line": self.line,
            "message": self.message,
        }


def mask_secret(value: str) -> str:
    """The first four characters, the rest as '*' (never the whole secret)."""
    return value[:4] + "*" * max(len(value) - 4, 4)


# --- secrets in added lines -----------------------------------------------------------------------------------
# Token shapes from the vendors' docs: AWS access key ids (docs.aws.amazon.com/IAM/latest/UserGuide/
# id_credentials_access-keys.html), GitHub tokens (github.blog 2021-04-05 "Behind GitHub's new authentication
# token formats"), Slack tokens (api.slack.com/authentication/token-types).
_TOKEN_PATTERNS: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    ("aws_access_key", "AWS access key id", re.compile(r"\b((?:AKIA|ASIA)[0-9A-Z]{16})\b")),
    ("github_token", "GitHub token", re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{36,})\b")),
    ("github_token", "GitHub fine-grained token", re.compile(r"\b(github_pat_[A-Za-z0-9_]{22,})\b")),
    ("slack_token", "Slack token", re.compile(r"\b(xox[abpr]-[A-Za-z0-9-]{10,})\b")),
)
_PRIVATE_KEY = re.compile(r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY( BLOCK)?-----")
_ASSIGNED_SECRET = re.compile(
    r"""(?ix)
    (?P<name>[\w.-]*(?:api[_-]?key|secret|passw(?:or)?d|pwd|token|access[_-]?key|private[_-]?key)[\w.-]*)["']?
    \s*(?::=|=>|=|:)\s*
    (?P<quote>["'])(?P<value>[^"'\s]{12,})(?P=quote)
    """
)
_ASSIGNED_LITERAL = re.compile(
    r"""(?x)(?P<name>[A-Za-z_][\w.-]*)["']?\s*(?::=|=>|=|:)\s*["'](?P<value>[A-Za-z0-9+/=_-]{32,})["']"""
)
_PLACEHOLDER = re.compile(r"(?i)^(?:\$|\{\{|<|%\()|example|placeholder|changeme|your[_-]|dummy|xxxx|\*\*\*\*")


def _entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def _high_entropy(value: str) -> bool:
    # Shannon entropy per character: hex digests sit near 4 bits (max 4), base64 keys near 5.5 (max 6); prose and
    # identifiers stay well below these thresholds.
    if re.fullmatch(r"[0-9a-fA-F]+", value):
        return len(value) >= 32 and _entropy(value) > 3.0
    return _entropy(value) > 4.2


def _secret_findings(path: str, line: DiffLine) -> list[Finding]:
    text, where = line.text, line.new_no
    found: list[Finding] = []
    for kind, label, pattern in _TOKEN_PATTERNS:
        for token in pattern.finditer(text):
            found.append(Finding(kind, "high", path, where, f"{label} added: {mask_secret(token.group(1))}"))
    if _PRIVATE_KEY.search(text):
        found.append(Finding("private_key", "high", path, where, "private key block added (key material not shown)"))
    if found:
        return found
    match = _ASSIGNED_SECRET.search(text)
    if match and not _PLACEHOLDER.search(match["value"]):
        message = f"{match['name']} is assigned a literal secret-looking value: {mask_secret(match['value'])}"
        return [Finding("hardcoded_secret", "high", path, where, message)]
    match = _ASSIGNED_LITERAL.search(text)
    if match and _high_entropy(match["value"]) and not _PLACEHOLDER.search(match["value"]):
        message = f"{match['name']} is assigned a high-entropy string (a key?): {mask_secret(match['value'])}"
        return [Finding("high_entropy_string", "medium", path, where, message)]
    return []


# --- path classes ---------------------------------------------------------------------------------------------

_TEST_PATH = re.compile(
    r"(?:^|/)(?:tests?|__tests__|spec)/|(?:^|/)test_[^/]*\.py$|_test\.py$|_test\.go$|\.(?:spec|test)\.[cm]?[jt]sx?$"
)
_TEST_FUNCTION = re.compile(
    r"^\s*(?:async\s+)?def\s+(test_\w+)|^\s*func\s+(Test\w+)\s*\(|^\s*(?:it|test)(?:\.\w+)?\s*\(\s*['\"`]([^'\"`]+)"
)
LOCKFILE_MANIFESTS: dict[str, tuple[str, ...]] = {
    "package-lock.json": ("package.json",),
    "npm-shrinkwrap.json": ("package.json",),
    "yarn.lock": ("package.json",),
    "pnpm-lock.yaml": ("package.json",),
    "poetry.lock": ("pyproject.toml",),
    "uv.lock": ("pyproject.toml",),
    "Pipfile.lock": ("Pipfile",),
    "Cargo.lock": ("Cargo.toml",),
    "go.sum": ("go.mod",),
    "Gemfile.lock": ("Gemfile", "*.gemspec"),
    "composer.lock": ("composer.json",),
}
_MIGRATION = re.compile(
    r"(?:^|/)(?:migrations/(?!__init__\.py$)[^/]+\.(?:py|sql)|db/migrate/[^/]+\.rb|alembic/versions/[^/]+\.py)$"
)
_CI_CONFIG = re.compile(
    r"^(?:\.github/workflows/[^/]+\.ya?ml|\.gitlab-ci\.yml|\.gitlab/ci/.+\.ya?ml|\.circleci/config\.ya?ml|"
    r"Jenkinsfile|azure-pipelines\.ya?ml|\.travis\.yml|bitbucket-pipelines\.yml|\.buildkite/.+)$"
)
_ENV_TEMPLATES = (".example", ".sample", ".template", ".dist", ".defaults")


def _is_env_file(path: str) -> bool:
    name = posixpath.basename(path)
    return (name == ".env" or name.startswith(".env.")) and not name.endswith(_ENV_TEMPLATES)


def _manifest_changed(lock_path: str, changed: set[str]) -> bool:
    directory = posixpath.dirname(lock_path)
    for manifest in LOCKFILE_MANIFESTS[posixpath.basename(lock_path)]:
        if "*" in manifest:
            suffix = manifest.lstrip("*")
            if any(posixpath.dirname(p) == directory and p.endswith(suffix) for p in changed):
                return True
        elif posixpath.join(directory, manifest) in changed:
            return True
    return False


def _file_findings(f: FileDiff, changed: set[str]) -> list[Finding]:
    found: list[Finding] = []
    if f.binary:
        found.append(Finding("binary_file", "info", f.path, None, "binary file changed; review it outside the diff"))
    if f.new and _is_env_file(f.path):
        found.append(Finding("env_file_added", "high", f.path, None, "environment file added; these hold secrets"))
    if f.deleted and _TEST_PATH.search(f.path):
        found.append(Finding("test_file_deleted", "medium", f.path, None, "test file deleted"))
    name = posixpath.basename(f.path)
    if name in LOCKFILE_MANIFESTS:
        if _manifest_changed(f.path, changed):
            found.append(Finding("lockfile_changed", "low", f.path, None, "lockfile changed with its manifest"))
        else:
            manifests = " or ".join(LOCKFILE_MANIFESTS[name])
            message = f"lockfile changed without a change to {manifests}: unexpected dependency drift?"
            found.append(Finding("lockfile_without_manifest", "medium", f.path, None, message))
    if _MIGRATION.search(f.path):
        if f.new:
            found.append(Finding("migration_added", "info", f.path, None, "database migration added"))
        elif f.deleted:
            message = "database migration removed; databases that applied it will disagree with the code"
            found.append(Finding("migration_removed", "medium", f.path, None, message))
        else:
            message = "existing database migration edited; databases that applied it will not re-run it"
            found.append(Finding("migration_modified", "medium", f.path, None, message))
    if _CI_CONFIG.search(f.path) or (f.old_path and _CI_CONFIG.search(f.old_path)):
        found.append(Finding("ci_config_changed", "medium", f.path, None, "CI configuration changed"))
    return found


def _removed_tests(f: FileDiff) -> list[Finding]:
    if f.deleted:
        return []  # already reported as a deleted test file when it is one
    removed: dict[str, int | None] = {}
    added: set[str] = set()
    for hunk in f.hunks:
        for line in hunk.lines:
            match = _TEST_FUNCTION.match(line.text) if line.kind in "+-" else None
            if match is None:
                continue
            name = next(group for group in match.groups() if group)
            if line.kind == "-":
                removed.setdefault(name, line.old_no)
            else:
                added.add(name)
    return [
        Finding("test_removed", "medium", f.path, old_no, f"test {name!r} removed")
        for name, old_no in removed.items()
        if name not in added  # moved or edited in place, not removed
    ]


def diff_review(diff: str | list[FileDiff], *, large_hunk_lines: int = 80) -> list[Finding]:
    """Findings for: secrets in added lines, .env files added, deleted test files or test functions, lockfile
    changes (especially without their manifest), migrations added/removed/edited, CI config changes, binary
    files and hunks larger than ``large_hunk_lines`` changed lines. Ordered by file, then line."""
    files = parse_unified_diff(diff) if isinstance(diff, str) else diff
    changed = {f.path for f in files} | {f.old_path for f in files if f.old_path}
    findings: list[Finding] = []
    for f in files:
        findings.extend(_file_findings(f, changed))
        findings.extend(_removed_tests(f))
        skip_entropy = posixpath.basename(f.path) in LOCKFILE_MANIFESTS  # lockfiles are full of hashes
        for hunk in f.hunks:
            size = hunk.added + hunk.removed
            if size > large_hunk_lines:
                message = f"large hunk: {size} changed lines (+{hunk.added} -{hunk.removed}); consider splitting it"
                findings.append(Finding("large_hunk", "low", f.path, hunk.new_start, message))
            for line in hunk.lines:
                if line.kind == "+":
                    for finding in _secret_findings(f.path, line):
                        if not (skip_entropy and finding.kind == "high_entropy_string"):
                            findings.append(finding)
    return findings
