"""Configuration from the environment: defaults, the Lynkr names, and clear failures at start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from lynkr_site import env as E
from tests.e2e.server import LYNKR, ROOT
from tests.services import require_redis


def test_typed_readers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("X_BOOL", "yes")
    monkeypatch.setenv("X_INT", "42")
    monkeypatch.setenv("X_LIST", "a, b,,c")
    assert E.get_bool("X_BOOL", False) is True
    assert E.get_int("X_INT", 1) == 42
    assert E.get_list("X_LIST", []) == ["a", "b", "c"]
    secret = tmp_path / "s"
    secret.write_text("from-file\n")
    monkeypatch.setenv("X_SECRET_FILE", str(secret))
    assert E.get_secret("X_SECRET") == "from-file"


@pytest.mark.parametrize(
    ("name", "value", "call", "fragment"),
    [
        ("X_BOOL", "maybe", lambda: E.get_bool("X_BOOL", False), "expected true/false"),
        ("X_INT", "ten", lambda: E.get_int("X_INT", 1), "expected an integer"),
        ("PORT", "70000", lambda: E.get_int("PORT", 8080, minimum=1, maximum=65535), "at most 65535"),
        ("REDIS_URL", "http://x", E.redis_url, "expected redis://"),
        ("REDIS_URL", "redis://:pw@/0", E.redis_url, "no host"),
        ("HOST", "bad host", E.listen_host, "expected an IP address"),
        ("LYNKR_BASE_PATH", "a b", E.base_path, "letters, digits"),
        ("X_SECRET_FILE", "/nonexistent/file", lambda: E.get_secret("X_SECRET"), "cannot read"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, call: object, fragment: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured) as caught:
        call()  # type: ignore[operator]
    assert name in str(caught.value) and fragment in str(caught.value)


def test_database_urls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    sqlite = E.database_config(tmp_path)
    assert sqlite["NAME"] == str(tmp_path / "lynkr.sqlite3")
    assert "journal_mode=WAL" in sqlite["OPTIONS"]["init_command"]
    monkeypatch.setenv("DATABASE_URL", "postgres://u:secretpw@db:5432/lynkr")
    pg = E.database_config(tmp_path)
    assert pg["ENGINE"] == "django_prometheus.db.backends.postgresql" and pg["NAME"] == "lynkr"  # counted
    monkeypatch.setenv("DATABASE_URL", "sqlite:////abs/path.sqlite3")
    assert E.database_config(tmp_path)["NAME"] == "/abs/path.sqlite3"
    monkeypatch.setenv("DATABASE_URL", "mongodb://u:secretpw@h/x")
    with pytest.raises(ImproperlyConfigured) as caught:
        E.database_config(tmp_path)
    assert "DATABASE_URL" in str(caught.value) and "secretpw" not in str(caught.value)


def test_sqlite_page_cache_is_bounded_per_connection(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("LYNKR_SQLITE_CACHE_KB", raising=False)
    assert "PRAGMA cache_size=-256;" in E.database_config(tmp_path)["OPTIONS"]["init_command"]
    monkeypatch.setenv("LYNKR_SQLITE_CACHE_KB", "4096")
    assert "PRAGMA cache_size=-4096;" in E.database_config(tmp_path)["OPTIONS"]["init_command"]
    monkeypatch.setenv("LYNKR_SQLITE_CACHE_KB", "8")
    with pytest.raises(ImproperlyConfigured) as caught:
        E.database_config(tmp_path)
    assert "LYNKR_SQLITE_CACHE_KB" in str(caught.value)


def test_sqlite_connections_run_the_pragmas(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The init_command is what a real connection runs: every statement in it is valid and takes effect."""
    import sqlite3
    from contextlib import closing

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("LYNKR_SQLITE_CACHE_KB", "300")
    config = E.database_config(tmp_path)
    with closing(sqlite3.connect(config["NAME"])) as db:  # sqlite3's own context manager commits, it does not close
        db.executescript(config["OPTIONS"]["init_command"])
        assert db.execute("PRAGMA cache_size").fetchone() == (-300,)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


