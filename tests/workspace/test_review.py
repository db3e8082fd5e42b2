"""Pure diff parsing, summary and review on hand-written unified diffs."""

from __future__ import annotations

import pytest

from workspace.review import Finding, diff_review, diff_summary, mask_secret, parse_unified_diff


def added_file(path: str, *lines: str) -> str:
    body = "".join(f"+{line}\n" for line in lines)
    return (
        f"diff --git a/{path} b/{path}\nnew file mode 100644\nindex 0000000..1111111\n--- /dev/null\n+++ b/{path}\n"
        f"@@ -0,0 +1,{len(lines)} @@\n{body}"
    )


def deleted_file(path: str, *lines: str) -> str:
    body = "".join(f"-{line}\n" for line in lines)
    return (
        f"diff --git a/{path} b/{path}\ndeleted file mode 100644\nindex 1111111..0000000\n--- a/{path}\n+++ /dev/null\n"
        f"@@ -1,{len(lines)} +0,0 @@\n{body}"
    )


def modified(path: str, hunk: str, header: str = "@@ -1,3 +1,3 @@") -> str:
    return f"diff --git a/{path} b/{path}\nindex 1111111..2222222 100644\n--- a/{path}\n+++ b/{path}\n{header}\n{hunk}"


def kinds(findings: list[Finding]) -> list[str]:
    return [f.kind for f in findings]


MIXED = (
    modified("src/app.py", " a = 1\n-b = 2\n+b = 3\n+c = 4\n d = 5\n", "@@ -10,3 +10,4 @@ def f():")
    + "diff --git a/old name.txt b/new name.txt\nsimilarity index 90%\nrename from old name.txt\n"
    "rename to new name.txt\nindex 1..2 100644\n--- a/old name.txt\n+++ b/new name.txt\n@@ -1 +1 @@\n-x\n+y\n"
    + deleted_file("gone.py", "one", "two")
    + added_file("docs/new.md", "# Title")
    + "diff --git a/logo.png b/logo.png\nindex 1..2 100644\nBinary files a/logo.png and b/logo.png differ\n"
    + 'diff --git "a/caf\\303\\251.txt" "b/caf\\303\\251.txt"\nindex 1..2 100644\n--- "a/caf\\303\\251.txt"\n'
    '+++ "b/caf\\303\\251.txt"\n@@ -1 +1,2 @@\n line\n+more\n\\ No newline at end of file\n'
)


def test_parse_and_summary() -> None:
    files = parse_unified_diff(MIXED)
    assert [f.path for f in files] == ["src/app.py", "new name.txt", "gone.py", "docs/new.md", "logo.png", "café.txt"]
    app = files[0]
    assert (app.added, app.removed) == (2, 1)
    assert [(line.kind, line.old_no, line.new_no) for line in app.hunks[0].lines] == [
        (" ", 10, 10),
        ("-", 11, None),
        ("+", None, 11),
        ("+", None, 12),
        (" ", 12, 13),
    ]
    summary = diff_summary(MIXED).as_dict()
    assert summary["totals"] == {"files": 6, "added": 5, "removed": 4}
    by_path = {f["path"]: f for f in summary["files"]}
    assert by_path["new name.txt"]["renamed"] is True and by_path["new name.txt"]["old_path"] == "old name.txt"
    assert by_path["gone.py"]["deleted"] is True and by_path["gone.py"]["removed"] == 2
    assert by_path["docs/new.md"]["new"] is True
    assert by_path["logo.png"]["binary"] is True and by_path["logo.png"]["added"] == 0
    assert by_path["café.txt"]["added"] == 1


def test_plain_unified_diff_without_git_headers() -> None:
    text = (
        "--- a/x.txt\t2024-01-01\n+++ b/x.txt\t2024-01-02\n@@ -1 +1 @@\n-old\n+new\n"
        "--- y.txt\n+++ y.txt\n@@ -1,0 +2 @@\n+z\n"
    )
    assert [(f.path, f.added, f.removed) for f in parse_unified_diff(text)] == [("x.txt", 1, 1), ("y.txt", 1, 0)]


def test_a_removed_line_that_looks_like_a_header_stays_content() -> None:
    text = modified("a.sql", "--- comment\n+-- comment!\n", "@@ -1 +1 @@")
    (only,) = parse_unified_diff(text)
    assert (only.path, only.added, only.removed) == ("a.sql", 1, 1)


@pytest.mark.parametrize(
    ("line", "kind", "shown"),
    [
        ('aws = "AKIAIOSFODNN7EXAMPLF"', "aws_access_key", "AKIA"),
        ("token: ghp_" + "a1B2" * 9, "github_token", "ghp_"),
        ('PAT = "github_pat_' + "11ABCDEFG0" * 3 + '"', "github_token", "gith"),
        ("SLACK = 'xoxb-123456789012-abcdefghijkl'", "slack_token", "xoxb"),
        ('db_password = "Tr0ub4dor&3-horse"', "hardcoded_secret", "Tr0u"),
        ("'api_key': 'k3y-0123456789abcdef'", "hardcoded_secret", "k3y-"),
        ('SIGNING = "q8Zr2VwX9pL0mN4bT7yH1cJ6kD3fG5sA"', "high_entropy_string", "q8Zr"),
    ],
)
def test_secrets_in_added_lines_are_found_and_masked(line: str, kind: str, shown: str) -> None:
    findings = diff_review(added_file("config/settings.py", "x = 1", line))
    assert kinds(findings) == [kind]
    (finding,) = findings
    severity = "medium" if kind == "high_entropy_string" else "high"
    assert (finding.severity, finding.path, finding.line) == (severity, "config/settings.py", 2)
    secret = line.split("=", 1)[-1].split(":", 1)[-1].strip().strip("'\"")
    assert secret not in finding.message and secret not in str(finding.as_dict())
    assert f"{shown}****" in finding.message


