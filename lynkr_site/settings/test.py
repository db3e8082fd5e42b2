"""Test settings: the same as production but for speed (password hashing) and the test database choice."""

from __future__ import annotations

import os
import tempfile

# Tests never write into the checkout's ./data.
os.environ.setdefault("LYNKR_DATA_DIR", tempfile.mkdtemp(prefix="lynkr-test-"))

from lynkr_site.env import database_config
from lynkr_site.settings.base import *  # noqa: F403
from lynkr_site.settings.base import DATA_DIR

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Tests repeat identical prompts on purpose; the response cache is switched on only by the tests about it.
LYNKR_PROMPT_CACHE_ENABLED = False

# `make test` runs the DB tests a second time on PostgreSQL with LYNKR_TEST_DATABASE_URL set.
if os.environ.get("LYNKR_TEST_DATABASE_URL"):
    os.environ["DATABASE_URL"] = os.environ["LYNKR_TEST_DATABASE_URL"]
    DATABASES = {"default": database_config(DATA_DIR)}
# pytest-django's in-memory SQLite refuses a second writer at once (no busy timeout, unlike the file database):
# one database thread there.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    LYNKR_DB_THREADS = 1
# Tests drop their databases at the end: no connection may outlive a call.
DATABASES["default"]["CONN_MAX_AGE"] = 0
