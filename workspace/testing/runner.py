"""Running a workspace's test command: an argv (never a shell), its own process group, a filtered environment,
a timeout and cancellation that kill the whole tree, bounded output, and bubblewrap when available.

Bubblewrap (https://github.com/containers/bubblewrap, bwrap(1)) gives the run a read-only view of the host, a
private /tmp, the workspace root as the only writable host directory, no network (a new, empty network namespace),
its own PID namespace (so killing bwrap takes every descendant with it) and no capabilities. The gateway's data
directory (database, generated secret key, Celery queue) is hidden under an empty tmpfs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from workspace.bwrap import hidden_mounts, kept_under_tmp
from workspace.jobs import JobCancelled, NullProgress, Progress

logger = logging.getLogger(__name__)

# Only these reach the tests: no LYNKR_*, *_API_KEY, DATABASE_URL, REDIS_URL or anything else of the gateway's.
ENV_ALLOWLIST = ("PATH", "LANG", "LC_ALL", "TERM", "TMPDIR")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
OUTPUT_TAIL_BYTES = 64 * 1024
POLL_SECONDS = 0.5
KILL_GRACE_SECONDS = 3.0
SANDBOX_TMP = "/tmp"  # noqa: S108 - a private, empty tmpfs inside bubblewrap
SANDBOX_HOME = "/tmp/home"  # noqa: S108 - inside bubblewrap's private, empty /tmp

_SHELL_OPERATORS = frozenset("();<>|&")


class CommandRefused(ValueError):
    """The test command cannot be run without a shell (or is empty); the message says what to do instead."""


class SandboxUnavailable(RuntimeError):
    """test_sandbox is "bubblewrap" but bwrap is not installed."""


@dataclass(frozen=True, slots=True)
class RunResult:
    argv: tuple[str, ...]
    sandbox: str  # "bubblewrap" or "none"
    exit_code: int | None  # None when the process never started or was killed by us
    output_tail: str
    output_bytes: int  # everything the run printed, of which output_tail is the end
    duration_seconds: float
    started_at: float  # time.time() when the process was started
    timed_out: bool = False
    cancelled: bool = False
    error: str = ""  # why it could not start


def split_command(command: str) -> list[str]:
    """The argv of ``command`` split like a shell line; CommandRefused when it needs a shell to mean anything."""
    try:
        argv = shlex.split(command)
        # punctuation_chars splits "hi;" into "hi" ";" outside quotes, so glued operators are found too.
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        probe = list(lexer)
    except ValueError as exc:
        raise CommandRefused(f"the test command cannot be split: {exc}") from exc
    if not argv:
        raise CommandRefused("the test command is empty")
    hint = (
        "the test command is run directly, without a shell; put the steps in a script file in the workspace "
        "(e.g. scripts/test.sh) and use that as the test command"
    )
    operators = sorted({token for token in probe if token and set(token) <= _SHELL_OPERATORS})
    if operators:
        raise CommandRefused(f"shell syntax {' '.join(operators)} is not supported: {hint}")
    if any("$(" in token or "`" in token for token in argv):
        raise CommandRefused(f"command substitution is not supported: {hint}")
    first = argv[0]
    if "=" in first and first.split("=", 1)[0].isidentifier():
        raise CommandRefused(f"environment assignments ({first}) are not supported: {hint}")
    return argv


def sandbox_choose(mode: str) -> tuple[str, str | None]:
    """("bubblewrap", path to bwrap) or ("none", None) for a workspace's test_sandbox setting."""
    bwrap = shutil.which("bwrap")
    if mode == "none":
        return "none", None
    if bwrap:
        return "bubblewrap", bwrap
    if mode == "bubblewrap":
        raise SandboxUnavailable("test_sandbox is 'bubblewrap' but bwrap is not installed on the gateway host")
    return "none", None


def child_environment(source: Mapping[str, str], *, home: str, tmpdir: str | None = None) -> dict[str, str]:
    """The allowlisted environment for a test run; HOME is a throwaway directory so no dotfile secrets leak."""
    env = {name: source[name] for name in ENV_ALLOWLIST if name in source}
    env.setdefault("PATH", DEFAULT_PATH)
    if tmpdir is not None:
        env["TMPDIR"] = tmpdir
    env.update(HOME=home, CI="true", PYTHONDONTWRITEBYTECODE="1")
    return env


def bubblewrap_argv(
    argv: Sequence[str], *, bwrap: str, root: Path, env: Mapping[str, str], hidden: Sequence[Path] = ()
) -> list[str]:
    """bwrap's argv around ``argv``. Mount order matters: later mounts cover earlier ones, so a hidden directory
    holding the root (the default workspaces dir is inside the data dir) is covered before the root is bound,
    and one inside the root after."""
    real_root = Path(os.path.realpath(root))
    around, within = hidden_mounts(hidden, real_root)
    command = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", SANDBOX_TMP]
    command += kept_under_tmp(argv, env.get("PATH", ""), real_root)
    command += [*around, "--bind", str(real_root), str(real_root), *within]
    command += ["--dir", SANDBOX_HOME, "--chdir", str(real_root)]
    command += ["--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv"]
    for name, value in sorted(env.items()):
        command += ["--setenv", name, value]
    return [*command, "--", *argv]


def _program_error(argv: Sequence[str], *, root: Path, path: str) -> str:
    """Why argv[0] cannot be started, or "". Checked on the host (the sandbox sees the same files)."""
    program = argv[0]
    if "/" in program:
        candidate = Path(program) if os.path.isabs(program) else root / program
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return ""
        return f"{program}: not found or not executable (relative paths are taken from the workspace root)"
    if shutil.which(program, path=path):
        return ""
    return f"{program}: command not found on PATH"


