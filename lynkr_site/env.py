"""The one place that reads the process environment.

Everything configurable is read here, once, at start; a bad value raises ``ImproperlyConfigured`` with a
message naming the variable, so a misconfigured deployment fails before its first request. Secrets accept a
``NAME_FILE`` form (Docker/Kubernetes secrets mounted as files). Lynkr's own variable names are accepted as
they are (see ``docs/configuration.md``) so a Lynkr ``.env`` keeps working.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

__all__ = ["ImproperlyConfigured"]

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# A `.env` beside manage.py is read if present (django-environ does not override variables already set).
_dotenv = Path(os.environ.get("LYNKR_ENV_FILE", BASE_DIR / ".env"))
if _dotenv.is_file():
    environ.Env.read_env(str(_dotenv))


def _fail(name: str, value: object, why: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{name}={value!r} is invalid: {why}")


def get_str(name: str, default: str = "") -> str:
    return str(env.str(name, default=default)).strip()


def get_secret(name: str, default: str = "") -> str:
    """``NAME`` or the contents of the file named by ``NAME_FILE``."""
    file_name = os.environ.get(f"{name}_FILE", "").strip()
    if file_name:
        try:
            return Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise _fail(f"{name}_FILE", file_name, f"cannot read the file ({exc.strerror})") from exc
    return get_str(name, default)


def get_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise _fail(name, raw, "expected true/false (1/0, yes/no, on/off)")


def get_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError as exc:
        raise _fail(name, raw, "expected an integer") from exc
    if minimum is not None and value < minimum:
        raise _fail(name, raw, f"must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise _fail(name, raw, f"must be at most {maximum}")
    return value


def get_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError as exc:
        raise _fail(name, raw, "expected a number") from exc
    if minimum is not None and value < minimum:
        raise _fail(name, raw, f"must be at least {minimum}")
    return value


def get_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def get_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = get_str(name, default).lower()
    if value not in choices:
        raise _fail(name, value, f"expected one of {', '.join(choices)}")
    return value


def workspaces_dir(data: Path) -> Path:
    """Where workspaces with a git remote (or no root) are cloned: LYNKR_WORKSPACES_DIR, default DATA_DIR/workspaces."""
    raw = get_str("LYNKR_WORKSPACES_DIR")
    path = Path(raw).expanduser() if raw else data / "workspaces"
    if not path.is_absolute():
        raise _fail("LYNKR_WORKSPACES_DIR", raw, "must be an absolute path")
    return path


def data_dir() -> Path:
    """Embedded data (SQLite, Celery's filesystem queue, the generated secret key). Created if missing."""
    raw = get_str("LYNKR_DATA_DIR")
    path = Path(raw).expanduser() if raw else BASE_DIR / "data"
    if not path.is_absolute():
        path = (Path.cwd() / path).resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _fail("LYNKR_DATA_DIR", str(path), f"cannot create the directory ({exc.strerror})") from exc
    if not os.access(path, os.W_OK):
        raise _fail("LYNKR_DATA_DIR", str(path), "the directory is not writable")
    return path


# The engines whose drivers ship with Lynkr (psycopg for PostgreSQL; sqlite3 in the standard library).
_DB_SCHEMES = frozenset({"postgres", "postgresql", "psql", "pgsql", "sqlite"})


_PROMETHEUS_ENGINES = {
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
    "django.db.backends.postgresql": "django_prometheus.db.backends.postgresql",
}


def database_config(data: Path) -> dict[str, Any]:
    raw = get_secret("DATABASE_URL")
    if not raw:
        config: dict[str, Any] = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(data / "lynkr.sqlite3"),
        }
    else:
        scheme = urlsplit(raw).scheme
        if scheme not in _DB_SCHEMES:
            raise _fail(
                "DATABASE_URL", _redact_url(raw), f"unsupported scheme {scheme!r} (use postgres:// or sqlite:///)"
            )
        try:
            config = environ.Env.db_url_config(raw)
        except Exception as exc:  # django-environ raises several types for malformed URLs
            raise _fail("DATABASE_URL", _redact_url(raw), f"not a database URL ({exc})") from exc
        if scheme == "sqlite" and not config.get("NAME"):
            raise _fail("DATABASE_URL", raw, "a SQLite URL needs a path: sqlite:////abs/path.sqlite3")
    # django-prometheus's engine wrappers count queries, errors and connections (django_db_* metrics).
    engine = str(config["ENGINE"])
    if get_bool("LYNKR_DB_METRICS", True) and engine in _PROMETHEUS_ENGINES:
        config["ENGINE"] = _PROMETHEUS_ENGINES[engine]
    if "sqlite" in str(config["ENGINE"]):
        # WAL lets readers run beside the one writer; IMMEDIATE avoids "database is locked" on lock upgrades.
        # https://docs.djangoproject.com/en/5.2/ref/databases/#sqlite-init-command
        # The page cache is per connection, one per database thread: at SQLite's default (2,000 KiB) the pool's
        # caches alone grew the server by ~15 MB under load (the write-behind's inserts touch index pages all over);
        # pages it misses come from the OS's file cache. https://www.sqlite.org/pragma.html#pragma_cache_size
        cache_kib = get_int("LYNKR_SQLITE_CACHE_KB", 256, minimum=64)
        options = dict(config.get("OPTIONS", {}))
        options.setdefault(
            "init_command",
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000; "
            f"PRAGMA cache_size=-{cache_kib};",
        )
        options.setdefault("transaction_mode", "IMMEDIATE")
        config["OPTIONS"] = options
    # Connections are kept per thread of the bounded database pool (gateway/db.py), so reusing them is safe. SQLite
    # too: opening one runs the init_command's PRAGMAs, and closing the last one checkpoints the WAL into the database
    # (https://www.sqlite.org/wal.html#automatic_checkpoint), ~37 ms measured, on every usage flush.
    config.setdefault("CONN_MAX_AGE", get_int("LYNKR_DB_CONN_MAX_AGE", 60, minimum=0))
    config.setdefault("CONN_HEALTH_CHECKS", True)
    return config


