"""What every git call here shares: errors, a hardened environment, remote/ref checks and credential redaction.

Everything the model (or an admin form) supplies reaches git as one argv element, never through a shell; the
checks below also keep such values from being read as options (a leading '-') or as transport helpers ('::').
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from urllib.parse import urlsplit

import git
from git.exc import GitCommandError, InvalidGitRepositoryError, NoSuchPathError

logger = logging.getLogger(__name__)


class GitOpError(Exception):
    """A git operation failed or was refused; the message is safe to show the model (credentials redacted)."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


class NotARepository(GitOpError):
    pass


class RemoteRefused(GitOpError):
    """The remote URL uses a transport Lynkr does not allow."""


class UnknownRef(GitOpError):
    pass


def _config_env(pairs: tuple[tuple[str, str], ...]) -> dict[str, str]:
    # GIT_CONFIG_COUNT/KEY_n/VALUE_n (git >= 2.31) override the repository's config for one command, like `-c`.
    env = {"GIT_CONFIG_COUNT": str(len(pairs))}
    for index, (key, value) in enumerate(pairs):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


# Applied to every git process started here.
#  - hooks never run: husky-style hook directories (core.hooksPath = .husky) live in the work tree the model can
#    write, and a hook would run outside the test sandbox (git-scm.com/docs/githooks);
#  - protocol.allow / GIT_ALLOW_PROTOCOL: only these transports, for submodules too (git-scm.com/docs/git#_environment
#    and git-config "protocol.allow"); "file" covers local paths;
#  - no credential prompt on a server (GIT_TERMINAL_PROMPT=0), no optional index lock for read-only commands;
#  - literal pathspecs: a model-supplied ":(exclude)x" or "*.py" is a file name, not pathspec magic.
SAFE_ENV: dict[str, str] = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_OPTIONAL_LOCKS": "0",
    "GIT_LITERAL_PATHSPECS": "1",
    "GIT_ALLOW_PROTOCOL": "file:git:http:https:ssh",
    **_config_env(
        (
            ("core.hooksPath", "/dev/null"),
            ("protocol.ext.allow", "never"),
            ("core.fsmonitor", "false"),
            ("color.ui", "false"),
        )
    ),
}

# --- credentials ---------------------------------------------------------------------------------------------

_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s'\"]+)@")


def redact(text: str) -> str:
    """``text`` with URL credentials replaced by '***' (tokens in https URLs, user:password anywhere)."""

    def replace(match: re.Match[str]) -> str:
        scheme, userinfo = match["scheme"], match["userinfo"]
        # A bare ssh/git user ("git@") is not a secret; any userinfo of an http(s) URL may be a token.
        if ":" not in userinfo and not scheme.lower().startswith("http"):
            return match.group(0)
        return f"{scheme}***@"

    return _URL_USERINFO.sub(replace, text)


class _RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


# GitPython logs stderr of fetch/push at WARNING ("Error lines received while fetching"), which can hold a URL.
for _name in ("git.cmd", "git.remote", "git.repo.base", "git.util"):
    logging.getLogger(_name).addFilter(_RedactFilter())


# --- remotes and refs -----------------------------------------------------------------------------------------

_ALLOWED_SCHEMES = frozenset({"https", "http", "ssh", "git", "file"})
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
# git's scp-like syntax (git-scm.com/docs/git-clone#URLS): user@host:path, no '/' before the ':'.
_SCP_LIKE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*@[A-Za-z0-9][A-Za-z0-9.-]*:(?!-)[^\s]+$")


