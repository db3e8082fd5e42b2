from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from workspace.jobs import JobCancelled
from workspace.testing.runner import (
    CommandRefused,
    SandboxUnavailable,
    bubblewrap_argv,
    child_environment,
    command_run,
    sandbox_choose,
    split_command,
)

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
SANDBOXES = ["none", pytest.param("bubblewrap", marks=needs_bwrap)]


def project(root: Path, script: str, name: str = "check.py") -> list[str]:
    root.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(textwrap.dedent(script))
    return [sys.executable, name]


def process_gone(token: str, *, wait: float = 5.0) -> bool:
    """No live process has ``token`` on its command line (a zombie's cmdline is empty). Polls briefly because
    SIGKILL is delivered asynchronously."""
    deadline = time.monotonic() + wait
    while True:
        alive = False
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if token.encode() in (entry / "cmdline").read_bytes():
                    alive = True
                    break
            except OSError:
                continue
        if not alive:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


# --- command splitting ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        "echo hi && rm -rf x",
        "echo hi; rm x",
        "pytest | tee out",
        "pytest > out.txt",
        "pytest 2>&1",
        "sleep 1 &",
        "echo $(whoami)",
        "echo `whoami`",
        "CI=1 pytest",
        "",
        "pytest 'unterminated",
    ],
)
def test_commands_needing_a_shell_are_refused(command: str) -> None:
    with pytest.raises(CommandRefused) as caught:
        split_command(command)
    if command.strip() and "unterminated" not in command:
        assert "script file" in str(caught.value)


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ("pytest -q", ["pytest", "-q"]),
        ('pytest -k "not slow and (a or b)"', ["pytest", "-k", "not slow and (a or b)"]),
        ("python -c 'print(1); print(2)'", ["python", "-c", "print(1); print(2)"]),
        ("go test ./... -run 'Test(A|B)'", ["go", "test", "./...", "-run", "Test(A|B)"]),
        (
            "npx vitest --reporter=junit --outputFile=junit.xml",
            ["npx", "vitest", "--reporter=junit", "--outputFile=junit.xml"],
        ),
    ],
)
def test_plain_commands_are_split_like_a_shell_line(command: str, argv: list[str]) -> None:
    assert split_command(command) == argv


# --- environment and sandbox choice ------------------------------------------------------------------------------


def test_child_environment_is_an_allowlist() -> None:
    source = {
        "PATH": "/opt/bin:/usr/bin",
        "LANG": "C.UTF-8",
        "HOME": "/root",
        "LYNKR_SECRET": "s",
        "OPENAI_API_KEY": "k",
        "DATABASE_URL": "postgres://u:p@h/d",
        "REDIS_URL": "redis://h",
    }
    env = child_environment(source, home="/tmp/h")
    assert env == {
        "PATH": "/opt/bin:/usr/bin",
        "LANG": "C.UTF-8",
        "HOME": "/tmp/h",
        "CI": "true",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    assert child_environment({}, home="/h", tmpdir="/tmp")["PATH"] == "/usr/local/bin:/usr/bin:/bin"


def test_sandbox_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: "/usr/bin/bwrap" if name == "bwrap" else None)
    assert sandbox_choose("auto") == ("bubblewrap", "/usr/bin/bwrap")
    assert sandbox_choose("none") == ("none", None)
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    assert sandbox_choose("auto") == ("none", None)
    with pytest.raises(SandboxUnavailable):
        sandbox_choose("bubblewrap")


def test_bubblewrap_argv_hides_paths_around_and_inside_the_root(tmp_path: Path) -> None:
    data = tmp_path / "data"
    root = data / "workspaces" / "ws"
    root.mkdir(parents=True)
    (root / "secrets").mkdir()
    (root / "key.pem").write_text("k")
    argv = bubblewrap_argv(
        ["pytest"],
        bwrap="/usr/bin/bwrap",
        root=root,
        env={"PATH": "/usr/bin"},
        hidden=[data, root / "secrets", root / "key.pem", tmp_path / "missing"],
    )
    bind = argv.index("--bind")
    assert argv[bind : bind + 3] == ["--bind", str(root), str(root)]
    assert argv.index(str(data)) < bind  # the data dir holding the root is covered first ...
    assert argv.index(str(root / "secrets")) > bind  # ... things inside the root after it is bound
    assert argv[argv.index(str(root / "key.pem")) - 2 : argv.index(str(root / "key.pem"))] == ["--ro-bind", "/dev/null"]
    assert str(tmp_path / "missing") not in argv
    assert {"--unshare-all", "--die-with-parent", "--clearenv", "--new-session"} <= set(argv)
    assert "--share-net" not in argv
    assert argv[-2:] == ["--", "pytest"]


