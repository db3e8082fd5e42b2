"""Settings for every deployment; a laptop differs from production only by environment variables.

Each variable is documented in docs/configuration.md.
"""

from __future__ import annotations

from lynkr_site import env as E
from providers.envseed import PROVIDER_ENV_NAMES, SECRET_ENV_NAMES

BASE_DIR = E.BASE_DIR
DATA_DIR = E.data_dir()

SECRET_KEY = E.secret_key(DATA_DIR)
DEBUG = E.get_bool("LYNKR_DEBUG", False)
ALLOWED_HOSTS = E.get_list("LYNKR_ALLOWED_HOSTS", ["*"])
CSRF_TRUSTED_ORIGINS = E.get_list("LYNKR_CSRF_TRUSTED_ORIGINS", [])

LYNKR_HOST = E.listen_host()
LYNKR_PORT = E.get_int("PORT", 8080, minimum=1, maximum=65535)
LYNKR_PUBLIC_URL = E.get_str("LYNKR_PUBLIC_URL", "") or f"http://{LYNKR_HOST}:{LYNKR_PORT}"
# `lynkr serve`'s ASGI server (lynkr_site/serve.py); bench/results/ has the measured comparison.
LYNKR_SERVER = E.get_choice("LYNKR_SERVER", "daphne", ("daphne", "uvicorn"))
# The ASGI server's per-request access log: "" (off), "-" (standard output) or a file path.
LYNKR_ACCESS_LOG = E.get_str("LYNKR_ACCESS_LOG", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_celery_beat",
    "gateway",
    "providers",
    "workspace",
    "tasks_app",
    "mcp_app",
]

