"""The configuration reference cannot drift: every variable the code reads is in the catalog (and nothing else), with
the code's default, the setting holding it and its secret form; docs/configuration.md is the generator's output.

The code is read with ``ast`` (not imported): the calls ``E.get_*("NAME", default)`` in settings/base.py, the
``get_*("NAME")`` and ``os.environ.get("NAME")`` calls in env.py (attributed to the setting whose value calls that
helper), Lynkr's provider variables (providers/envseed.py), and their ``v.get("NAME") or "default"`` defaults.
"""

from __future__ import annotations

import argparse
import ast
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from lynkr_site.docs_config import DOC_PATH, render_configuration
from lynkr_site.settings_catalog import VARIABLES, default_text
from lynkr_site.setup_envfile import envfile_parse
from lynkr_site.setup_providers import KINDS
from lynkr_site.setup_wizard import add_setup_arguments
from providers.envseed import PROVIDER_ENV_NAMES, SECRET_ENV_NAMES, provider_env_specs

ROOT = Path(__file__).resolve().parents[2]
GETTERS = {"get_str", "get_secret", "get_bool", "get_int", "get_float", "get_list", "get_choice"}
_COMPUTED = object()  # a default the code computes (not a literal)
_NONE = object()  # no default argument: the getter's own ("" for strings)


@dataclass(frozen=True)
class Read:
    name: str
    getter: str
    default: object
    setting: str  # "" when no setting holds it


def _literal(node: ast.expr | None) -> object:
    """A constant, a list of constants, or arithmetic on constants (``32 * 1024 * 1024``); else _COMPUTED."""
    if node is None:
        return _NONE
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.List | ast.Tuple):
        items = [_literal(item) for item in node.elts]
        return _COMPUTED if _COMPUTED in items else tuple(items)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _literal(node.operand)
        return -value if isinstance(value, int | float) else _COMPUTED
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult | ast.Add):
        left, right = _literal(node.left), _literal(node.right)
        if isinstance(left, int | float) and isinstance(right, int | float):
            return left * right if isinstance(node.op, ast.Mult) else left + right
    return _COMPUTED


def _call_read(call: ast.Call, *, qualified: bool, setting: str) -> Read | None:
    func = call.func
    if qualified:  # E.get_int(...)
        if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "E"):
            return None
        getter = func.attr
    elif isinstance(func, ast.Name):  # get_int(...) inside env.py
        getter = func.id
    elif (  # os.environ.get("NAME", default)
        isinstance(func, ast.Attribute)
        and func.attr == "get"
        and isinstance(func.value, ast.Attribute)
        and func.value.attr == "environ"
    ):
        getter = "os.environ.get"
    else:
        return None
    if getter not in GETTERS | {"os.environ.get"} or not call.args:
        return None
    first = call.args[0]
    if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
        return None
    default = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "default"), None)
    return Read(first.value, getter, _literal(default), setting)


def scan_env(source: str) -> tuple[dict[str, list[Read]], list[Read]]:
    """env.py: the reads of each function, and the module-level reads."""
    tree = ast.parse(source)
    functions: dict[str, list[Read]] = {}
    module: list[Read] = []
    for node in tree.body:
        target = functions.setdefault(node.name, []) if isinstance(node, ast.FunctionDef) else module
        for call in ast.walk(node):
            if isinstance(call, ast.Call) and (read := _call_read(call, qualified=False, setting="")):
                target.append(read)
    return functions, module


def scan_settings(source: str, env_functions: dict[str, list[Read]]) -> list[Read]:
    """settings/base.py: every read, attributed to the setting assigned from it."""
    reads: list[Read] = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        setting = node.targets[0].id
        for call in ast.walk(node.value):
            if not isinstance(call, ast.Call):
                continue
            if read := _call_read(call, qualified=True, setting=setting):
                reads.append(read)
            elif isinstance(call.func, ast.Attribute) and getattr(call.func.value, "id", "") == "E":
                helper = env_functions.get(call.func.attr, [])
                reads += [Read(r.name, r.getter, r.default, setting) for r in helper]
                if setting == "LYNKR_PROVIDER_ENV" and call.func.attr in ("get_secret", "get_str"):
                    # {name: E.get_secret(name) if name in SECRET_ENV_NAMES else E.get_str(name) ...}
                    getter = call.func.attr
                    names = [n for n in PROVIDER_ENV_NAMES if (n in SECRET_ENV_NAMES) == (getter == "get_secret")]
                    reads += [Read(n, getter, _NONE, setting) for n in names]
    return reads