def test_private_key_block_is_reported_without_key_material() -> None:
    diff = added_file("deploy/id_rsa", "-----BEGIN OPENSSH PRIVATE KEY-----", "b3BlbnNzaC1rZXktdjEAAAAA", "-----END")
    (finding,) = diff_review(diff)
    assert finding.kind == "private_key" and finding.line == 1 and "b3Bl" not in finding.message


def test_secrets_only_count_in_added_lines_and_placeholders_are_ignored() -> None:
    removed = modified(
        "a.py", '-password = "Tr0ub4dor&3-horse"\n+password = os.environ["DB_PASSWORD"]\n', "@@ -1 +1 @@"
    )
    assert diff_review(removed) == []
    placeholders = added_file("a.py", 'token = "<your-token-goes-here>"', 'API_KEY = "${API_KEY_FROM_ENV}"', "x = 1")
    assert diff_review(placeholders) == []
    lock = added_file(
        "package-lock.json", '"integrity": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"'
    )
    assert "high_entropy_string" not in kinds(diff_review(lock + added_file("package.json", "{}")))


def test_mask_secret() -> None:
    assert mask_secret("abcdefgh") == "abcd****"
    assert mask_secret("abc") == "abc****"


def test_env_files() -> None:
    assert kinds(diff_review(added_file(".env", "DEBUG=1"))) == ["env_file_added"]
    assert kinds(diff_review(added_file("app/.env.production", "DEBUG=1"))) == ["env_file_added"]
    assert diff_review(added_file(".env.example", "DEBUG=1")) == []


@pytest.mark.parametrize(
    "path",
    [
        "tests/test_api.py",
        "pkg/test_models.py",
        "server/handler_test.go",
        "web/app.spec.ts",
        "web/x.test.js",
        "src/__tests__/button.jsx",
        "spec/models/user_spec.rb",
    ],
)
def test_deleted_test_files(path: str) -> None:
    findings = diff_review(deleted_file(path, "x"))
    assert kinds(findings) == ["test_file_deleted"] and findings[0].severity == "medium"


def test_deleting_other_files_is_not_a_test_finding() -> None:
    assert diff_review(deleted_file("src/testing_utils.py", "x")) == []


def test_removed_test_functions_but_not_moved_ones() -> None:
    hunk = (
        " import pytest\n-def test_login():\n-    assert login()\n-async def test_moved():\n+async def test_moved():\n"
        "+    await x()\n"
    )
    findings = diff_review(modified("tests/test_auth.py", hunk, "@@ -3,4 +3,3 @@"))
    assert [(f.kind, f.line, "test_login" in f.message) for f in findings] == [("test_removed", 4, True)]
    go = modified("x_test.go", "-func TestParse(t *testing.T) {\n", "@@ -7,1 +6,0 @@")
    js = modified("a.test.ts", "-  it('renders the header', () => {\n", "@@ -2,1 +1,0 @@")
    assert kinds(diff_review(go + js)) == ["test_removed", "test_removed"]


def test_lockfiles_with_and_without_manifest() -> None:
    lock_only = modified("web/package-lock.json", '-  "version": "1"\n+  "version": "2"\n', "@@ -1 +1 @@")
    (finding,) = diff_review(lock_only)
    assert finding.kind == "lockfile_without_manifest" and finding.severity == "medium"
    assert "package.json" in finding.message
    both = lock_only + modified("web/package.json", '-"a": "1"\n+"a": "2"\n', "@@ -1 +1 @@")
    assert kinds(diff_review(both)) == ["lockfile_changed"]
    elsewhere = lock_only + modified("package.json", '-"a": "1"\n+"a": "2"\n', "@@ -1 +1 @@")
    assert kinds(diff_review(elsewhere)) == ["lockfile_without_manifest"]  # a different directory's manifest
    for lock, manifest in (("uv.lock", "pyproject.toml"), ("go.sum", "go.mod"), ("Gemfile.lock", "app.gemspec")):
        pair = modified(lock, "-a\n+b\n", "@@ -1 +1 @@") + modified(manifest, "-a\n+b\n", "@@ -1 +1 @@")
        assert kinds(diff_review(pair)) == ["lockfile_changed"], lock


def test_migrations() -> None:
    assert kinds(diff_review(added_file("shop/migrations/0002_price.py", "x"))) == ["migration_added"]
    assert kinds(diff_review(deleted_file("shop/migrations/0001_initial.py", "x"))) == ["migration_removed"]
    assert kinds(diff_review(modified("db/migrate/20240101_add.rb", "-a\n+b\n", "@@ -1 +1 @@"))) == [
        "migration_modified"
    ]
    assert diff_review(added_file("shop/migrations/__init__.py", "")) == []


def test_ci_config_binary_and_large_hunks() -> None:
    assert kinds(diff_review(modified(".github/workflows/ci.yml", "-a\n+b\n", "@@ -1 +1 @@"))) == ["ci_config_changed"]
    assert kinds(diff_review(added_file(".gitlab-ci.yml", "test:"))) == ["ci_config_changed"]
    binary = "diff --git a/x.bin b/x.bin\nnew file mode 100644\nindex 0..1\nGIT binary patch\nliteral 3\nKcmZ?\n\n"
    assert kinds(diff_review(binary)) == ["binary_file"]
    big = added_file("gen.py", *[f"v{i} = {i}" for i in range(81)])
    (finding,) = diff_review(big)
    assert finding.kind == "large_hunk" and finding.line == 1 and "81 changed lines" in finding.message
    assert diff_review(big, large_hunk_lines=100) == []