# --- real runs --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_passing_and_failing_runs(tmp_path: Path, sandbox: str) -> None:
    argv = project(
        tmp_path / "ws",
        """
        import sys
        ok = sys.argv[1] == "pass"
        print("tests/test_x.py ..", "" if ok else "F")
        print("=== 2 passed in 0.01s ===" if ok else "=== 1 failed, 2 passed in 0.01s ===")
        sys.exit(0 if ok else 1)
        """,
    )
    passed = command_run([*argv, "pass"], root=tmp_path / "ws", timeout=30, sandbox=sandbox)
    assert (passed.exit_code, passed.sandbox, passed.timed_out, passed.cancelled) == (0, sandbox, False, False)
    assert "2 passed" in passed.output_tail
    failed = command_run([*argv, "fail"], root=tmp_path / "ws", timeout=30, sandbox=sandbox)
    assert failed.exit_code == 1
    assert "1 failed, 2 passed" in failed.output_tail


def test_real_unittest_project(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    project(
        root,
        """
        import unittest

        class T(unittest.TestCase):
            def test_ok(self):
                self.assertEqual(1 + 1, 2)

            @unittest.skip("later")
            def test_later(self):
                pass
        """,
        name="test_calc.py",
    )
    result = command_run([sys.executable, "-m", "unittest", "-v"], root=root, timeout=60, sandbox="auto")
    assert result.exit_code == 0
    assert "Ran 2 tests" in result.output_tail
    assert "OK (skipped=1)" in result.output_tail


def test_stderr_is_merged_and_missing_program_is_an_error(tmp_path: Path) -> None:
    argv = project(tmp_path, "import sys\nprint('out', flush=True)\nprint('err', file=sys.stderr)\n")
    result = command_run(argv, root=tmp_path, timeout=30, sandbox="none")
    assert result.output_tail.split() == ["out", "err"]
    missing = command_run(["lynkr-no-such-program-xyz", "-q"], root=tmp_path, timeout=30, sandbox="none")
    assert missing.exit_code is None
    assert "command not found" in missing.error
    relative = command_run(["./run-tests.sh"], root=tmp_path, timeout=30, sandbox="none")
    assert "not found or not executable" in relative.error


def test_output_is_bounded_to_its_tail(tmp_path: Path) -> None:
    argv = project(
        tmp_path,
        """
        import sys
        for _ in range(20000):
            sys.stdout.write("x" * 99 + "\\n")
        print("END")
        """,
    )
    result = command_run(argv, root=tmp_path, timeout=60, sandbox="none", tail_bytes=4096)
    assert result.output_bytes == 20000 * 100 + 4
    assert result.output_tail.startswith("[... ")
    assert result.output_tail.endswith("END\n")
    assert len(result.output_tail) < 4096 + 100


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_timeout_kills_the_whole_process_group(tmp_path: Path, sandbox: str) -> None:
    token = f"lynkr-grandchild-{uuid.uuid4().hex}"
    argv = project(
        tmp_path / "ws",
        f"""
        import signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # ignoring SIGTERM does not save it: SIGKILL follows
        # The grandchild outlives its parent's own sleep: only a group kill ends it in time.
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "{token}"])
        print("started", flush=True)
        time.sleep(120)
        """,
    )
    result = command_run(argv, root=tmp_path / "ws", timeout=1, sandbox=sandbox, grace=0.5)
    assert result.timed_out is True
    assert result.exit_code is None
    assert "started" in result.output_tail
    assert process_gone(token)


def test_finished_run_leaves_no_background_process(tmp_path: Path) -> None:
    token = f"lynkr-leftover-{uuid.uuid4().hex}"
    argv = project(
        tmp_path,
        f"""
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "{token}"],
                         stdout=subprocess.DEVNULL)
        print("1 passed in 0.01s")
        """,
    )
    result = command_run(argv, root=tmp_path, timeout=30, sandbox="none")
    assert result.exit_code == 0
    assert process_gone(token)


class CancelWhenStarted:
    """Cancels the job once the test script has written its marker file (no wall-clock dependency)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker
        self.updates: list[tuple[int, int, str]] = []

    def update(self, done: int, total: int, message: str = "") -> None:
        self.updates.append((done, total, message))

    def check_cancelled(self) -> None:
        if self.marker.exists():
            raise JobCancelled("cancelled by the test")


def test_cancel_kills_the_run(tmp_path: Path) -> None:
    token = f"lynkr-cancelled-{uuid.uuid4().hex}"
    argv = project(
        tmp_path,
        f"""
        import pathlib, subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "{token}"])
        pathlib.Path("started.marker").write_text("x")
        time.sleep(60)
        """,
    )
    progress = CancelWhenStarted(tmp_path / "started.marker")
    result = command_run(argv, root=tmp_path, timeout=120, sandbox="none", progress=progress, grace=0.5)
    assert result.cancelled is True
    assert result.timed_out is False
    assert process_gone(token)
    assert progress.updates and progress.updates[0][1] == 120
    assert progress.updates[0][2].startswith("running ")


def test_cancelled_before_start_runs_nothing(tmp_path: Path) -> None:
    argv = project(tmp_path, "open('ran.marker', 'w').write('x')\n")
    (tmp_path / "cancel.flag").write_text("x")
    result = command_run(
        argv, root=tmp_path, timeout=30, sandbox="none", progress=CancelWhenStarted(tmp_path / "cancel.flag")
    )
    assert result.cancelled is True
    assert not (tmp_path / "ran.marker").exists()


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_gateway_secrets_never_reach_the_tests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: str) -> None:
    monkeypatch.setenv("LYNKR_SECRET", "gateway-secret-value")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    monkeypatch.setenv("DATABASE_URL", "postgres://lynkr:pw@db/lynkr")
    argv = project(
        tmp_path / "ws",
        """
        import json, os, pathlib
        pathlib.Path(os.environ["HOME"], "probe").write_text("home is writable")
        print(json.dumps(dict(os.environ)))
        """,
    )
    result = command_run(argv, root=tmp_path / "ws", timeout=30, sandbox=sandbox)
    assert result.exit_code == 0, result.output_tail
    env = json.loads(result.output_tail.strip().splitlines()[-1])
    assert "gateway-secret-value" not in result.output_tail
    assert not {"LYNKR_SECRET", "ANTHROPIC_API_KEY", "DATABASE_URL"} & set(env)
    assert env["CI"] == "true"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["HOME"] != os.environ.get("HOME")
    assert not Path(env["HOME"]).exists() or sandbox == "bubblewrap"  # the host's throwaway HOME is removed


# --- bubblewrap confinement ---------------------------------------------------------------------------------------


@needs_bwrap
def test_sandbox_writes_only_inside_the_root(tmp_path: Path) -> None:
    root, outside = tmp_path / "ws", tmp_path / "outside"
    outside.mkdir()
    host_probe = Path("/var/tmp") / f"lynkr-probe-{uuid.uuid4().hex}"
    argv = project(
        root,
        f"""
        import pathlib
        pathlib.Path("inside.txt").write_text("ok")
        for target in ({str(outside / "escaped.txt")!r}, {str(host_probe)!r}):
            try:
                pathlib.Path(target).write_text("escaped")
                print("WROTE", target)
            except OSError as exc:
                print("REFUSED", target, type(exc).__name__)
        """,
    )
    try:
        result = command_run(argv, root=root, timeout=30, sandbox="bubblewrap")
        assert result.exit_code == 0, result.output_tail
        assert (root / "inside.txt").read_text() == "ok"
        assert "WROTE" not in result.output_tail
        assert result.output_tail.count("REFUSED") == 2
        assert not (outside / "escaped.txt").exists()
        assert not host_probe.exists()
    finally:
        host_probe.unlink(missing_ok=True)


PROBE_CONNECT = """
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3).close()
    print("CONNECTED")