def code_reads() -> list[Read]:
    functions, module = scan_env((ROOT / "lynkr_site" / "env.py").read_text())
    return module + scan_settings((ROOT / "lynkr_site" / "settings" / "base.py").read_text(), functions)


def envseed_defaults(source: str) -> dict[str, object]:
    """``v.get("NAME") or "default"`` in providers/envseed.py."""
    defaults: dict[str, object] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or) and len(node.values) == 2:
            call, fallback = node.values
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr == "get"
                and call.args
                and isinstance(call.args[0], ast.Constant)
                and isinstance(fallback, ast.Constant)
            ):
                defaults[call.args[0].value] = fallback.value
    return defaults


def catalog_problems(reads: list[Read]) -> list[str]:
    """What differs between the code's reads and the catalog (empty when they agree)."""
    problems: list[str] = []
    by_name = {name: var for var in VARIABLES for name in var.names}
    read_names = {read.name for read in reads}
    for name in sorted(read_names - by_name.keys()):
        problems.append(f"{name}: read by the code, missing from lynkr_site/settings_catalog.py")
    for name in sorted(by_name.keys() - read_names):
        if not by_name[name].ignored:
            problems.append(f"{name}: in the catalog, read nowhere (mark it ignored=True if accepted on purpose)")
    for read in reads:
        var = by_name.get(read.name)
        if var is None:
            continue
        if var.setting != read.setting:
            problems.append(f"{read.name}: held by setting {read.setting or '(none)'}, catalog says {var.setting!r}")
        if (read.getter == "get_secret") != var.secret:
            problems.append(f"{read.name}: read with {read.getter}, catalog secret={var.secret}")
        if read.setting == "LYNKR_PROVIDER_ENV":
            continue  # their defaults live in providers/envseed.py: test_provider_defaults_are_envseeds
        if read.default is _COMPUTED:
            if not var.shown:
                problems.append(f"{read.name}: computed default, the catalog must say what it is (shown=...)")
        elif read.default is _NONE or read.default == "":
            if var.default not in (None, ""):
                problems.append(f"{read.name}: no default in the code, catalog says {var.default!r}")
        elif read.default != var.default:
            problems.append(f"{read.name}: default {read.default!r} in the code, {var.default!r} in the catalog")
    return problems


def test_scanner_sees_the_reads_it_must_see() -> None:
    reads = {read.name: read for read in code_reads()}
    assert reads["PORT"] == Read("PORT", "get_int", 8080, "LYNKR_PORT")
    assert reads["LYNKR_MAX_BODY_BYTES"].default == 32 * 1024 * 1024
    assert reads["DATABASE_URL"] == Read("DATABASE_URL", "get_secret", _NONE, "DATABASES")
    assert reads["LYNKR_SECRET_KEY"].setting == "SECRET_KEY"
    assert reads["LYNKR_ENV_FILE"].getter == "os.environ.get" and reads["LYNKR_ENV_FILE"].setting == ""
    assert reads["OPENAI_API_KEY"] == Read("OPENAI_API_KEY", "get_secret", _NONE, "LYNKR_PROVIDER_ENV")
    assert reads["LYNKR_EMBEDDED_WORKER"].default is _COMPUTED
    assert len(reads) > 90


def test_every_variable_read_by_the_code_is_in_the_catalog_with_its_default_setting_and_secret_form() -> None:
    assert catalog_problems(code_reads()) == []


