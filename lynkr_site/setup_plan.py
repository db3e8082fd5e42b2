"""What ``lynkr setup`` is about to write, the checks of each answer (shared by both modes), and the terminal."""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lynkr_site.settings_catalog import variable_get
from lynkr_site.setup_envfile import value_problem
from lynkr_site.setup_providers import ProviderChoice, SetupError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_ADMIN = "admin"
MIN_PASSWORD = 8
_USERNAME = re.compile(r"\A[\w.@+-]{1,150}\Z")  # Django's UnicodeUsernameValidator, and its max_length


class Console(Protocol):
    """The wizard's terminal; tests script it."""

    def ask(self, prompt: str) -> str: ...  # raises EOFError when input ends

    def secret(self, prompt: str) -> str: ...  # not echoed

    def say(self, text: str = "") -> None: ...

    def error(self, text: str) -> None: ...

    def stdin_line(self) -> str: ...  # one line of standard input ("" at its end)


class TerminalConsole:
    def ask(self, prompt: str) -> str:
        return input(prompt)

    def secret(self, prompt: str) -> str:
        if sys.stdin.isatty():
            return getpass.getpass(prompt)
        # Piped input (a script, a test): getpass would open /dev/tty instead; read the line without echoing it.
        sys.stdout.write(prompt)
        sys.stdout.flush()
        line = sys.stdin.readline()
        if not line:
            raise EOFError
        sys.stdout.write("\n")
        return line.rstrip("\r\n")

    def say(self, text: str = "") -> None:
        print(text, flush=True)

    def error(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def stdin_line(self) -> str:
        return sys.stdin.readline()


@dataclass(frozen=True, slots=True)
class Plan:
    choice: ProviderChoice
    host: str
    port: int
    admin_username: str
    admin_password: str
    password_generated: bool
    data_dir: str  # "" = Lynkr's default
    extras: tuple[tuple[str, str], ...]  # --set NAME=VALUE, applied last

    def env_values(self) -> list[tuple[str, str]]:
        values = dict(self.choice.env_values())
        values["HOST"] = self.host
        values["PORT"] = str(self.port)
        values["LYNKR_ADMIN_USERNAME"] = self.admin_username
        if self.data_dir:
            values["LYNKR_DATA_DIR"] = self.data_dir
        values.update(self.extras)
        return list(values.items())


def api_key_from(opts: argparse.Namespace) -> str:
    """``--api-key``, or the content of ``--api-key-file`` (stripped); "" when neither is given."""
    if opts.api_key_file:
        try:
            return Path(opts.api_key_file).expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SetupError(f"cannot read --api-key-file {opts.api_key_file}: {exc.strerror or exc}") from exc
    return str(opts.api_key or "")


def check_host(value: str) -> str:
    host = value.strip()
    if not host or any(ch.isspace() for ch in host) or "/" in host:
        raise SetupError(f"listen address {value!r} is not an IP address or a host name")
    return host


def check_port(value: str | int) -> int:
    try:
        port = int(value)
    except ValueError:
        raise SetupError(f"port {value!r} is not a number") from None
    if not 1 <= port <= 65535:
        raise SetupError(f"port {port} is not between 1 and 65535")
    return port


def check_username(value: str) -> str:
    username = value.strip()
    if not _USERNAME.match(username):
        raise SetupError(f"admin username {value!r}: use letters, digits and @ . + - _ (at most 150)")
    return username


def check_password(value: str) -> str:
    if len(value) < MIN_PASSWORD:
        raise SetupError(f"the admin password needs at least {MIN_PASSWORD} characters")
    if value != value.strip() or "\n" in value:
        raise SetupError("the admin password starts or ends with spaces")
    return value


def parse_set(items: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``--set NAME=VALUE`` items: names the configuration reference knows, values a .env can carry."""
    pairs: list[tuple[str, str]] = []
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise SetupError(f"--set {item!r}: expected NAME=VALUE")
        if variable_get(name=name) is None:
            raise SetupError(f"--set {name}: not a Lynkr variable (docs/configuration.md lists them)")
        if name == "LYNKR_ENV_FILE":
            raise SetupError("--set LYNKR_ENV_FILE: the file cannot name itself; use --env-file")
        problem = value_problem(value.strip())
        if problem:
            raise SetupError(f"--set {name}: the value {problem}")
        pairs.append((name, value.strip()))
    return tuple(pairs)