except OSError as exc:
    print("NO NETWORK", type(exc).__name__)
"""


@pytest.mark.parametrize(
    ("sandbox", "expected"), [("none", "CONNECTED"), pytest.param("bubblewrap", "NO NETWORK", marks=needs_bwrap)]
)
def test_sandbox_has_no_network(tmp_path: Path, sandbox: str, expected: str) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        argv = project(tmp_path, PROBE_CONNECT)
        result = command_run([*argv, str(server.getsockname()[1])], root=tmp_path, timeout=30, sandbox=sandbox)
    assert expected in result.output_tail, result.output_tail


PROBE_READ = """
import sys
for path in sys.argv[1:]:
    try:
        print("READ", open(path).read())
    except OSError as exc:
        print("HIDDEN", type(exc).__name__)
"""


@pytest.mark.parametrize(
    ("sandbox", "readable"), [("none", True), pytest.param("bubblewrap", False, marks=needs_bwrap)]
)
def test_hidden_paths_cannot_be_read(tmp_path: Path, sandbox: str, readable: bool) -> None:
    from django.conf import settings

    data_secret = Path(settings.DATA_DIR) / f"probe-{uuid.uuid4().hex}"
    data_secret.write_text("data-dir-secret")
    root = tmp_path / "ws"
    inner = root / "gateway-data"
    inner.mkdir(parents=True)
    (inner / "secret_key").write_text("inner-secret")
    argv = project(root, PROBE_READ)
    try:
        result = command_run(
            [*argv, str(data_secret), str(inner / "secret_key")],
            root=root,
            timeout=30,
            sandbox=sandbox,
            hidden=[Path(settings.DATA_DIR), inner],
        )
    finally:
        data_secret.unlink()
    assert ("data-dir-secret" in result.output_tail) is readable
    assert ("inner-secret" in result.output_tail) is readable
    assert result.output_tail.count("HIDDEN") == (0 if readable else 2)


@needs_bwrap
def test_root_inside_a_hidden_directory_stays_usable(tmp_path: Path) -> None:
    data = tmp_path / "data"
    root = data / "workspaces" / "ws"
    (data / "secret_key").parent.mkdir(parents=True)
    (data / "secret_key").write_text("top-secret")
    argv = project(root, PROBE_READ + "\nopen('written.txt', 'w').write('ok')\n")
    result = command_run([*argv, str(data / "secret_key")], root=root, timeout=30, sandbox="bubblewrap", hidden=[data])
    assert result.exit_code == 0, result.output_tail
    assert "HIDDEN" in result.output_tail
    assert "top-secret" not in result.output_tail
    assert (root / "written.txt").read_text() == "ok"


def test_toolchains_under_tmp_stay_visible_below_the_private_tmp(tmp_path: Path) -> None:
    """A CI checkout under /tmp runs its venv's python: the private /tmp must not hide it."""
    from workspace.testing.runner import bubblewrap_argv

    venv = tmp_path / "checkout" / ".venv"
    (venv / "bin").mkdir(parents=True)
    tools = tmp_path / "tools"
    tools.mkdir()
    root = tmp_path / "ws"
    root.mkdir()
    env = {"PATH": f"{tools}:/usr/bin:{root}"}
    command = bubblewrap_argv([str(venv / "bin" / "python"), "-m", "pytest"], bwrap="bwrap", root=root, env=env)
    binds = [tuple(command[i + 1 : i + 3]) for i, arg in enumerate(command) if arg == "--ro-bind"]
    assert (str(venv), str(venv)) in binds and (str(tools), str(tools)) in binds
    assert all(not b[0].startswith("/usr") for b in binds[1:]) and (str(root), str(root)) not in binds
    assert command.index("--tmpfs") < command.index(str(venv))  # re-exposed after the private /tmp
