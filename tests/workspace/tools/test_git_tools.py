"""The git tools through the registry, on real repositories and a bare remote in tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import git as gitpython
import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from tests.workspace.repos import commit, git, make_repo, write_files
from workspace.gitops import tree_state
from workspace.info import ToolContext
from workspace.models import TestRun
from workspace.tools import registry
from workspace.tools.registry import ToolDenied, ToolError, tool_call

MakeWorkspace = Callable[..., ToolContext]


@pytest.fixture(autouse=True)
def _git_tools_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # These tests need only the git tools; loading just that module keeps them independent of the other tool
    # modules. monkeypatch restores the registry's load state afterwards.
    monkeypatch.setattr(registry, "TOOL_MODULES", ("workspace.tools.git",))
    monkeypatch.setattr(registry, "_loaded", False)


def call(ctx: ToolContext, name: str, **arguments: Any) -> dict[str, Any]:
    return tool_call(name=name, arguments=arguments, context=ctx)


def _with_remote(tmp_path: Path) -> tuple[Path, Path]:
    """A bare remote with one commit on main, and a workspace clone of it."""
    bare = tmp_path / "remote.git"
    bare.mkdir()
    git(bare, "init", "-q", "--bare", "-b", "main")
    seed = make_repo(tmp_path / "seed", {"app.py": "print('v1')\n"})
    git(seed, "push", "-q", str(bare), "main")
    git(tmp_path, "clone", "-q", str(bare), "ws")
    return bare, tmp_path / "ws"


def _remote_head(bare: Path, branch: str = "main") -> str:
    return git(bare, "rev-parse", f"refs/heads/{branch}").strip()


def _no_pwned(tmp_path: Path) -> None:
    # Ref files are named after the branches ("feature;touch_pwned"); a command would have made "pwned*" files.
    assert [p for p in tmp_path.rglob("pwned*")] == []
    assert not any(Path(name).exists() for name in ("pwned", "pwned1", "pwned2", "pwned3", "pwned4", "pwned5"))


def test_status_diff_stage_unstage_commit_round_trip(tmp_path: Path, make_workspace: MakeWorkspace) -> None:
    root = make_repo(tmp_path / "ws", {"app.py": "a = 1\n", "lib/util.py": "u = 1\n"})
    ctx = make_workspace(root)
    status = call(ctx, "workspace_git_status")
    assert status["branch"] == "main" and status["clean"] is True and status["upstream"] is None

    write_files(root, {"app.py": "a = 2\n", "lib/new.py": "n = 1\n"})
    (root / "lib/util.py").unlink()
    status = call(ctx, "workspace_git_status")
    assert status["unstaged"] == [
        {"path": "app.py", "status": "modified"},
        {"path": "lib/util.py", "status": "deleted"},
    ]
    assert status["untracked"] == ["lib/new.py"] and status["staged"] == []

    diff = call(ctx, "workspace_diff")
    assert "-a = 1\n+a = 2" in diff["diff"] and diff["truncated"] is False
    assert "lib/new.py" not in diff["diff"]  # untracked files are not in the work tree diff

    staged = call(ctx, "workspace_git_stage", paths=["lib"])
    assert staged["staged"] == ["lib/new.py", "lib/util.py"]
    assert call(ctx, "workspace_diff", staged=True, paths=["lib/new.py"])["diff"].count("diff --git") == 1
    summary = call(ctx, "workspace_diff_summary", staged=True)
    assert summary["totals"] == {"files": 2, "added": 1, "removed": 1}
    assert {(f["path"], f["new"], f["deleted"]) for f in summary["files"]} == {
        ("lib/new.py", True, False),
        ("lib/util.py", False, True),
    }

    unstaged = call(ctx, "workspace_git_unstage", paths=["lib/util.py"])
    assert unstaged == {"unstaged": ["lib/util.py"], "still_staged": ["lib/new.py"]}
    assert call(ctx, "workspace_git_stage", all=True)["staged"] == ["app.py", "lib/util.py"]
    assert call(ctx, "workspace_git_unstage", all=True)["still_staged"] == []
    call(ctx, "workspace_git_stage", all=True)

    done = call(ctx, "workspace_git_commit", message="feat: rework app")
    assert done["branch"] == "main" and done["summary"] == "feat: rework app"
    assert sorted(done["files"]) == ["app.py", "lib/new.py", "lib/util.py"]
    assert git(root, "rev-parse", "HEAD").strip() == done["sha"]
    username = get_user_model().objects.get(pk=ctx.user_id).username
    assert git(root, "log", "-1", "--format=%an").strip() == username
    assert git(root, "log", "-1", "--format=%ae %cn").strip() == f"{username}@lynkr.local {username}"
    assert call(ctx, "workspace_git_status")["clean"] is True
    assert call(ctx, "workspace_diff", ref="HEAD~1", paths=["app.py"])["diff"].count("+a = 2") == 1


def test_commit_uses_the_repository_email_and_needs_something_staged(
    tmp_path: Path, make_workspace: MakeWorkspace
) -> None:
    root = make_repo(tmp_path / "ws", {"a.txt": "1"})
    git(root, "config", "user.email", "team@example.test")
    ctx = make_workspace(root)
    with pytest.raises(ToolError, match="nothing is staged"):
        call(ctx, "workspace_git_commit", message="fix: nothing")
    write_files(root, {"a.txt": "2"})
    call(ctx, "workspace_git_stage", paths=["a.txt"])
    call(ctx, "workspace_git_commit", message="fix: two")
    assert git(root, "log", "-1", "--format=%ae").strip() == "team@example.test"


def test_paths_are_confined_and_policy_files_are_never_staged_or_shown(
    tmp_path: Path, make_workspace: MakeWorkspace
) -> None:
    root = make_repo(tmp_path / "ws", {"app.py": "a = 1\n", ".env": "TOKEN=old\n"})
    (tmp_path / "outside.txt").write_text("secret")
    ctx = make_workspace(root)
    for bad in ("../outside.txt", "/etc/passwd", "lib/../../outside.txt"):
        with pytest.raises(ToolError):
            call(ctx, "workspace_git_stage", paths=[bad])
    with pytest.raises(ToolError, match="policy"):
        call(ctx, "workspace_git_stage", paths=[".env"])

    write_files(root, {".env": "TOKEN=new-secret-value\n", "app.py": "a = 2\n", "keys/server.pem": "PEM"})
    result = call(ctx, "workspace_git_stage", all=True)
    assert result["staged"] == ["app.py"]
    assert result["skipped_by_policy"] == [".env", "keys/server.pem"]
    assert git(root, "diff", "--cached", "--name-only").split() == ["app.py"]

    diff = call(ctx, "workspace_diff")
    assert "new-secret-value" not in diff["diff"] and diff["hidden_by_policy"] == [".env"]
    with pytest.raises(ToolError, match="policy"):
        call(ctx, "workspace_diff", paths=[".env"])
    review = call(ctx, "workspace_diff_review")
    assert "new-secret-value" not in str(review)

    git(root, "add", ".env")  # staged outside Lynkr: unstaging it is always allowed
    assert call(ctx, "workspace_git_unstage", paths=[".env"])["unstaged"] == [".env"]
    with pytest.raises(ToolError, match=r"'\.\.' is not allowed"):
        call(ctx, "workspace_git_unstage", paths=["../outside.txt"])
    (root / "escape").symlink_to(tmp_path)
    with pytest.raises(ToolError, match="resolves outside"):
        call(ctx, "workspace_git_stage", paths=["escape/outside.txt"])


def test_diff_is_truncated_to_the_tool_output_limit(
    tmp_path: Path, make_workspace: MakeWorkspace, settings: Any
) -> None:
    settings.LYNKR_TOOL_OUTPUT_MAX_BYTES = 1024
    root = make_repo(tmp_path / "ws", {"big.txt": "line\n"})
    write_files(root, {"big.txt": "".join(f"changed line {i} é\n" for i in range(500))})
    diff = call(make_workspace(root), "workspace_diff")
    assert diff["truncated"] is True
    assert len(diff["diff"].encode()) <= 1024 < diff["bytes"]


def test_diff_review_masks_secrets_in_staged_changes(tmp_path: Path, make_workspace: MakeWorkspace) -> None:
    root = make_repo(tmp_path / "ws", {"app.py": "a = 1\n"})
    key = "AKIA" + "ABCDEFGHIJKLMNOP"
    write_files(root, {"settings.py": f'AWS_KEY = "{key}"\n'})
    ctx = make_workspace(root)
    call(ctx, "workspace_git_stage", paths=["settings.py"])
    review = call(ctx, "workspace_diff_review", staged=True)
    kinds = {f["kind"]: f for f in review["findings"]}
    assert kinds["aws_access_key"]["path"] == "settings.py" and kinds["aws_access_key"]["line"] == 1
    assert key not in str(review) and "AKIA****" in kinds["aws_access_key"]["message"]
    assert review["summary"]["totals"]["added"] == 1


def test_push_is_denied_by_default_and_allowed_by_policy(tmp_path: Path, make_workspace: MakeWorkspace) -> None:
    bare, root = _with_remote(tmp_path)
    before = _remote_head(bare)
    local = commit(root, {"app.py": "print('v2')\n"}, "feat: v2")

    denied = make_workspace(root)
    with pytest.raises(ToolDenied, match="POLICY_GIT_ALLOW_PUSH"):
        call(denied, "workspace_git_push")
    assert _remote_head(bare) == before

    allowed = make_workspace(root, policy={"git_allow_push": True})
    pushed = call(allowed, "workspace_git_push", remote="origin")
    assert pushed["branch"] == "main" and pushed["head"] == local
    assert _remote_head(bare) == local
    with pytest.raises(ToolError, match="no remote named"):
        call(allowed, "workspace_git_push", remote="elsewhere")
    with pytest.raises(ToolError, match="starts with '-'"):
        call(allowed, "workspace_git_push", branch="--force")


def test_rejected_push_is_reported(tmp_path: Path, make_workspace: MakeWorkspace) -> None:
    bare, root = _with_remote(tmp_path)
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(bare), "other")
    commit(other, {"x.txt": "theirs"}, "feat: theirs")
    git(other, "push", "-q", "origin", "main")
    commit(root, {"y.txt": "mine"}, "feat: mine")
    ctx = make_workspace(root, policy={"git_allow_push": True})
    with pytest.raises(ToolError, match="refused"):
        call(ctx, "workspace_git_push")


def test_pull_fast_forwards_only(tmp_path: Path, make_workspace: MakeWorkspace) -> None:
    bare, root = _with_remote(tmp_path)
    ctx = make_workspace(root)
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(bare), "other")
    upstream = commit(other, {"app.py": "print('v3')\n"}, "feat: v3")
    git(other, "push", "-q", "origin", "main")

    status = call(ctx, "workspace_git_status")
    assert status["upstream"] == "origin/main" and status["ahead"] == 0
    pulled = call(ctx, "workspace_git_pull")
    assert pulled["fast_forwarded"] is True and pulled["head"] == upstream
    assert (root / "app.py").read_text() == "print('v3')\n"
    assert call(ctx, "workspace_git_pull", remote="origin", branch="main")["fast_forwarded"] is False

    commit(other, {"b.txt": "b"}, "fix: b")
    git(other, "push", "-q", "origin", "main")
    mine = commit(root, {"c.txt": "c"}, "fix: c")
    with pytest.raises(ToolError, match="diverged"):
        call(ctx, "workspace_git_pull")
    assert git(root, "rev-parse", "HEAD").strip() == mine


def test_branches(tmp_path: Path, make_workspace: MakeWorkspace) -> None:
    _, root = _with_remote(tmp_path)
    git(root, "branch", "feature/x")
    found = call(make_workspace(root), "workspace_git_branches")
    assert found["current"] == "main"
    assert {(b["name"], b["upstream"]) for b in found["local"]} == {("main", "origin/main"), ("feature/x", None)}
    assert [b["name"] for b in found["remote"]] == ["origin/main"]


def _run(ctx: ToolContext, *, outcome: str, state: str, minutes: int) -> None:
    TestRun.objects.create(
        workspace_id=ctx.workspace.id,
        command="pytest -q",
        outcome=outcome,
        tree_state=state,
        started_at=timezone.now() + timedelta(minutes=minutes),
    )


def test_commit_needs_tests_passed_on_exactly_this_tree(tmp_path: Path, make_workspace: MakeWorkspace) -> None:
    root = make_repo(tmp_path / "ws", {"app.py": "a = 1\n"})
    ctx = make_workspace(root, policy={"git_require_tests": True})
    write_files(root, {"app.py": "a = 2\n"})
    call(ctx, "workspace_git_stage", all=True)
    head = git(root, "rev-parse", "HEAD").strip()
    refusal = "tests have not passed for the current tree: run workspace_test_run first"

    with pytest.raises(ToolDenied, match=refusal):  # no run at all
        call(ctx, "workspace_git_commit", message="feat: a2")
    _run(ctx, outcome="failed", state=tree_state(root), minutes=1)
    with pytest.raises(ToolDenied, match="'failed'"):
        call(ctx, "workspace_git_commit", message="feat: a2")
    _run(ctx, outcome="passed", state="0" * 64, minutes=2)
    with pytest.raises(ToolDenied, match="different tree"):
        call(ctx, "workspace_git_commit", message="feat: a2")
    _run(ctx, outcome="passed", state=tree_state(root), minutes=-10)  # older than the latest: not considered
    with pytest.raises(ToolDenied, match="different tree"):
        call(ctx, "workspace_git_commit", message="feat: a2")
    assert git(root, "rev-parse", "HEAD").strip() == head

    _run(ctx, outcome="passed", state=tree_state(root), minutes=3)
    done = call(ctx, "workspace_git_commit", message="feat: a2")
    assert git(root, "rev-parse", "HEAD").strip() == done["sha"] != head


def test_commit_message_pattern(tmp_path: Path, make_workspace: MakeWorkspace) -> None:
    root = make_repo(tmp_path / "ws", {"a.txt": "1"})
    ctx = make_workspace(root, policy={"git_commit_pattern": r"^(feat|fix)(\([\w-]+\))?: \S"})
    write_files(root, {"a.txt": "2"})
    call(ctx, "workspace_git_stage", all=True)
    with pytest.raises(ToolDenied, match="does not match the pattern"):
        call(ctx, "workspace_git_commit", message="updated stuff")
    with pytest.raises(ToolDenied):
        call(ctx, "workspace_git_commit", message="chore: feat: sneaky")  # the admin anchored it with '^'
    assert call(ctx, "workspace_git_commit", message="fix(core): two")["summary"] == "fix(core): two"

    broken = make_workspace(root, policy={"git_commit_pattern": "("})
    with pytest.raises(ToolDenied, match="invalid git_commit_pattern"):
        call(broken, "workspace_git_commit", message="fix: x")


def test_shell_metacharacters_are_inert(tmp_path: Path, make_workspace: MakeWorkspace) -> None:
    bare, root = _with_remote(tmp_path)
    ctx = make_workspace(root, policy={"git_allow_push": True})
    message = "fix: x; rm -rf / && touch pwned1 $(touch pwned2) `touch pwned3`\n\n| tee pwned4 > pwned5 & echo $HOME"
    write_files(root, {"a.txt": "1"})
    call(ctx, "workspace_git_stage", paths=["a.txt"])
    call(ctx, "workspace_git_commit", message=message)
    assert gitpython.Repo(root).head.commit.message.rstrip("\n") == message

    for branch in ("feature;touch_pwned", "x$(touch${IFS}pwned)", "y`touch_pwned`|z"):
        git(root, "branch", branch)
        call(ctx, "workspace_git_push", branch=branch)
        assert _remote_head(bare, branch) == git(root, "rev-parse", "HEAD").strip()
    git(root, "checkout", "-q", "feature;touch_pwned")
    assert call(ctx, "workspace_git_pull", branch="feature;touch_pwned")["branch"] == "feature;touch_pwned"
    for bad in ("-D", "--upload-pack=touch pwned", "a\nb"):
        with pytest.raises(ToolError):
            call(ctx, "workspace_git_push", branch=bad)
    _no_pwned(tmp_path)


def test_release_notes_on_a_real_history(tmp_path: Path, make_workspace: MakeWorkspace) -> None:
    root = make_repo(tmp_path / "ws", {"a": "0"}, message="chore: before the release")
    git(root, "tag", "-a", "v1.0.0", "-m", "first release")
    feat = commit(root, {"a": "1"}, "feat(api): add the export endpoint")
    fix = commit(root, {"a": "2"}, "fix: crash on empty input")
    bang = commit(root, {"a": "3"}, "feat!: drop Python 3.10")
    footer = commit(root, {"a": "4"}, "refactor: rename settings\n\nBREAKING CHANGE: LYNKR_X is now LYNKR_Y")
    other = commit(root, {"a": "5"}, "tweak things")
    ctx = make_workspace(root)

    notes = call(ctx, "workspace_release_notes")
    assert notes["from_ref"] == "v1.0.0" and notes["to_ref"] == "HEAD" and notes["commits"] == 5
    assert notes["counts"] == {"feat": 2, "fix": 1, "refactor": 1, "other": 1} and notes["breaking"] == 2
    md = notes["markdown"]
    assert md.startswith("## Changes v1.0.0..HEAD\n")
    breaking = md.split("### Breaking changes\n\n")[1].split("\n\n")[0].splitlines()
    assert breaking == [f"- LYNKR_X is now LYNKR_Y ({footer[:7]})", f"- drop Python 3.10 ({bang[:7]})"]
    features = md.split("### Features\n\n")[1].split("\n\n")[0].splitlines()
    assert features == [f"- drop Python 3.10 ({bang[:7]})", f"- **api:** add the export endpoint ({feat[:7]})"]
    assert f"### Bug fixes\n\n- crash on empty input ({fix[:7]})" in md
    assert f"### Other\n\n- tweak things ({other[:7]})" in md
    assert "before the release" not in md

    first_two = call(ctx, "workspace_release_notes", from_ref="v1.0.0", to_ref=fix)
    assert first_two["commits"] == 2 and first_two["to_sha"] == fix
    for bad, match in (("no-such-tag", "unknown ref"), ("-x", "starts with '-'"), ("v1.0.0..HEAD", r"'\.\.'")):
        with pytest.raises(ToolError, match=match):
            call(ctx, "workspace_release_notes", from_ref=bad)


def test_tools_refuse_a_workspace_without_a_checkout(tmp_path: Path, make_workspace: MakeWorkspace) -> None:
    ctx = make_workspace(tmp_path / "missing")
    with pytest.raises(ToolError, match="no checkout"):
        call(ctx, "workspace_git_status")
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(ToolError, match="not a git repository"):
        call(make_workspace(plain), "workspace_git_status")


def test_schemas_are_strict() -> None:
    specs = {
        name: spec
        for name, spec in registry.tool_specs().items()
        if name.startswith(("workspace_git", "workspace_diff"))
    }
    assert set(specs) >= {
        "workspace_git_status",
        "workspace_diff",
        "workspace_diff_summary",
        "workspace_diff_review",
        "workspace_git_stage",
        "workspace_git_unstage",
        "workspace_git_commit",
        "workspace_git_push",
        "workspace_git_pull",
        "workspace_git_branches",
    }
    for spec in [*specs.values(), registry.tool_specs()["workspace_release_notes"]]:
        assert spec.input_schema["additionalProperties"] is False
    assert {name for name, spec in specs.items() if spec.mutates} == {
        "workspace_git_stage",
        "workspace_git_unstage",
        "workspace_git_commit",
        "workspace_git_push",
        "workspace_git_pull",
    }
