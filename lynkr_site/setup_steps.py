"""The database half of ``lynkr setup``: ``lynkr migrate``, ``lynkr createadmin``, ``lynkr keys create``, each run as a
child process with ``LYNKR_ENV_FILE`` pointing at the file just written.

Child processes, because settings are read once per process: the command that runs the wizard may already have
loaded the previous ``.env`` (``lynkr`` sets Django up before a command runs), and only a fresh process reads the
new one exactly as ``lynkr serve`` will.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lynkr_site.setup_envfile import envfile_parse
from lynkr_site.setup_providers import SetupError

PROJECT_DIR = Path(__file__).resolve().parent.parent
_TIMEOUT = 600  # seconds; migrations on a remote PostgreSQL can take a while


class Runner(Protocol):
    def __call__(self, args: Sequence[str], *, input_text: str | None = None) -> subprocess.CompletedProcess[str]: ...


@dataclass(frozen=True, slots=True)
class DatabaseOutcome:
    admin_created: bool  # False: the user existed already (its password is unchanged)
    key_secret: str


def loaded_dotenv() -> dict[str, str]:
    """The values lynkr_site/env.py copied from its dotenv into ``os.environ`` when this process imported it.

    They are not the user's environment: a child must not inherit them, or the old file would win over the new one.
    Read before the new file is written (it may replace the old one).
    """
    module = sys.modules.get("lynkr_site.env")
    path = getattr(module, "_dotenv", None)
    if not isinstance(path, Path) or not path.is_file():
        return {}
    try:
        return envfile_parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return {}


def child_environ(*, environ: Mapping[str, str], loaded: Mapping[str, str], env_file: Path) -> dict[str, str]:
    """The environment of the child commands (and what ``lynkr serve`` will see): ours without what the old dotenv
    put there, reading ``env_file``."""
    child = {name: value for name, value in environ.items() if loaded.get(name) != value}
    child["LYNKR_ENV_FILE"] = str(env_file)
    return child


def lynkr_runner(*, environ: Mapping[str, str]) -> Runner:
    """Runs ``python -m lynkr_site.cli ARGS`` (the ``lynkr`` command of this interpreter) in ``environ``."""

    def run(args: Sequence[str], *, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lynkr_site.cli", *args],
            cwd=PROJECT_DIR,
            env=dict(environ),
            input=input_text,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
            check=False,
        )

    return run


def _failed(what: str, result: subprocess.CompletedProcess[str]) -> SetupError:
    output = (result.stderr.strip() or result.stdout.strip()).splitlines()
    tail = " / ".join(output[-3:]) or "no output"
    return SetupError(f"`lynkr {what}` failed (exit {result.returncode}): {tail}")


def database_prepare(*, run: Runner, username: str, password: str, key_name: str) -> DatabaseOutcome:
    """Migrate, create the admin user (kept if it exists), issue a key for it; the key's secret is returned."""
    migrated = run(["migrate"])
    if migrated.returncode != 0:
        raise _failed("migrate", migrated)
    created = run(["createadmin", "--username", username, "--password-stdin"], input_text=password + "\n")
    admin_created = created.returncode == 0
    if not admin_created and "already exists" not in created.stderr:
        raise _failed("createadmin", created)
    issued = run(["keys", "create", "--user", username, "--name", key_name])
    if issued.returncode != 0:
        raise _failed("keys create", issued)
    lines = issued.stdout.strip().splitlines()
    secret = lines[-1].strip() if lines else ""
    if not secret.startswith("sk-lynkr-"):
        raise SetupError("`lynkr keys create` did not print a key")
    return DatabaseOutcome(admin_created=admin_created, key_secret=secret)