@pytest.mark.parametrize("url", ["", "sqlite:////abs/path.sqlite3", "postgres://u:pw@db:5432/lynkr"])
def test_database_connections_are_kept_per_thread_on_every_backend(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite included: closing its last connection checkpoints the WAL, which every usage flush paid for."""
    monkeypatch.delenv("LYNKR_DB_CONN_MAX_AGE", raising=False)
    monkeypatch.setenv("DATABASE_URL", url)
    config = E.database_config(tmp_path)
    assert (config["CONN_MAX_AGE"], config["CONN_HEALTH_CHECKS"]) == (60, True)
    monkeypatch.setenv("LYNKR_DB_CONN_MAX_AGE", "0")
    assert E.database_config(tmp_path)["CONN_MAX_AGE"] == 0


def _lynkr(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LYNKR_", "DATABASE_URL", "REDIS_URL", "DJANGO_"))}
    base.update({"LYNKR_DATA_DIR": str(tmp_path / "data"), "LYNKR_ENV_FILE": "/nonexistent", **env})
    return subprocess.run([str(LYNKR), *args], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120)


def test_bad_value_fails_at_start_with_clear_message(tmp_path: Path) -> None:
    result = _lynkr(tmp_path, "check", "--offline", DATABASE_URL="nosuch://x")
    assert result.returncode == 2
    assert "configuration error" in result.stderr and "DATABASE_URL" in result.stderr
    result = _lynkr(tmp_path, "check", "--offline", MODEL_PROVIDER="mystery")
    assert result.returncode != 0
    assert "MODEL_PROVIDER='mystery' is invalid" in result.stdout + result.stderr


def test_data_dir_moves_embedded_data(tmp_path: Path) -> None:
    result = _lynkr(tmp_path, "migrate")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "lynkr.sqlite3").is_file()
    assert (tmp_path / "data" / "secret_key").stat().st_mode & 0o077 == 0  # private to the owner


def _setting(tmp_path: Path, expr: str, **env: str) -> str:
    code = f"import django; django.setup(); from django.conf import settings as s; print(repr(({expr})))"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LYNKR_", "DATABASE_URL", "REDIS_URL", "DJANGO_"))}
    base.update({"LYNKR_DATA_DIR": str(tmp_path), "LYNKR_ENV_FILE": "/nonexistent",
                 "DJANGO_SETTINGS_MODULE": "lynkr_site.settings.base", **env})  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=base, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_embedded_defaults_without_env(tmp_path: Path) -> None:
    out = _setting(
        tmp_path,
        "s.CACHES['default']['BACKEND'], s.CHANNEL_LAYERS['default']['BACKEND'], s.CELERY_BROKER_URL, "
        "s.LYNKR_EMBEDDED_WORKER, s.LYNKR_HOST, s.LYNKR_PORT, s.DATABASES['default']['ENGINE']",
    )
    assert "LocMemCache" in out and "InMemoryChannelLayer" in out and "filesystem://" in out
    assert "True" in out and "'127.0.0.1', 8080" in out and "sqlite3" in out


def test_redis_url_switches_cache_channels_and_celery(tmp_path: Path) -> None:
    out = _setting(
        tmp_path,
        "s.CACHES['default']['BACKEND'], s.CHANNEL_LAYERS['default']['BACKEND'], s.CELERY_BROKER_URL, "
        "s.CELERY_RESULT_BACKEND, s.LYNKR_EMBEDDED_WORKER",
        REDIS_URL="redis://127.0.0.1:6379/5",
    )
    assert "RedisCache" in out and "RedisChannelLayer" in out
    assert out.count("redis://127.0.0.1:6379/5") == 2 and out.endswith("False)")


def test_redis_settings_load_every_backend(tmp_path: Path) -> None:
    """With REDIS_URL the cache, channel layer and Celery classes must import (a missing package fails at start)."""
    code = (
        "import django; django.setup(); from django.core.cache import cache; from channels.layers import "
        "get_channel_layer; cache.set('lynkr-probe', 1); print(cache.get('lynkr-probe'), type(get_channel_layer()))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LYNKR_", "DATABASE_URL", "REDIS_URL", "DJANGO_"))}
    env.update({"LYNKR_DATA_DIR": str(tmp_path), "LYNKR_ENV_FILE": "/nonexistent", "REDIS_URL": require_redis() + "/9",
                "DJANGO_SETTINGS_MODULE": "lynkr_site.settings.base"})  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("1 ") and "RedisChannelLayer" in result.stdout