def test_the_comparison_fails_on_drift() -> None:
    functions, module = scan_env((ROOT / "lynkr_site" / "env.py").read_text())
    base = (ROOT / "lynkr_site" / "settings" / "base.py").read_text()
    drifted = base.replace('E.get_int("PORT", 8080', 'E.get_int("PORT", 8081') + '\nX = E.get_bool("LYNKR_NEW", True)\n'
    problems = catalog_problems(module + scan_settings(drifted, functions))
    assert "LYNKR_NEW: read by the code, missing from lynkr_site/settings_catalog.py" in problems
    assert "PORT: default 8081 in the code, 8080 in the catalog" in problems
    removed = [read for read in code_reads() if read.name != "REDIS_URL"]
    assert "REDIS_URL: in the catalog, read nowhere (mark it ignored=True if accepted on purpose)" in catalog_problems(
        removed
    )


def test_provider_defaults_are_envseeds() -> None:
    defaults = envseed_defaults((ROOT / "providers" / "envseed.py").read_text())
    assert defaults["OLLAMA_MODEL"] == "qwen2.5-coder:7b"  # the scanner works
    by_name = {var.name: var for var in VARIABLES}
    for name, default in defaults.items():
        assert str(by_name[name].default) == str(default), name
    for var in VARIABLES:
        if var.setting == "LYNKR_PROVIDER_ENV" and var.default is not None:
            assert var.name in defaults, f"{var.name}: the catalog has a default envseed does not apply"
    assert {var.name for var in VARIABLES if var.setting == "LYNKR_PROVIDER_ENV"} == set(PROVIDER_ENV_NAMES)


def test_docs_configuration_md_is_the_generated_reference() -> None:
    assert DOC_PATH.read_text(encoding="utf-8") == render_configuration(), "run: lynkr docs config --write"


def test_reference_has_one_row_per_variable_with_its_default() -> None:
    text = render_configuration()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == len(VARIABLES)
    for var in VARIABLES:
        row = next(line for line in rows if line.startswith(f"| `{var.name}`"))
        assert default_text(var) in row and var.meaning in row
    port = next(line for line in rows if line.startswith("| `PORT`"))
    assert port == "| `PORT` | yes | `LYNKR_PORT` | `8080` | listen port |"
    secret = next(line for line in rows if line.startswith("| `SECRET_KEY`"))
    assert secret.startswith("| `SECRET_KEY` (`_FILE`), or `LYNKR_SECRET_KEY` (`_FILE`) | — | `SECRET_KEY` |")