def redis_url() -> str:
    raw = get_secret("REDIS_URL")
    if not raw:
        return ""
    parts = urlsplit(raw)
    if parts.scheme not in {"redis", "rediss", "unix"}:
        raise _fail("REDIS_URL", _redact_url(raw), "expected redis://, rediss:// or unix://")
    if parts.scheme != "unix" and not parts.hostname:
        raise _fail("REDIS_URL", _redact_url(raw), "no host")
    try:
        _ = parts.port
    except ValueError as exc:
        raise _fail("REDIS_URL", _redact_url(raw), "bad port") from exc
    return raw


def listen_host() -> str:
    host = get_str("HOST", "127.0.0.1")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not host or any(ch.isspace() for ch in host) or "/" in host:
            raise _fail("HOST", host, "expected an IP address or a host name") from None
    return host


def base_path() -> str:
    raw = get_str("LYNKR_BASE_PATH").strip("/")
    if raw and not all(part and all(c.isalnum() or c in "-_." for c in part) for part in raw.split("/")):
        raise _fail("LYNKR_BASE_PATH", raw, "use letters, digits, '-', '_', '.' and '/' only")
    return f"{raw}/" if raw else ""


def secret_key(data: Path) -> str:
    """``SECRET_KEY`` (or ``LYNKR_SECRET_KEY``); on a laptop one is generated once and kept in the data dir."""
    value = get_secret("SECRET_KEY") or get_secret("LYNKR_SECRET_KEY")
    if value:
        if len(value) < 32:
            raise _fail("SECRET_KEY", "***", "must be at least 32 characters")
        return value
    path = data / "secret_key"
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    value = secrets.token_urlsafe(50)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value)
    return value


def _redact_url(url: str) -> str:
    """A URL fit for an error message: the password replaced."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url