def remote_url_check(url: str) -> None:
    """Refuse any remote but https/http/ssh/git/file URLs, scp-like user@host:path and absolute local paths.

    Transport helpers (``ext::sh -c ...``, ``fd::``, ``<helper>::``) run commands, and options smuggled in a
    host (``ssh://-oProxyCommand=...``) did too (CVE-2017-1000117), so both are refused before git sees them.
    GitPython's own ``check_unsafe_protocols`` stays on as a second line.
    """
    shown = redact(url)
    if not url or url != url.strip() or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise RemoteRefused(f"remote {shown!r} is empty or contains whitespace or control characters")
    if url.startswith("-"):
        raise RemoteRefused(f"remote {shown!r} starts with '-'")
    if "::" in url:
        raise RemoteRefused(f"remote {shown!r} uses a git transport helper ('<transport>::'); these are not allowed")
    match = _SCHEME.match(url)
    if match:
        scheme = match["scheme"].lower()
        if scheme not in _ALLOWED_SCHEMES:
            raise RemoteRefused(
                f"remote {shown!r}: the {scheme}:// transport is not allowed (https, http, ssh, git, file)"
            )
        parts = urlsplit(url)
        if scheme != "file" and not parts.hostname:
            raise RemoteRefused(f"remote {shown!r} has no host")
        if (parts.hostname or "").startswith("-") or (parts.username or "").startswith("-"):
            raise RemoteRefused(f"remote {shown!r}: a host or user starting with '-' is not allowed")
        return
    if url.startswith("/") or _SCP_LIKE.match(url):
        return
    raise RemoteRefused(
        f"remote {shown!r} is not an https://, http://, ssh://, git:// or file:// URL, user@host:path or absolute path"
    )


_BAD_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def branch_name_check(name: str) -> str:
    """A branch name that git accepts and that cannot be read as an option; ToolError-safe message otherwise.

    Follows git-check-ref-format(1) rules; shell metacharacters (';', '$', '`') are legal in ref names and are
    harmless here because the name only ever travels as one argv element.
    """
    if not name:
        raise GitOpError("the branch name is empty")
    if name.startswith("-"):
        raise GitOpError(f"branch {name!r} starts with '-'; refused so it cannot be read as an option")
    if (
        len(name) > 250
        or _BAD_REF_CHARS.search(name)
        or ".." in name
        or "@{" in name
        or name == "@"
        or name.startswith("/")
        or name.endswith(("/", ".", ".lock"))
        or "//" in name
        or any(part.startswith(".") for part in name.split("/"))
    ):
        raise GitOpError(f"{name!r} is not a valid branch name (see git check-ref-format)")
    return name


def remote_name_check(repo: git.Repo, name: str) -> git.Remote:
    """The remote called ``name`` (it must already exist: the model cannot point a push at a URL)."""
    if not name or name.startswith("-"):
        raise GitOpError(f"remote name {name!r} is invalid")
    for remote in repo.remotes:
        if remote.name == name:
            remote_url_check(remote.url)
            return remote
    known = ", ".join(remote.name for remote in repo.remotes) or "none"
    raise GitOpError(f"no remote named {name!r} (remotes: {known})")


# --- opening repositories -------------------------------------------------------------------------------------


def repo_open(root: Path) -> git.Repo:
    """The repository whose top level is ``root`` (not a parent's), with the hardened environment."""
    try:
        repo = git.Repo(root, search_parent_directories=False)
    except (InvalidGitRepositoryError, NoSuchPathError) as exc:
        raise NotARepository(f"{root} is not a git repository") from exc
    if repo.bare:
        raise NotARepository(f"{root} is a bare repository; a workspace needs a work tree")
    repo.git.update_environment(**SAFE_ENV)
    return repo


def command_error(exc: GitCommandError, action: str) -> GitOpError:
    """A GitOpError carrying git's own explanation (stderr), redacted."""
    detail = exc.stderr.strip() if isinstance(exc.stderr, str) else ""
    if isinstance(exc.stderr, bytes):
        detail = exc.stderr.decode("utf-8", "replace").strip()
    detail = detail.removeprefix("stderr:").strip().strip("'").strip()
    return GitOpError(f"{action} failed: {detail or f'git exited with status {exc.status}'}")