def test_every_variable_of_the_previous_hand_written_reference_survives() -> None:
    previous = """
    HOST PORT LYNKR_PUBLIC_URL LYNKR_BASE_PATH LYNKR_ALLOWED_HOSTS LYNKR_CSRF_TRUSTED_ORIGINS LYNKR_SERVE_STATIC
    LYNKR_DEBUG LYNKR_LOG_LEVEL LYNKR_LOG_FORMAT LYNKR_METRICS_TOKEN LOAD_SHEDDING_ACTIVE_REQUESTS_THRESHOLD
    LOAD_SHEDDING_MEMORY_THRESHOLD LOAD_SHEDDING_HEAP_THRESHOLD LYNKR_USAGE_STUCK_AFTER LYNKR_TIME_ZONE
    LYNKR_ENV_FILE LYNKR_DATA_DIR DATABASE_URL LYNKR_DB_CONN_MAX_AGE LYNKR_DB_THREADS GRACEFUL_SHUTDOWN_TIMEOUT
    REDIS_URL SECRET_KEY LYNKR_SECRET_KEY LYNKR_EMBEDDED_WORKER LYNKR_CELERY_EAGER LYNKR_ADMIN_USERNAME
    LYNKR_MAX_BODY_BYTES LYNKR_UPSTREAM_CONNECT_TIMEOUT LYNKR_UPSTREAM_READ_TIMEOUT
    LYNKR_UPSTREAM_MAX_CONNECTIONS LYNKR_KEY_CACHE_TTL LYNKR_ROUTING_POLL LYNKR_STREAM_PING_INTERVAL
    LYNKR_FIRST_TOKEN_TIMEOUT LYNKR_ENCRYPTION_KEY LYNKR_ENCRYPTION_KEY_OLD PREFER_OLLAMA
    OLLAMA_MAX_TOOLS_FOR_ROUTING OPENROUTER_MAX_TOOLS_FOR_ROUTING FALLBACK_ENABLED FALLBACK_PROVIDER
    API_RETRY_MAX_RETRIES API_RETRY_INITIAL_DELAY API_RETRY_MAX_DELAY CIRCUIT_BREAKER_FAILURE_THRESHOLD
    CIRCUIT_BREAKER_SUCCESS_THRESHOLD CIRCUIT_BREAKER_TIMEOUT MODEL_PROVIDER MODEL_DEFAULT
    AZURE_ANTHROPIC_ENDPOINT AZURE_ANTHROPIC_API_KEY AZURE_ANTHROPIC_VERSION LYNKR_USAGE_FLUSH_INTERVAL
    LYNKR_USAGE_FLUSH_BATCH LYNKR_USAGE_RETENTION_DAYS LYNKR_BUDGET_OUTPUT_RESERVATION LYNKR_TRANSCRIPTS
    PROMPT_CACHE_ENABLED PROMPT_CACHE_TTL_MS PROMPT_CACHE_MAX_ENTRIES WORKSPACE_ROOT LYNKR_WORKSPACES_DIR
    TOOL_EXECUTION_MODE POLICY_MAX_STEPS POLICY_MAX_TOOL_CALLS POLICY_GIT_ALLOW_PUSH POLICY_GIT_REQUIRE_TESTS
    POLICY_GIT_COMMIT_PATTERN POLICY_GIT_TEST_COMMAND WORKSPACE_TEST_COMMAND WORKSPACE_TEST_TIMEOUT_MS
    WORKSPACE_TEST_COVERAGE_FILES LYNKR_INDEX_MAX_FILE_BYTES LYNKR_TOOL_OUTPUT_MAX_BYTES LYNKR_TOOL_THREADS
    WEB_SEARCH_ENDPOINT WEB_SEARCH_ALLOWED_HOSTS LYNKR_WEB_FETCH_ALLOW_NETWORKS LYNKR_WEB_FETCH_MAX_BYTES
    LYNKR_WEB_FETCH_TIMEOUT MCP_SERVER_MANIFEST MCP_MANIFEST_DIRS MCP_SANDBOX_ENABLED MCP_SANDBOX_IMAGE
    """.split()  # noqa: SIM905 (the names of the hand-written page)
    text = render_configuration()
    assert [name for name in previous if f"`{name}`" not in text] == []


def test_generator_command_checks_and_writes(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lynkr_site.docs_config", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert run("--check").returncode == 0
    out = tmp_path / "configuration.md"
    assert run("--output", str(out)).returncode == 0
    assert out.read_text() == render_configuration()
    assert run().stdout == render_configuration()


def test_every_provider_example_in_providers_md_seeds_its_provider() -> None:
    text = (ROOT / "docs" / "providers.md").read_text()
    blocks = re.findall(r"```dotenv\n(.*?)```", text, re.S)
    seeded: set[str] = set()
    for block in blocks:
        expected = re.match(r"# -> provider (\S+), kind (\S+)\n", block)
        assert expected, block
        for line in block.splitlines():
            assert line.startswith("#") or re.fullmatch(r"[A-Z_]+=\S+", line), f"not a plain NAME=value: {line!r}"
        specs = {spec["name"]: spec for spec in provider_env_specs(envfile_parse(block))}
        primary = specs[expected[1]]
        assert (primary["kind"], primary["priority"]) == (expected[2], 10), block
        seeded.add(expected[1])
    assert seeded == set(KINDS)  # one working example for every provider `lynkr setup` offers

    parser = argparse.ArgumentParser()
    add_setup_arguments(parser)
    commands = re.findall(r"^lynkr setup (.*?)(?:   #.*)?$", text.replace("\\\n", " "), re.M)
    assert len(commands) == len(KINDS)
    for command in commands:
        args = parser.parse_args(shlex.split(command))
        assert args.non_interactive and args.provider in KINDS
