"""Install and run the real Claude Code CLI (npm @anthropic-ai/claude-code) in tests.

Wire facts and headless flags: shared/reference/claude-code-wire.md (sections 1 and 6).
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CLAUDE_VERSIONS",
    "ClaudeResult",
    "claude_cache_dir",
    "ensure_claude",
    "run_claude",
]

CLAUDE_VERSIONS = ("latest", "2.1.197")
PACKAGE = "@anthropic-ai/claude-code"
_INSTALL_TIMEOUT = 900  # seconds; the package pulls a ~100 MB native binary
_MARKER = ".lynkr-installed"  # written only after a verified install


def claude_cache_dir() -> Path:
    """<$LYNKR_TEST_CACHE or ~/.cache/lynkr-tests>/claude-code/"""
    root = os.environ.get("LYNKR_TEST_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "lynkr-tests"
    return base / "claude-code"


def _npm() -> str | None:
    return shutil.which("npm")


@functools.cache
def _resolve(version: str) -> str:
    """Turn "latest" into a concrete version once per test session."""
    if version != "latest":
        return version
    npm = _npm()
    assert npm is not None
    proc = subprocess.run(
        [npm, "view", PACKAGE, "version"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    resolved = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if proc.returncode == 0 and resolved:
        return resolved
    # Registry unreachable: the newest verified install still stands in for
    # "latest", so an offline rerun reuses the cache instead of failing.
    installed = [p.parent.name for p in claude_cache_dir().glob(f"*/{_MARKER}")]
    if installed:
        return max(installed, key=_version_key)
    raise RuntimeError(f"npm view {PACKAGE} version failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else -1 for part in version.split("."))


def _verified(exe: Path, version: str) -> bool:
    """The native binary actually starts and reports the version we asked for."""
    with tempfile.TemporaryDirectory(prefix="claude-version-") as home:
        env = _base_env(Path(home)) | {
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
        }
        try:
            proc = subprocess.run(
                [str(exe), "--version"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
                env=env,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
    return proc.returncode == 0 and version in proc.stdout


def ensure_claude(version: str) -> Path | None:
    """Path of the ``claude`` executable for ``version``; None when npm is absent.

    Idempotent and safe across parallel test workers (one fcntl lock per version).
    """
    if _npm() is None:
        return None
    resolved = _resolve(version)
    prefix = claude_cache_dir() / resolved
    exe = prefix / "node_modules" / ".bin" / "claude"
    if (prefix / _MARKER).exists() and exe.exists():
        return exe
    prefix.mkdir(parents=True, exist_ok=True)
    with open(claude_cache_dir() / f".{resolved}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if (prefix / _MARKER).exists() and exe.exists():
            return exe  # another worker finished while we waited
        npm = _npm()
        assert npm is not None
        cmd = [
            npm,
            "install",
            "--prefix",
            str(prefix),
            "--no-audit",
            "--no-fund",
            f"{PACKAGE}@{resolved}",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_INSTALL_TIMEOUT, check=False)
        if proc.returncode != 0 or not exe.exists() or not _verified(exe, resolved):
            raise RuntimeError(
                f"{' '.join(cmd)} failed (exit {proc.returncode}, "
                f"exe exists: {exe.exists()}):\n"
                f"{proc.stdout}\n{proc.stderr}"
            )
        (prefix / _MARKER).write_text(resolved + "\n")
    return exe


@dataclass
class ClaudeResult:
    returncode: int  # -9 when killed on timeout
    stdout: str
    stderr: str
    data: dict[str, Any] | None  # the --output-format json result object
    elapsed: float  # seconds
    home: Path  # the private HOME the CLI ran with (config, transcripts)
    timed_out: bool = False

    @property
    def permission_denials(self) -> list[Any]:
        denials = (self.data or {}).get("permission_denials")
        return denials if isinstance(denials, list) else []

    @property
    def is_error(self) -> bool:
        return self.data is None or bool(self.data.get("is_error"))

    @property
    def text(self) -> str:
        """The final ``result`` string of the run."""
        return str((self.data or {}).get("result", ""))


def _last_json_object(stdout: str) -> dict[str, Any] | None:
    for raw_line in reversed(stdout.splitlines()):
        line = raw_line.strip()
        if not line.startswith("{"):
            continue
        try:
            parsed = json.loads(line)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            return parsed
    return None


def _base_env(home: Path) -> dict[str, str]:
    # A whitelist, not os.environ minus some keys: no user config, proxy, real
    # API key or CLAUDE_* setting of the developer's shell may leak into a test.
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TMPDIR": tempfile.gettempdir(),
    }


def _private_home(cwd: Path) -> Path:
    home = Path(tempfile.mkdtemp(prefix="claude-home-", dir=cwd.parent))
    # Skips the first-run onboarding; harmless for -p, needed for the TUI.
    (home / ".claude.json").write_text(json.dumps({"hasCompletedOnboarding": True}))
    return home


def run_claude(
    binary: Path,
    *,
    base_url: str,
    api_key: str,
    cwd: Path,
    prompt: str,
    extra_args: tuple[str, ...] | list[str] = (),
    timeout: float = 180,
    env_extra: dict[str, str] | None = None,
) -> ClaudeResult:
    """Run ``claude -p PROMPT --output-format json --permission-mode acceptEdits``.

    acceptEdits, not bypassPermissions: tests run as root, where the CLI refuses
    bypass mode. Judge a run by side effects + permission_denials: a denied
    tool still exits 0.
    """
    home = _private_home(cwd)
    env = _base_env(home) | {
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": api_key,
        # Without this the CLI resolves ~40 outside hosts and adds a title call.
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        # Default is 10 retries with backoff (~3 min on a persistent error).
        "CLAUDE_CODE_MAX_RETRIES": "1",
    }
    env |= env_extra or {}
    cmd = [
        str(binary),
        "-p",
        prompt,
        "--output-format",
        "json",
        "--permission-mode",
        "acceptEdits",
        *extra_args,
    ]
    started = time.monotonic()
    # Own session so a timeout can end the CLI together with any tool subprocess.
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    timed_out = False
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        stderr += f"\n[run_claude] killed after {timeout}s timeout"
    return ClaudeResult(
        returncode=proc.returncode,
        stdout=stdout,
        stderr=stderr,
        data=_last_json_object(stdout),
        elapsed=time.monotonic() - started,
        home=home,
        timed_out=timed_out,
    )
