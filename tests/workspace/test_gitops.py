"""workspace.gitops on real repositories: tree_state, clone/fetch from a bare remote, remote and ref checks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.workspace.repos import commit, git, make_repo, write_files
from workspace import gitops
from workspace.gitops import GitOpError, NotARepository, RemoteRefused, UnknownRef
from workspace.jobs import JobCancelled

# --- tree_state -----------------------------------------------------------------------------------------------


def test_tree_state_is_stable_and_sees_every_kind_of_change(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {"a.py": "x = 1\n", ".gitignore": "*.log\n"})
    clean = gitops.tree_state(root)
    assert clean == gitops.tree_state(root)
    assert len(clean) == 64 and int(clean, 16) >= 0

    (root / "a.py").write_text("x = 2\n")
    unstaged = gitops.tree_state(root)
    assert unstaged != clean
    git(root, "add", "a.py")
    staged = gitops.tree_state(root)
    assert staged not in (clean, unstaged)  # same content, but staged is a different state
    git(root, "reset", "-q")
    (root / "a.py").write_text("x = 1\n")
    assert gitops.tree_state(root) == clean  # reverting the edit restores the digest

    (root / "new.txt").write_text("one")
    with_untracked = gitops.tree_state(root)
    assert with_untracked != clean
    (root / "new.txt").write_text("two")
    assert gitops.tree_state(root) not in (clean, with_untracked)  # untracked content counts, not just the name
    (root / "new.txt").unlink()
    (root / "debug.log").write_text("ignored")
    assert gitops.tree_state(root) == clean  # ignored files do not

    commit(root, {"a.py": "x = 3\n"}, "fix: three")
    assert gitops.tree_state(root) != clean


def test_tree_state_before_the_first_commit(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    empty = gitops.tree_state(root)
    write_files(root, {"a.txt": "hello"})
    untracked = gitops.tree_state(root)
    git(root, "add", "a.txt")
    assert len({empty, untracked, gitops.tree_state(root)}) == 3


def test_tree_state_refuses_a_non_repository(tmp_path: Path) -> None:
    with pytest.raises(NotARepository, match="not a git repository"):
        gitops.tree_state(tmp_path)
    root = make_repo(tmp_path / "r", {"sub/a.py": ""})
    with pytest.raises(NotARepository):  # a subdirectory is not the top of a repository
        gitops.tree_state(root / "sub")


# --- remotes --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/app.git",
        "http://127.0.0.1:8000/app.git",
        "ssh://git@example.com:2222/acme/app.git",
        "git://example.com/app.git",
        "git@github.com:acme/app.git",
        "file:///srv/git/app.git",
        "/srv/git/app.git",
    ],
)
def test_allowed_remotes(url: str) -> None:
    gitops.remote_url_check(url)


@pytest.mark.parametrize(
    "url",
    [
        "ext::sh -c touch% /tmp/pwned",
        "fd::17",
        "transport::https://example.com/x",
        "ext://sh -c id",
        "ftp://example.com/x.git",
        "-uecho pwned",
        "ssh://-oProxyCommand=touch%20pwned/x",
        "relative/path",
        "example.com:path",
        "https://example.com/x\n",
        "",
    ],
)
def test_refused_remotes(url: str) -> None:
    with pytest.raises(RemoteRefused):
        gitops.remote_url_check(url)


def test_redact_hides_credentials_but_not_ssh_users() -> None:
    assert gitops.redact("fatal: https://bob:hunter22@host/x.git failed") == "fatal: https://***@host/x.git failed"
    assert gitops.redact("https://ghp_token123@github.com/x") == "https://***@github.com/x"
    assert gitops.redact("ssh://git@host/x and git@host:y") == "ssh://git@host/x and git@host:y"
    assert gitops.redact("ssh://git:pw@host/x") == "ssh://***@host/x"


def _bare_remote(tmp_path: Path) -> tuple[Path, Path]:
    """A source clone and the bare repository it pushes to (the workspace's remote)."""
    bare = tmp_path / "remote.git"
    bare.mkdir()
    git(bare, "init", "-q", "--bare", "-b", "main")
    source = make_repo(tmp_path / "source", {"app.py": "print('v1')\n"})
    git(source, "remote", "add", "origin", str(bare))
    git(source, "push", "-q", "origin", "main")
    return bare, source


class RecordingProgress:
    def __init__(self, *, cancel: bool = False) -> None:
        self.updates: list[tuple[int, int, str]] = []
        self.cancel = cancel

    def update(self, done: int, total: int, message: str = "") -> None:
        self.updates.append((done, total, message))

    def check_cancelled(self) -> None:
        if self.cancel:
            raise JobCancelled("cancelled by the test")


def test_clone_then_fetch_fast_forwards(tmp_path: Path, make_workspace: Callable[..., Any]) -> None:
    bare, source = _bare_remote(tmp_path)
    root = tmp_path / "ws"
    ctx = make_workspace(root, git_remote=f"file://{bare}")
    progress = RecordingProgress()

    cloned = gitops.workspace_git_fetch(workspace_id=ctx.workspace.id, progress=progress)
    assert cloned["action"] == "cloned"
    assert cloned["head"] == git(source, "rev-parse", "HEAD").strip()
    assert cloned["branch"] == "main"
    assert (root / "app.py").read_text() == "print('v1')\n"
    assert progress.updates and all(total >= done for done, total, _ in progress.updates if total)

    new_head = commit(source, {"app.py": "print('v2')\n"}, "feat: v2")
    git(source, "push", "-q", "origin", "main")
    fetched = gitops.workspace_git_fetch(workspace_id=ctx.workspace.id)
    assert fetched == {
        "action": "fetched",
        "head": new_head,
        "branch": "main",
        "fast_forwarded": True,
        "message": fetched["message"],
    }
    assert "fast-forwarded main" in fetched["message"]
    assert (root / "app.py").read_text() == "print('v2')\n"

    again = gitops.workspace_git_fetch(workspace_id=ctx.workspace.id)
    assert again["fast_forwarded"] is False and "up to date" in again["message"]


def test_fetch_reports_divergence_and_does_not_force(tmp_path: Path, make_workspace: Callable[..., Any]) -> None:
    bare, source = _bare_remote(tmp_path)
    root = tmp_path / "ws"
    ctx = make_workspace(root, git_remote=str(bare), default_branch="main")
    gitops.workspace_git_fetch(workspace_id=ctx.workspace.id)
    local = commit(root, {"local.txt": "mine"}, "feat: local work")
    commit(source, {"app.py": "print('upstream')\n"}, "fix: upstream")
    git(source, "push", "-q", "origin", "main")

    result = gitops.workspace_git_fetch(workspace_id=ctx.workspace.id)
    assert result["fast_forwarded"] is False
    assert "diverged" in result["message"]
    assert result["head"] == local == git(root, "rev-parse", "HEAD").strip()


# Cancelling ends GitPython's stderr-pump thread with the exception (that is what stops git), which pytest reports.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_fetch_can_be_cancelled_from_progress(tmp_path: Path, make_workspace: Callable[..., Any]) -> None:
    bare, _ = _bare_remote(tmp_path)
    ctx = make_workspace(tmp_path / "ws", git_remote=f"file://{bare}")
    with pytest.raises(JobCancelled):
        gitops.workspace_git_fetch(workspace_id=ctx.workspace.id, progress=RecordingProgress(cancel=True))


def test_unsafe_remote_is_refused_and_runs_nothing(tmp_path: Path, make_workspace: Callable[..., Any]) -> None:
    marker = tmp_path / "pwned"
    root = tmp_path / "ws"
    ctx = make_workspace(root, git_remote=f"ext::sh -c touch% {marker}")
    with pytest.raises(RemoteRefused, match="transport helper"):
        gitops.workspace_git_fetch(workspace_id=ctx.workspace.id)
    assert not marker.exists()
    assert not root.exists()


def test_credentials_never_reach_messages_or_logs(
    tmp_path: Path, make_workspace: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    # Port 9 on loopback: nothing listens, so the clone fails at once without leaving the host.
    ctx = make_workspace(tmp_path / "ws", git_remote="https://alice:s3cr3t-pass@127.0.0.1:9/app.git")
    with caplog.at_level(logging.DEBUG), pytest.raises(GitOpError) as failure:
        gitops.workspace_git_fetch(workspace_id=ctx.workspace.id)
    assert "s3cr3t-pass" not in str(failure.value)
    assert "https://***@127.0.0.1:9/app.git" in str(failure.value)
    assert "s3cr3t-pass" not in caplog.text


def test_workspace_without_remote_or_with_a_foreign_directory(
    tmp_path: Path, make_workspace: Callable[..., Any]
) -> None:
    bare, _ = _bare_remote(tmp_path)
    ctx = make_workspace(tmp_path / "ws")
    with pytest.raises(GitOpError, match="no git remote"):
        gitops.workspace_git_fetch(workspace_id=ctx.workspace.id)
    occupied = tmp_path / "occupied"
    write_files(occupied, {"notes.txt": "not a repository"})
    ctx = make_workspace(occupied, git_remote=str(bare))
    with pytest.raises(NotARepository, match="is not empty and is not a git repository"):
        gitops.workspace_git_fetch(workspace_id=ctx.workspace.id)
    assert sorted(p.name for p in occupied.iterdir()) == ["notes.txt"]


# --- refs and history -----------------------------------------------------------------------------------------


def test_commits_between_defaults_to_the_latest_tag(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {"a": "1"}, message="chore: start")
    first = git(root, "rev-parse", "HEAD").strip()
    git(root, "tag", "v1.0")
    second = commit(root, {"a": "2"}, "feat: two")
    third = commit(root, {"a": "3"}, "fix: three\n\nbody text")

    since_tag = gitops.commits_between(root)
    assert since_tag.from_ref == "v1.0" and since_tag.from_sha == first
    assert [c.sha for c in since_tag.commits] == [third, second]
    assert since_tag.commits[0].subject == "fix: three" and since_tag.commits[0].body == "body text"
    assert since_tag.commits[0].author == "Test Author"

    git(root, "tag", "-d", "v1.0")
    everything = gitops.commits_between(root, to_ref="HEAD~1")
    assert everything.from_ref is None
    assert [c.sha for c in everything.commits] == [second, first]  # the root commit is included

    assert [c.sha for c in gitops.commits_between(root, first, "main").commits] == [third, second]


@pytest.mark.parametrize(
    ("ref", "error", "match"),
    [
        ("-p", GitOpError, "starts with '-'"),
        ("--output=/tmp/x", GitOpError, "starts with '-'"),
        ("main..HEAD", GitOpError, "contains '..'"),
        ("no-such-branch", UnknownRef, "unknown ref"),
        ("HEAD^{tree}", UnknownRef, "not a commit"),
        ("a b", GitOpError, "whitespace"),
    ],
)
def test_bad_refs_are_refused(tmp_path: Path, ref: str, error: type[Exception], match: str) -> None:
    root = make_repo(tmp_path / "r", {"a": "1"})
    with pytest.raises(error, match=match):
        gitops.commits_between(root, ref)


def test_branch_names(tmp_path: Path) -> None:
    assert gitops.branch_name_check("feature;touch_pwned") == "feature;touch_pwned"
    for bad in ("-f", "--force", "a..b", "a b", "x\nrm", "end.lock", "a/.hidden", "@", "with~tilde"):
        with pytest.raises(GitOpError):
            gitops.branch_name_check(bad)
