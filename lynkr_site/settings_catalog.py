"""Every environment variable Lynkr reads, described once: docs/configuration.md is generated from this catalog.

Pure data (no Django import), so ``lynkr docs config`` and ``lynkr setup`` work before anything is configured.
tests/lynkr_site/test_docs_config.py reads ``lynkr_site/env.py``, ``lynkr_site/settings/base.py`` and
``providers/envseed.py`` with ``ast`` and fails when a variable is read there but missing here (or the reverse),
when a default or the setting holding it differs, or when docs/configuration.md differs from the generator's
output: the reference cannot drift from the code. Adding a setting means adding its entry here and running
``lynkr docs config --write``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Section:
    key: str
    title: str
    intro: str = ""


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    section: str
    # The default the code passes (compared with the source by the test); None = unset. When the code computes the
    # default, ``shown`` says what it is.
    default: object
    meaning: str
    setting: str = ""  # the Django setting holding the value ("" when none)
    lynkr: bool = False  # one of Lynkr's own names: a Lynkr .env sets it and keeps working
    lynkr_default: str = ""  # Lynkr's default, when ours differs
    secret: bool = False  # read with get_secret: NAME_FILE accepted, masked by `lynkr setup`
    aliases: tuple[str, ...] = ()  # other names read for the same value
    shown: str = ""  # how the default is shown, when not the literal
    ignored: bool = False  # accepted (Lynkr's name) and without effect here

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


SECTIONS = (
    Section("server", "Server"),
    Section("storage", "Storage and background work"),
    Section("gateway", "Gateway"),
    Section("routing", "Routing and resilience (Lynkr's names)"),
    Section(
        "providers",
        "Providers (Lynkr's names)",
        "Read at every start and synced into the Provider table (see [providers.md](providers.md), one section per "
        "`MODEL_PROVIDER` with a working `.env`). `lynkr setup` writes these for you.",
    ),
    Section("accounting", "Accounting"),
    Section("workspaces", "Workspaces and tools (docs/workspaces.md)"),
    Section("mcp", "MCP (docs/mcp.md)"),
)

_PROVIDERS = "LYNKR_PROVIDER_ENV"
_V = Variable


VARIABLES: tuple[Variable, ...] = (
    # --- server ---
    _V("HOST", "server", "127.0.0.1", "listen address. Lynkr never binds every interface unless you set `0.0.0.0` "
       "here.", setting="LYNKR_HOST"),
    _V("PORT", "server", 8080, "listen port", setting="LYNKR_PORT", lynkr=True),
    _V("LYNKR_PUBLIC_URL", "server", "", "the URL clients use; only for printed instructions",
       setting="LYNKR_PUBLIC_URL", shown="`http://HOST:PORT`"),
    _V("LYNKR_SERVER", "server", "daphne", "ASGI server of `lynkr serve`: `daphne` or `uvicorn` (uvloop and "
       "httptools with `pip install 'lynkr[uvicorn]'`); bench/results/ compares them", setting="LYNKR_SERVER"),
    _V("LYNKR_ACCESS_LOG", "server", "", "the ASGI server's access log, one line per request: empty (off), `-` "
       "(standard output) or a file path. The gateway logs its own line per model request either way",
       setting="LYNKR_ACCESS_LOG"),
    _V("LYNKR_BASE_PATH", "server", "", "serve the API under a prefix: `gw/anthropic` gives "
       "`/gw/anthropic/v1/messages` (Claude Code keeps a base-URL path)", setting="LYNKR_BASE_PATH"),
    _V("LYNKR_ALLOWED_HOSTS", "server", ("*",), "comma list for Django's Host header check", setting="ALLOWED_HOSTS"),
    _V("LYNKR_CSRF_TRUSTED_ORIGINS", "server", (), "comma list of origins allowed to post admin forms behind a proxy "
       "(`https://gw.example.com`)", setting="CSRF_TRUSTED_ORIGINS"),
    _V("LYNKR_SERVE_STATIC", "server", True, "serve the admin's CSS/JS from the app itself; set `false` behind a CDN "
       "or nginx", setting="LYNKR_SERVE_STATIC"),
    _V("LYNKR_DEBUG", "server", False, "Django debug mode (never in production)", setting="DEBUG"),
    _V("LYNKR_LOG_LEVEL", "server", "INFO", "root log level", setting="LOG_LEVEL"),
    _V("LYNKR_LOG_FORMAT", "server", "auto", "`json`, `text`, or `auto` (text on a terminal, JSON otherwise)",
       setting="LYNKR_LOG_FORMAT"),
    _V("LYNKR_METRICS_TOKEN", "server", None, "bearer token for the metrics endpoints from outside loopback "
       "(docs/operations.md)", setting="LYNKR_METRICS_TOKEN", secret=True),
    _V("LOAD_SHEDDING_ACTIVE_REQUESTS_THRESHOLD", "server", 1000, "in-flight requests per process above which new "
       "ones get 503", setting="LYNKR_SHED_ACTIVE_REQUESTS", lynkr=True),
    _V("LOAD_SHEDDING_MEMORY_THRESHOLD", "server", 0.85, "fraction of memory above which new requests get 503",
       setting="LYNKR_SHED_MEMORY_FRACTION", lynkr=True),
    _V("LOAD_SHEDDING_HEAP_THRESHOLD", "server", None, "Lynkr's Node.js heap limit: no equivalent in Python, "
       "accepted and ignored", lynkr=True, lynkr_default="`0.90`", shown="—", ignored=True),
    _V("LYNKR_USAGE_STUCK_AFTER", "server", 30.0, "seconds without a successful usage flush before readiness fails",
       setting="LYNKR_USAGE_STUCK_AFTER"),
    _V("LYNKR_TIME_ZONE", "server", "UTC", "time zone for the admin", setting="TIME_ZONE"),
    _V("LYNKR_ENV_FILE", "server", None, "the dotenv file read at start (`lynkr setup` writes it)",
       shown="`.env` beside `manage.py`"),
    # --- storage ---
    _V("LYNKR_DATA_DIR", "storage", None, "embedded data: SQLite database, generated secret key, filesystem Celery "
       "queue (a relative path is taken from the working directory)", setting="DATA_DIR",
       shown="`data/` beside `manage.py`"),
    _V("DATABASE_URL", "storage", None, "`postgres://user:pass@host:5432/db` or `sqlite:////abs/path.sqlite3`",
       setting="DATABASES", secret=True, shown="SQLite in the data dir (WAL mode)"),
    _V("LYNKR_DB_METRICS", "storage", True, "count queries, errors and connections (`django_db_*` metrics) with "
       "django-prometheus's database wrappers", setting="DATABASES"),
    _V("LYNKR_DB_CONN_MAX_AGE", "storage", 60, "seconds a database connection (PostgreSQL or SQLite) is kept by "
       "each thread of the database pool; 0 opens one per call", setting="DATABASES"),
    _V("LYNKR_SQLITE_CACHE_KB", "storage", 256, "SQLite only: page cache per database connection, in KiB (SQLite's "
       "own default is 2000); pages it misses are read from the OS's file cache", setting="DATABASES"),
    _V("LYNKR_DB_THREADS", "storage", 8, "threads for the gateway's database work: at most this many connections "
       "per process", setting="LYNKR_DB_THREADS"),
    _V("GRACEFUL_SHUTDOWN_TIMEOUT", "storage", 30000, "ms in-flight requests get to finish on SIGTERM; then they are "
       "cancelled and still billed", setting="LYNKR_GRACEFUL_SHUTDOWN_TIMEOUT", lynkr=True),
    _V("REDIS_URL", "storage", None, "`redis://host:6379/0`: switches the cache, the channel layer, the Celery broker "
       "and result backend, and all shared counters to Redis", setting="REDIS_URL", secret=True),
    _V("SECRET_KEY", "storage", None, "Django's signing key, at least 32 characters; set it in production",
       setting="SECRET_KEY", secret=True, aliases=("LYNKR_SECRET_KEY",), shown="generated once into the data dir"),
    _V("LYNKR_EMBEDDED_WORKER", "storage", None, "`lynkr serve` starts a Celery worker beside the server",
       setting="LYNKR_EMBEDDED_WORKER", shown="`true` without `REDIS_URL`, else `false`"),
    _V("LYNKR_CELERY_EAGER", "storage", False, "run tasks inline (tests only; never in a request in production)",
       setting="CELERY_TASK_ALWAYS_EAGER"),
    _V("LYNKR_ADMIN_USERNAME", "storage", "admin", "the admin user created on the first start",
       setting="LYNKR_ADMIN_USERNAME"),
    # --- gateway ---
    _V("LYNKR_MAX_BODY_BYTES", "gateway", 32 * 1024 * 1024, "larger bodies get 413 `request_too_large` before they "
       "are read", setting="LYNKR_MAX_BODY_BYTES", shown="`33554432` (32 MiB)"),
    _V("LYNKR_UPSTREAM_CONNECT_TIMEOUT", "gateway", 10.0, "seconds to connect to a provider (a provider row may "
       "override)", setting="LYNKR_UPSTREAM_CONNECT_TIMEOUT"),
    _V("LYNKR_UPSTREAM_READ_TIMEOUT", "gateway", 600.0, "seconds to wait for upstream bytes; Claude Code waits 600 s "
       "too", setting="LYNKR_UPSTREAM_READ_TIMEOUT"),
    _V("LYNKR_UPSTREAM_MAX_CONNECTIONS", "gateway", 1000, "connection pool size of the shared upstream client, per "
       "process: one per open stream; when it is full new requests get 529 `overloaded_error`",
       setting="LYNKR_UPSTREAM_MAX_CONNECTIONS"),
    _V("LYNKR_KEY_CACHE_TTL", "gateway", 5.0, "seconds a key lookup is cached per process: the longest a revoked key "
       "keeps working anywhere", setting="LYNKR_KEY_CACHE_TTL"),
    _V("LYNKR_ROUTING_POLL", "gateway", 1.0, "seconds between checks of the routing version (a change made in admin "
       "reaches every process within ~2 s; immediately in the process that saved it)", setting="LYNKR_ROUTING_POLL"),
    _V("LYNKR_STREAM_PING_INTERVAL", "gateway", 10.0, "seconds of upstream silence after which a streaming client "
       "gets an Anthropic `ping`", setting="LYNKR_STREAM_PING_INTERVAL"),
    _V("LYNKR_FIRST_TOKEN_TIMEOUT", "gateway", 60.0, "a stream is held until the upstream's first content event (so "
       "a failing upstream can still be replaced) for at most this many seconds; for a non-streaming request to an "
       "OpenAI-compatible provider (answered in one piece), the whole answer", setting="LYNKR_FIRST_TOKEN_TIMEOUT"),
    _V("LYNKR_ENCRYPTION_KEY", "gateway", None, "key material for provider credentials stored in the database "
       "(encrypted with Fernet)", setting="LYNKR_ENCRYPTION_KEY", secret=True, shown="`SECRET_KEY`"),
    _V("LYNKR_ENCRYPTION_KEY_OLD", "gateway", None, "the previous key during a rotation: still decrypts, values are "
       "re-encrypted when saved", setting="LYNKR_ENCRYPTION_KEY_OLD", secret=True),
    # --- routing and resilience ---
    _V("PREFER_OLLAMA", "routing", False, "seed Lynkr's hybrid routing: tiers `hybrid-local` (Ollama), `hybrid-mid` "
       "(first of OpenRouter, OpenAI, Azure OpenAI), `hybrid-heavy` (`FALLBACK_PROVIDER`) with rules on the tool "
       "count (see [routing.md](routing.md))", setting="LYNKR_PREFER_OLLAMA", lynkr=True),
    _V("OLLAMA_MAX_TOOLS_FOR_ROUTING", "routing", 3, "requests with fewer tools than this go to the local tier",
       setting="LYNKR_OLLAMA_MAX_TOOLS", lynkr=True),
    _V("OPENROUTER_MAX_TOOLS_FOR_ROUTING", "routing", 15, "up to this many tools go to the mid tier; more go to the "
       "heavy tier", setting="LYNKR_OPENROUTER_MAX_TOOLS", lynkr=True),
    _V("FALLBACK_ENABLED", "routing", True, "try `FALLBACK_PROVIDER` after every route's own targets",
       setting="LYNKR_FALLBACK_ENABLED", lynkr=True),
    _V("FALLBACK_PROVIDER", "routing", "databricks", "provider name used as the last resort (and the heavy tier)",
       setting="LYNKR_FALLBACK_PROVIDER", lynkr=True),
    _V("API_RETRY_MAX_RETRIES", "routing", 3, "retries of a retryable failure on the last target of a route",
       setting="LYNKR_RETRY_MAX_RETRIES", lynkr=True),
    _V("API_RETRY_INITIAL_DELAY", "routing", 1000, "ms; backoff ceiling doubles each retry, the wait is uniform in "
       "[0, ceiling] (full jitter)", setting="LYNKR_RETRY_INITIAL_DELAY", lynkr=True),
    _V("API_RETRY_MAX_DELAY", "routing", 30000, "ms; a `retry-after` longer than this is not waited for (the client "
       "gets the 429)", setting="LYNKR_RETRY_MAX_DELAY", lynkr=True),
    _V("CIRCUIT_BREAKER_FAILURE_THRESHOLD", "routing", 5, "consecutive failures that open a provider's breaker",
       setting="LYNKR_BREAKER_FAILURES", lynkr=True),
    _V("CIRCUIT_BREAKER_SUCCESS_THRESHOLD", "routing", 2, "successes in half-open state that close it",
       setting="LYNKR_BREAKER_SUCCESSES", lynkr=True),
    _V("CIRCUIT_BREAKER_TIMEOUT", "routing", 60000, "ms a breaker stays open before letting requests through again",
       setting="LYNKR_BREAKER_OPEN_SECONDS", lynkr=True),
    # --- providers (defaults are those of providers/envseed.py) ---
    _V("MODEL_PROVIDER", "providers", None, "the primary provider (priority 10): `databricks`, `azure-anthropic`, "
       "`azure-openai`, `openrouter`, `ollama`, `openai` are served; `bedrock`, `vertex`, `llamacpp`, `lmstudio` are "
       "recognised (a warning says they are not seeded); anything else is an error", setting=_PROVIDERS, lynkr=True,
       lynkr_default="`databricks`"),
    _V("MODEL_DEFAULT", "providers", None, "upstream model sent to the primary provider instead of the client's",
       setting=_PROVIDERS, lynkr=True),
    _V("AZURE_ANTHROPIC_ENDPOINT", "providers", None, "base URL or full Messages URL "
       "(`https://<r>.services.ai.azure.com/anthropic/v1/messages`)", setting=_PROVIDERS, lynkr=True),
    _V("AZURE_ANTHROPIC_API_KEY", "providers", None, "sent as `x-api-key`; read from the environment when requests "
       "are routed, never stored in the database", setting=_PROVIDERS, lynkr=True, secret=True),
    _V("AZURE_ANTHROPIC_VERSION", "providers", "2023-06-01", "default `anthropic-version` when the client sends none",
       setting=_PROVIDERS, lynkr=True),
    _V("DATABRICKS_API_BASE", "providers", None, "workspace URL (`https://<workspace>.cloud.databricks.com`); the "
       "request URL is this + `DATABRICKS_ENDPOINT_PATH`", setting=_PROVIDERS, lynkr=True),
    _V("DATABRICKS_API_KEY", "providers", None, "personal access token, sent as `Authorization: Bearer`",
       setting=_PROVIDERS, lynkr=True, secret=True),
    _V("DATABRICKS_ENDPOINT_PATH", "providers", "/serving-endpoints/databricks-claude-sonnet-4-5/invocations",
       "serving endpoint path; its endpoint name is the upstream model", setting=_PROVIDERS, lynkr=True),
    _V("AZURE_OPENAI_ENDPOINT", "providers", None, "resource base (`https://<r>.openai.azure.com`) or a full URL: "
       "`.../chat/completions` (chat), `.../models` (Foundry), `.../responses` (Responses API)", setting=_PROVIDERS,
       lynkr=True),
    _V("AZURE_OPENAI_API_KEY", "providers", None, "sent as `api-key` (as `Authorization: Bearer` for "
       "`*.services.ai.azure.com`)", setting=_PROVIDERS, lynkr=True, secret=True),
    _V("AZURE_OPENAI_DEPLOYMENT", "providers", None, "deployment name (needed with a resource base URL); also the "
       "upstream model", setting=_PROVIDERS, lynkr=True),
    _V("AZURE_OPENAI_API_VERSION", "providers", None, "`api-version` query parameter", setting=_PROVIDERS,
       lynkr=True, shown="`2024-10-21` (Foundry `/models`: `2024-05-01-preview`)"),
    _V("OPENROUTER_API_KEY", "providers", None, "OpenRouter key, sent as `Authorization: Bearer`", setting=_PROVIDERS,
       lynkr=True, secret=True),
    _V("OPENROUTER_MODEL", "providers", "openai/gpt-4o-mini", "upstream model at OpenRouter", setting=_PROVIDERS,
       lynkr=True),
    _V("OPENROUTER_ENDPOINT", "providers", "https://openrouter.ai/api/v1/chat/completions", "chat completions URL",
       setting=_PROVIDERS, lynkr=True),
    _V("OLLAMA_ENDPOINT", "providers", "http://localhost:11434", "Ollama base URL (`/api/chat` is appended)",
       setting=_PROVIDERS, lynkr=True),
    _V("OLLAMA_MODEL", "providers", "qwen2.5-coder:7b", "model Ollama runs", setting=_PROVIDERS, lynkr=True),
    _V("OLLAMA_TIMEOUT_MS", "providers", 120000, "read timeout of Ollama requests, ms", setting=_PROVIDERS,
       lynkr=True),
    _V("OPENAI_API_KEY", "providers", None, "OpenAI key, sent as `Authorization: Bearer`", setting=_PROVIDERS,
       lynkr=True, secret=True),
    _V("OPENAI_MODEL", "providers", "gpt-4o", "upstream model at OpenAI", setting=_PROVIDERS, lynkr=True),
    _V("OPENAI_ENDPOINT", "providers", "https://api.openai.com/v1/chat/completions", "chat completions URL (any "
       "OpenAI-compatible server: vLLM, LM Studio, llama.cpp)", setting=_PROVIDERS, lynkr=True),
    # --- accounting ---
    _V("LYNKR_USAGE_FLUSH_INTERVAL", "accounting", 1.0, "seconds between batched writes of usage records",
       setting="LYNKR_USAGE_FLUSH_INTERVAL"),
    _V("LYNKR_USAGE_FLUSH_BATCH", "accounting", 200, "a batch is written at once when this many records are waiting",
       setting="LYNKR_USAGE_FLUSH_BATCH"),
    _V("LYNKR_USAGE_RETENTION_DAYS", "accounting", 90, "usage records older than this are deleted daily (the daily "
       "rollup stays)", setting="LYNKR_USAGE_RETENTION_DAYS"),
    _V("LYNKR_BUDGET_OUTPUT_RESERVATION", "accounting", 4096, "output tokens reserved per request at admission (at "
       "most the request's max_tokens)", setting="LYNKR_BUDGET_OUTPUT_RESERVATION"),
    _V("LYNKR_TRANSCRIPTS", "accounting", True, "store each session's turns (new messages and the answer)",
       setting="LYNKR_TRANSCRIPTS"),
    _V("PROMPT_CACHE_ENABLED", "accounting", True, "the gateway's exact-match response cache",
       setting="LYNKR_PROMPT_CACHE_ENABLED", lynkr=True),
    _V("PROMPT_CACHE_TTL_MS", "accounting", 300000, "how long a cached answer is served, ms",
       setting="LYNKR_PROMPT_CACHE_TTL", lynkr=True),
    _V("PROMPT_CACHE_MAX_ENTRIES", "accounting", 64, "in-process cache size (Redis evicts by TTL and its own policy)",
       setting="LYNKR_PROMPT_CACHE_MAX_ENTRIES", lynkr=True),
    # --- workspaces and tools ---
    _V("WORKSPACE_ROOT", "workspaces", None, "at start, a workspace named `default` with this root, open to every "
       "user, is created once (later admin edits are kept). Unset, no workspace exists until an admin adds one.",
       setting="LYNKR_WORKSPACE_ROOT", lynkr=True, lynkr_default="the working directory"),
    _V("LYNKR_WORKSPACES_DIR", "workspaces", None, "where workspaces with a git remote (or without a root) are "
       "cloned; an absolute path", setting="LYNKR_WORKSPACES_DIR", shown="`DATA_DIR/workspaces`"),
    _V("TOOL_EXECUTION_MODE", "workspaces", "client", "`client` (the client runs its own tools), `server` (the "
       "gateway runs its tools in a loop), `passthrough` (= client); a workspace `Policy` overrides it",
       setting="LYNKR_TOOL_EXECUTION_MODE", lynkr=True, lynkr_default="`server`"),
    _V("POLICY_MAX_STEPS", "workspaces", 8, "model calls per request in server mode", setting="LYNKR_POLICY_MAX_STEPS",
       lynkr=True),
    _V("POLICY_MAX_TOOL_CALLS", "workspaces", 32, "gateway tool calls per request in server mode",
       setting="LYNKR_POLICY_MAX_TOOL_CALLS"),
    _V("POLICY_GIT_ALLOW_PUSH", "workspaces", False, "allow `workspace_git_push` in workspaces without a policy",
       setting="LYNKR_POLICY_GIT_ALLOW_PUSH", lynkr=True),
    _V("POLICY_GIT_REQUIRE_TESTS", "workspaces", False, "refuse `workspace_git_commit` unless the latest test run of "
       "the current tree passed", setting="LYNKR_POLICY_GIT_REQUIRE_TESTS", lynkr=True),
    _V("POLICY_GIT_COMMIT_PATTERN", "workspaces", "", "a regular expression every commit message must match",
       setting="LYNKR_POLICY_GIT_COMMIT_PATTERN"),
    _V("POLICY_GIT_TEST_COMMAND", "workspaces", "", "the test command of workspaces that set none and when "
       "`WORKSPACE_TEST_COMMAND` is unset", setting="LYNKR_POLICY_GIT_TEST_COMMAND", lynkr=True),
    _V("WORKSPACE_TEST_COMMAND", "workspaces", "", "test command of workspaces that set none; split like a shell "
       "line, never run by a shell", setting="LYNKR_WORKSPACE_TEST_COMMAND", lynkr=True),
    _V("WORKSPACE_TEST_TIMEOUT_MS", "workspaces", 600000, "test run time limit for workspaces that set none, ms",
       setting="LYNKR_WORKSPACE_TEST_TIMEOUT", lynkr=True),
    _V("WORKSPACE_TEST_COVERAGE_FILES", "workspaces", ("coverage/coverage-summary.json", "coverage.xml"), "coverage "
       "reports looked for after a run, first found wins", setting="LYNKR_WORKSPACE_TEST_COVERAGE_FILES", lynkr=True,
       lynkr_default="`coverage/coverage-summary.json`"),
    _V("LYNKR_INDEX_MAX_FILE_BYTES", "workspaces", 1024 * 1024, "larger files are not parsed by the indexer nor "
       "returned whole by `fs_read`", setting="LYNKR_INDEX_MAX_FILE_BYTES"),
    _V("LYNKR_TOOL_OUTPUT_MAX_BYTES", "workspaces", 256 * 1024, "a tool's text output (file, diff, search) is "
       "truncated beyond this, with `truncated: true`", setting="LYNKR_TOOL_OUTPUT_MAX_BYTES"),
    _V("LYNKR_TOOL_THREADS", "workspaces", 4, "threads per process running tool calls (separate from the database "
       "threads)", setting="LYNKR_TOOL_THREADS"),
    _V("WEB_SEARCH_ENDPOINT", "workspaces", "http://localhost:8888/search", "SearXNG-compatible JSON search endpoint "
       "for `web_search`", setting="LYNKR_WEB_SEARCH_ENDPOINT", lynkr=True),
    _V("WEB_SEARCH_ALLOWED_HOSTS", "workspaces", (), "comma list of hosts (`docs.python.org`, `*.mozilla.org`) "
       "`web_fetch` may read", setting="LYNKR_WEB_ALLOWED_HOSTS", lynkr=True, shown="empty (any public host)"),
    _V("LYNKR_WEB_FETCH_ALLOW_NETWORKS", "workspaces", (), "CIDRs `web_fetch` may reach although private (an "
       "intranet docs server); loopback, link-local and metadata addresses are refused otherwise",
       setting="LYNKR_WEB_FETCH_ALLOW_NETWORKS"),
    _V("LYNKR_WEB_FETCH_MAX_BYTES", "workspaces", 2 * 1024 * 1024, "largest body `web_fetch` reads",
       setting="LYNKR_WEB_FETCH_MAX_BYTES"),
    _V("LYNKR_WEB_FETCH_TIMEOUT", "workspaces", 15.0, "seconds for a whole `web_fetch`",
       setting="LYNKR_WEB_FETCH_TIMEOUT"),
    # --- MCP ---
    _V("MCP_SERVER_MANIFEST", "mcp", None, "a manifest file (`{\"servers\": [...]}`, a bare array, or "
       "`{\"mcpServers\": {...}}`) imported at start", setting="LYNKR_MCP_SERVER_MANIFEST", lynkr=True),
    _V("MCP_MANIFEST_DIRS", "mcp", ("~/.claude/mcp",), "comma list of directories whose `*.json` manifests are "
       "imported at start", setting="LYNKR_MCP_MANIFEST_DIRS", lynkr=True),
    _V("MCP_SANDBOX_ENABLED", "mcp", True, "stdio servers with sandbox `auto` run in bubblewrap when it is installed",
       setting="LYNKR_MCP_SANDBOX_ENABLED", lynkr=True),
    _V("MCP_SANDBOX_IMAGE", "mcp", None, "default image for servers with the Docker sandbox",
       setting="LYNKR_MCP_SANDBOX_IMAGE", lynkr=True),
)  # fmt: skip

BY_NAME: dict[str, Variable] = {name: var for var in VARIABLES for name in var.names}


def variable_get(*, name: str) -> Variable | None:
    """The catalog entry reading ``name`` (an alias finds its entry), or None."""
    return BY_NAME.get(name)


def default_text(var: Variable) -> str:
    """The default as the reference shows it."""
    if var.shown:
        return var.shown
    value = var.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    if isinstance(value, tuple):
        return f"`{','.join(str(item) for item in value)}`" if value else "empty"
    if value == "":
        return "empty"
    return f"`{value}`"