class _Tail:
    """The last ``limit`` bytes of a stream, whatever its length."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.buffer = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.buffer += chunk
        if len(self.buffer) > 2 * self.limit:
            del self.buffer[: -self.limit]

    def text(self) -> str:
        kept = bytes(self.buffer[-self.limit :])
        body = kept.decode("utf-8", errors="replace")
        omitted = self.total - len(kept)
        return f"[... {omitted} bytes of earlier output omitted ...]\n{body}" if omitted else body


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _exited(pid: int) -> bool:
    """Whether the child exited, without reaping it: while it is a zombie its PID (= our group id) is not reused,
    so signalling the group afterwards cannot hit an unrelated process."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def command_run(
    argv: Sequence[str],
    *,
    root: Path,
    timeout: float,
    sandbox: str = "auto",
    hidden: Sequence[Path] = (),
    progress: Progress | None = None,
    environ: Mapping[str, str] | None = None,
    tail_bytes: int = OUTPUT_TAIL_BYTES,
    grace: float = KILL_GRACE_SECONDS,
) -> RunResult:
    """Run ``argv`` in ``root``; never raises for the command's own failures (see RunResult).

    Raises SandboxUnavailable when ``sandbox`` is "bubblewrap" and bwrap is missing.
    """
    progress = progress or NullProgress()
    label = shlex.join(argv)
    runtime, bwrap = sandbox_choose(sandbox)
    started_at = time.time()
    with tempfile.TemporaryDirectory(prefix="lynkr-test-home-") as host_home:
        if bwrap is not None:
            env = child_environment(
                environ if environ is not None else os.environ, home=SANDBOX_HOME, tmpdir=SANDBOX_TMP
            )
            command = bubblewrap_argv(argv, bwrap=bwrap, root=root, env=env, hidden=hidden)
        else:
            env = child_environment(environ if environ is not None else os.environ, home=host_home)
            command = list(argv)
        problem = _program_error(argv, root=root, path=env["PATH"])
        if problem:
            return RunResult(tuple(argv), runtime, None, "", 0, 0.0, started_at, error=problem)
        try:
            progress.check_cancelled()  # a job cancelled before its process started never starts it
        except JobCancelled:
            return RunResult(tuple(argv), runtime, None, "", 0, 0.0, started_at, cancelled=True)
        clock = time.monotonic()
        started_at = time.time()
        try:
            process = subprocess.Popen(
                command,
                cwd=root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: we signal the group, never just the child
            )
        except OSError as exc:
            return RunResult(tuple(argv), runtime, None, "", 0, 0.0, started_at, error=f"could not start: {exc}")
        assert process.stdout is not None
        tail = _Tail(tail_bytes)
        timed_out = cancelled = False
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            next_report = clock
            while not _exited(process.pid):
                _pump(selector, tail, POLL_SECONDS)
                now = time.monotonic()
                elapsed = now - clock
                if now >= next_report:
                    next_report = now + POLL_SECONDS
                    progress.update(int(elapsed), int(timeout), f"running {label}"[:500])
                    try:
                        progress.check_cancelled()
                    except JobCancelled:
                        cancelled = True
                        break
                if elapsed >= timeout:
                    timed_out = True
                    break
            if timed_out or cancelled:
                _stop(process.pid, grace, selector, tail)
            # Whatever the command left behind in its group (servers, watchers) goes too, then drain the pipe:
            # a killed grandchild holding it open can no longer keep us waiting.
            _signal_group(process.pid, signal.SIGKILL)
            deadline = time.monotonic() + 2.0
            while selector.get_map() and time.monotonic() < deadline:
                _pump(selector, tail, 0.1)
        exit_code = process.wait()
        process.stdout.close()
    duration = round(time.monotonic() - clock, 3)
    logger.info("test command %s finished in %.1fs (exit %s, sandbox %s)", argv[0], duration, exit_code, runtime)
    return RunResult(
        argv=tuple(argv),
        sandbox=runtime,
        exit_code=None if (timed_out or cancelled) else exit_code,
        output_tail=tail.text(),
        output_bytes=tail.total,
        duration_seconds=duration,
        started_at=started_at,
        timed_out=timed_out,
        cancelled=cancelled,
    )


def _pump(selector: selectors.BaseSelector, tail: _Tail, wait: float) -> None:
    """Read for up to ``wait`` seconds, returning early at EOF (the pipe is then unregistered). A chatty run is
    read in 64 KB chunks into the bounded tail, so its output never accumulates in memory."""
    deadline = time.monotonic() + wait
    while selector.get_map():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        for key, _ in selector.select(timeout=remaining):
            chunk = os.read(key.fd, 65536)
            if chunk:
                tail.feed(chunk)
            else:
                selector.unregister(key.fileobj)
                return
    # EOF already seen (a grandchild may outlive the child): a short nap, so the caller notices the exit soon.
    time.sleep(max(0.0, min(0.05, deadline - time.monotonic())))


def _stop(pid: int, grace: float, selector: selectors.BaseSelector, tail: _Tail) -> None:
    """SIGTERM the group, give it ``grace`` seconds (reading its last words), then SIGKILL it."""
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and not _exited(pid):
        if selector.get_map():
            _pump(selector, tail, 0.1)
        else:
            time.sleep(0.1)
    _signal_group(pid, signal.SIGKILL)
