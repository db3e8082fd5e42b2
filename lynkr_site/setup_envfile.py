"""The ``.env`` ``lynkr setup`` writes: rendering (pure), reading it back as django-environ does, and the atomic
0600 write.

django-environ's ``Env.read_env`` (the reader lynkr_site/env.py uses, called without ``parse_comments``) takes
``NAME=value`` lines verbatim: a ``# comment`` after a value becomes part of the value, a value wholly in single
quotes loses them, then one wholly in double quotes loses them and has ``\\x`` escapes undone; a value starting with
``$`` is read later as a reference to another variable. The writer below only produces lines that read back as the
exact value, and refuses values no line can carry.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from lynkr_site.settings_catalog import SECTIONS, variable_get
from lynkr_site.setup_providers import SetupError

_LINE = re.compile(r"\A(?:export )?([A-Za-z_0-9]+)=(.*)\Z")
_NAME = re.compile(r"\A[A-Za-z_][A-Za-z_0-9]*\Z")


def value_problem(value: str) -> str:
    """Why ``value`` cannot be written to a .env ("" when it can)."""
    if any(ch in value for ch in "\r\n\0"):
        return "contains a line break"
    if value.startswith("$"):
        return "starts with '$', which django-environ reads as a reference to another variable"
    if value != value.strip():
        return "starts or ends with spaces (Lynkr strips them)"
    return ""


def _encode(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        # It would lose its quotes on reading: wrap it in double quotes, escaping what the reader unescapes.
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def envfile_render(values: Sequence[tuple[str, str]], *, header: Sequence[str]) -> str:
    """A .env with ``values`` grouped under the reference's sections, in the order given within each."""
    lines = [f"# {line}" if line else "#" for line in header]
    # The provider first: it is what a reader of the file looks for; then the reference's order.
    order = {section.key: index for index, section in enumerate(SECTIONS)} | {"providers": -1}
    titles = {section.key: section.title for section in SECTIONS}
    groups: dict[str, list[tuple[str, str]]] = {}
    for name, value in values:
        if not _NAME.match(name):
            raise SetupError(f"{name!r} is not a variable name")
        problem = value_problem(value)
        if problem:
            raise SetupError(f"the value of {name} {problem}")
        var = variable_get(name=name)
        groups.setdefault(var.section if var else "", []).append((name, value))
    for key in sorted(groups, key=lambda k: order.get(k, len(order))):
        lines += ["", f"# --- {titles.get(key, 'other')} ---"]
        lines += [f"{name}={_encode(value)}" for name, value in groups[key]]
    return "\n".join(lines) + "\n"


def envfile_parse(text: str) -> dict[str, str]:
    """What django-environ's ``read_env`` (without ``parse_comments``) reads from ``text``."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        found = _LINE.match(line)
        if not found:
            continue
        name, value = found.group(1), found.group(2)
        single = re.match(r"\A'(.*)'\Z", value)
        if single:
            value = single.group(1)
        double = re.match(r'\A"(.*)"\Z', value)
        if double:
            value = re.sub(r"\\(.)", lambda m: "\\" + m.group(1) if m.group(1) in "rnt" else m.group(1), double[1])
        values[name] = value
    return values


def backup_path(path: Path) -> Path:
    return path.with_name(path.name + ".bak")


def envfile_write(path: Path, text: str, *, force: bool) -> Path | None:
    """Write ``text`` to ``path`` atomically with mode 0600; returns where the previous file was kept (mode 0600),
    if there was one. An existing file is refused unless ``force``."""
    if path.is_dir():
        raise SetupError(f"{path} is a directory")
    previous: bytes | None = None
    if path.exists():
        if not force:
            raise SetupError(f"{path} exists: not overwriting it (pass --force; the old file is kept as .bak)")
        previous = path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    backup = None
    if previous is not None:
        backup = backup_path(path)
        _write_private(backup, previous)
    _write_private(path, text.encode("utf-8"))
    return backup


def _write_private(path: Path, data: bytes) -> None:
    # mkstemp creates the file with mode 0600 before anything is written, so a secret is never readable by others,
    # not even for a moment; os.replace makes the new content appear at once.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def is_secret(name: str) -> bool:
    var = variable_get(name=name)
    return var is not None and var.secret


def mask(value: str) -> str:
    """A secret fit for the terminal: its first characters and its length, never the rest."""
    if len(value) < 12:
        return "*" * 8
    return f"{value[:4]}...({len(value)} characters)"