MIDDLEWARE = [
    "gateway.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "lynkr_site.urls"
ASGI_APPLICATION = "lynkr_site.asgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": E.database_config(DATA_DIR)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = E.redis_url()

# django-prometheus's local-memory cache backend counts gets, hits and misses (django_cache_* metrics); its Redis
# backends need the django-redis package, so Redis uses Django's own backend (not counted).
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}}
else:
    CACHES = {"default": {"BACKEND": "django_prometheus.cache.backends.locmem.LocMemCache", "LOCATION": "lynkr"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Celery: Redis when configured; otherwise kombu's filesystem transport in the data dir, so tasks still run
# in a separate worker process (started beside the server by `lynkr serve`), never eagerly inside a request.
CELERY_QUEUE_DIR = DATA_DIR / "celery"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
else:
    for _sub in ("queue", "processed", "results", "control"):
        (CELERY_QUEUE_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_QUEUE_DIR / "queue"),
        "data_folder_out": str(CELERY_QUEUE_DIR / "queue"),
        "processed_folder": str(CELERY_QUEUE_DIR / "processed"),
        "store_processed": False,
        # kombu's broadcast (pidbox) files; without this they land in the working directory.
        "control_folder": str(CELERY_QUEUE_DIR / "control"),
    }
    CELERY_RESULT_BACKEND = f"file://{CELERY_QUEUE_DIR / 'results'}"
CELERY_TASK_ALWAYS_EAGER = E.get_bool("LYNKR_CELERY_EAGER", False)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Periodic work (run by `lynkr beat`; the embedded worker on a laptop runs beat's schedule too, see cli.py).
CELERY_BEAT_SCHEDULE = {
    "usage-rollup": {"task": "gateway.usage_rollup", "schedule": 600.0},
    "usage-purge": {"task": "gateway.usage_purge", "schedule": 86400.0},
}
# Per-workspace reindex schedules live in django-celery-beat's tables, edited in admin (`lynkr beat` reads them).
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
LYNKR_EMBEDDED_WORKER = E.get_bool("LYNKR_EMBEDDED_WORKER", not REDIS_URL)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = E.get_str("LYNKR_TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
LYNKR_SERVE_STATIC = E.get_bool("LYNKR_SERVE_STATIC", True)

# --- gateway ---------------------------------------------------------------------------------------------
# Serve the API under a path prefix (e.g. "gw/anthropic/" -> /gw/anthropic/v1/messages); Claude Code keeps a
# base-URL path (claude-code-wire.md §1).
LYNKR_BASE_PATH = E.base_path()
# Threads (and so at most this many database connections per process) for the gateway's ORM work (gateway/db.py).
LYNKR_DB_THREADS = E.get_int("LYNKR_DB_THREADS", 8, minimum=1, maximum=64)
LYNKR_MAX_BODY_BYTES = E.get_int("LYNKR_MAX_BODY_BYTES", 32 * 1024 * 1024, minimum=1024)
# Django refuses bodies over this before our view runs; keep it in step with our own, clearer limit.
DATA_UPLOAD_MAX_MEMORY_SIZE = LYNKR_MAX_BODY_BYTES
LYNKR_UPSTREAM_CONNECT_TIMEOUT = E.get_float("LYNKR_UPSTREAM_CONNECT_TIMEOUT", 10.0, minimum=0.1)
# The CLI waits up to 600 s for an answer (X-Stainless-Timeout: 600), so must we.
LYNKR_UPSTREAM_READ_TIMEOUT = E.get_float("LYNKR_UPSTREAM_READ_TIMEOUT", 600.0, minimum=1.0)
# One per open upstream stream: as many as LOAD_SHEDDING_ACTIVE_REQUESTS_THRESHOLD admits, so the pool never refuses
# a request the shedder let in (a full pool answers 529 overloaded_error).
LYNKR_UPSTREAM_MAX_CONNECTIONS = E.get_int("LYNKR_UPSTREAM_MAX_CONNECTIONS", 1000, minimum=1)
# Seconds of upstream silence after which a streaming client gets an Anthropic `ping` event.
LYNKR_STREAM_PING_INTERVAL = E.get_float("LYNKR_STREAM_PING_INTERVAL", 10.0, minimum=0.05)
LYNKR_KEY_CACHE_TTL = E.get_float("LYNKR_KEY_CACHE_TTL", 5.0, minimum=0.0)
LYNKR_ROUTING_POLL = E.get_float("LYNKR_ROUTING_POLL", 1.0, minimum=0.05)
# Provider credentials stored in the database are encrypted with a key derived from this (or SECRET_KEY).
LYNKR_ENCRYPTION_KEY = E.get_secret("LYNKR_ENCRYPTION_KEY")
LYNKR_ENCRYPTION_KEY_OLD = E.get_secret("LYNKR_ENCRYPTION_KEY_OLD")
LYNKR_ADMIN_USERNAME = E.get_str("LYNKR_ADMIN_USERNAME", "admin")

# Lynkr's provider variables, read once here and synced into the Provider table at start.
LYNKR_PROVIDER_ENV = {
    name: (E.get_secret(name) if name in SECRET_ENV_NAMES else E.get_str(name)) for name in PROVIDER_ENV_NAMES
}

# Routing and resilience, with Lynkr's names (docs/configuration.md).
LYNKR_FALLBACK_ENABLED = E.get_bool("FALLBACK_ENABLED", True)
LYNKR_FALLBACK_PROVIDER = E.get_str("FALLBACK_PROVIDER", "databricks")
LYNKR_PREFER_OLLAMA = E.get_bool("PREFER_OLLAMA", False)
LYNKR_OLLAMA_MAX_TOOLS = E.get_int("OLLAMA_MAX_TOOLS_FOR_ROUTING", 3, minimum=0)
LYNKR_OPENROUTER_MAX_TOOLS = E.get_int("OPENROUTER_MAX_TOOLS_FOR_ROUTING", 15, minimum=0)
LYNKR_RETRY_MAX_RETRIES = E.get_int("API_RETRY_MAX_RETRIES", 3, minimum=0, maximum=20)
LYNKR_RETRY_INITIAL_DELAY = E.get_int("API_RETRY_INITIAL_DELAY", 1000, minimum=0) / 1000
LYNKR_RETRY_MAX_DELAY = E.get_int("API_RETRY_MAX_DELAY", 30000, minimum=0) / 1000
LYNKR_BREAKER_FAILURES = E.get_int("CIRCUIT_BREAKER_FAILURE_THRESHOLD", 5, minimum=1)
LYNKR_BREAKER_SUCCESSES = E.get_int("CIRCUIT_BREAKER_SUCCESS_THRESHOLD", 2, minimum=1)
LYNKR_BREAKER_OPEN_SECONDS = E.get_int("CIRCUIT_BREAKER_TIMEOUT", 60000, minimum=0) / 1000
# Streams are held until the first content event so a failing upstream can still be replaced (bounded wait).
LYNKR_FIRST_TOKEN_TIMEOUT = E.get_float("LYNKR_FIRST_TOKEN_TIMEOUT", 60.0, minimum=0.0)

# Accounting (docs/configuration.md).
LYNKR_USAGE_FLUSH_INTERVAL = E.get_float("LYNKR_USAGE_FLUSH_INTERVAL", 1.0, minimum=0.05)
LYNKR_USAGE_FLUSH_BATCH = E.get_int("LYNKR_USAGE_FLUSH_BATCH", 200, minimum=1)
LYNKR_USAGE_RETENTION_DAYS = E.get_int("LYNKR_USAGE_RETENTION_DAYS", 90, minimum=1)
LYNKR_BUDGET_OUTPUT_RESERVATION = E.get_int("LYNKR_BUDGET_OUTPUT_RESERVATION", 4096, minimum=0)
LYNKR_TRANSCRIPTS = E.get_bool("LYNKR_TRANSCRIPTS", True)
LYNKR_PROMPT_CACHE_ENABLED = E.get_bool("PROMPT_CACHE_ENABLED", True)
LYNKR_PROMPT_CACHE_TTL = E.get_int("PROMPT_CACHE_TTL_MS", 300000, minimum=0) / 1000
LYNKR_PROMPT_CACHE_MAX_ENTRIES = E.get_int("PROMPT_CACHE_MAX_ENTRIES", 64, minimum=1)

# Seconds in-flight requests get to finish on SIGTERM before they are cancelled (Lynkr: GRACEFUL_SHUTDOWN_TIMEOUT ms).
LYNKR_GRACEFUL_SHUTDOWN_TIMEOUT = E.get_int("GRACEFUL_SHUTDOWN_TIMEOUT", 30000, minimum=0) / 1000

# Load shedding (Lynkr's names): 503 overloaded_error above these.
LYNKR_SHED_ACTIVE_REQUESTS = E.get_int("LOAD_SHEDDING_ACTIVE_REQUESTS_THRESHOLD", 1000, minimum=1)
LYNKR_SHED_MEMORY_FRACTION = E.get_float("LOAD_SHEDDING_MEMORY_THRESHOLD", 0.85, minimum=0.0)
# Readiness fails when usage records have waited this long without a successful flush.
LYNKR_USAGE_STUCK_AFTER = E.get_float("LYNKR_USAGE_STUCK_AFTER", 30.0, minimum=1.0)

# --- workspaces and their tools (docs/workspaces.md) ---------------------------------------------------------
# Lynkr compatibility: when set, a workspace named "default" with this root is created at start, open to every user.
LYNKR_WORKSPACE_ROOT = E.get_str("WORKSPACE_ROOT")
LYNKR_WORKSPACES_DIR = E.workspaces_dir(DATA_DIR)
LYNKR_TOOL_EXECUTION_MODE = E.get_choice("TOOL_EXECUTION_MODE", "client", ("client", "server", "passthrough"))
LYNKR_POLICY_MAX_STEPS = E.get_int("POLICY_MAX_STEPS", 8, minimum=1, maximum=100)
LYNKR_POLICY_MAX_TOOL_CALLS = E.get_int("POLICY_MAX_TOOL_CALLS", 32, minimum=1, maximum=1000)
LYNKR_POLICY_GIT_ALLOW_PUSH = E.get_bool("POLICY_GIT_ALLOW_PUSH", False)
LYNKR_POLICY_GIT_REQUIRE_TESTS = E.get_bool("POLICY_GIT_REQUIRE_TESTS", False)
LYNKR_POLICY_GIT_TEST_COMMAND = E.get_str("POLICY_GIT_TEST_COMMAND")
LYNKR_POLICY_GIT_COMMIT_PATTERN = E.get_str("POLICY_GIT_COMMIT_PATTERN")
LYNKR_WORKSPACE_TEST_COMMAND = E.get_str("WORKSPACE_TEST_COMMAND")
LYNKR_WORKSPACE_TEST_TIMEOUT = E.get_int("WORKSPACE_TEST_TIMEOUT_MS", 600000, minimum=1000) / 1000
LYNKR_WORKSPACE_TEST_COVERAGE_FILES = E.get_list(
    "WORKSPACE_TEST_COVERAGE_FILES", ["coverage/coverage-summary.json", "coverage.xml"]
)
# Largest file the indexer parses and fs_read returns (bytes).
LYNKR_INDEX_MAX_FILE_BYTES = E.get_int("LYNKR_INDEX_MAX_FILE_BYTES", 1024 * 1024, minimum=1024)
# Threads per process that run tool calls (their own pool: a slow tool never delays the gateway's database work).
LYNKR_TOOL_THREADS = E.get_int("LYNKR_TOOL_THREADS", 4, minimum=1, maximum=64)
LYNKR_TOOL_OUTPUT_MAX_BYTES = E.get_int("LYNKR_TOOL_OUTPUT_MAX_BYTES", 256 * 1024, minimum=1024)
LYNKR_WEB_SEARCH_ENDPOINT = E.get_str("WEB_SEARCH_ENDPOINT", "http://localhost:8888/search")
LYNKR_WEB_ALLOWED_HOSTS = E.get_list("WEB_SEARCH_ALLOWED_HOSTS", [])
# Private networks web_fetch may reach anyway (CIDRs, e.g. an intranet docs server); empty = none.
LYNKR_WEB_FETCH_ALLOW_NETWORKS = E.get_list("LYNKR_WEB_FETCH_ALLOW_NETWORKS", [])
LYNKR_WEB_FETCH_MAX_BYTES = E.get_int("LYNKR_WEB_FETCH_MAX_BYTES", 2 * 1024 * 1024, minimum=1024)
LYNKR_WEB_FETCH_TIMEOUT = E.get_float("LYNKR_WEB_FETCH_TIMEOUT", 15.0, minimum=0.5)
# MCP servers (docs/mcp.md), Lynkr's names: a manifest file, directories of manifests, the sandbox default.
LYNKR_MCP_SERVER_MANIFEST = E.get_str("MCP_SERVER_MANIFEST")
LYNKR_MCP_MANIFEST_DIRS = E.get_list("MCP_MANIFEST_DIRS", ["~/.claude/mcp"])
LYNKR_MCP_SANDBOX_ENABLED = E.get_bool("MCP_SANDBOX_ENABLED", True)
LYNKR_MCP_SANDBOX_IMAGE = E.get_str("MCP_SANDBOX_IMAGE")

LOG_LEVEL = E.get_str("LYNKR_LOG_LEVEL", "INFO").upper()
# JSON lines in production, readable text in development: "auto" picks text on a terminal, JSON otherwise.
LYNKR_LOG_FORMAT = E.get_str("LYNKR_LOG_FORMAT", "auto").lower()
if LYNKR_LOG_FORMAT not in ("auto", "json", "text"):
    raise E.ImproperlyConfigured(f"LYNKR_LOG_FORMAT={LYNKR_LOG_FORMAT!r} is invalid: expected auto, json or text")
if LYNKR_LOG_FORMAT == "auto":
    import sys

    LYNKR_LOG_FORMAT = "text" if sys.stderr.isatty() or DEBUG else "json"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request": {"()": "gateway.logcontext.RequestContextFilter"}},
    "formatters": {
        "text": {"()": "gateway.logcontext.TextFormatter", "format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "gateway.logcontext.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LYNKR_LOG_FORMAT, "filters": ["request"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        # The MCP SDK logs every stateless request's session teardown at INFO.
        "mcp": {"level": "WARNING"},
    },
}

# --- metrics (docs/operations.md "Metrics") -------------------------------------------------------------------
# /metrics/* answer loopback callers; anyone else needs a staff session or `Authorization: Bearer <this>`.
LYNKR_METRICS_TOKEN = E.get_secret("LYNKR_METRICS_TOKEN")
# django-prometheus is not installed as middleware: its middlewares are MiddlewareMixin classes whose async path
# runs process_request/process_response through sync_to_async(thread_sensitive=True), i.e. two hops to one shared
# thread per request. /metrics/prometheus exports prometheus_client's default registry (process_*, python_*).
