"""Start, probe and stop the benchmark's processes: the mock upstream, Lynkr (Daphne, uvicorn, granian) and LiteLLM.

Every process runs in its own session (so it is stopped with its children by process group), logs to a file in the
run's work directory, and listens on a free loopback port. CPU and memory come from /proc: utime+stime of the
process tree, VmHWM (peak RSS) of the serving process and VmRSS of the tree.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
VENV_BIN = Path(sys.executable).parent
LITELLM_VENV = Path(os.environ.get("LYNKR_BENCH_LITELLM_VENV", Path.home() / ".cache/lynkr-bench/litellm-venv"))
LITELLM_VERSION = "1.108.7"
CLK_TCK = os.sysconf("SC_CLK_TCK")
UPSTREAM_KEY = "sk-bench-upstream"
LITELLM_KEY = "sk-bench-litellm"

# What Claude Code sends with every turn (claude-code-wire.md §2), minus the key.
CLAUDE_CODE_HEADERS = {
    "accept": "application/json",
    "content-type": "application/json",
    "user-agent": "claude-cli/2.1.197 (external, sdk-cli)",
    "x-claude-code-session-id": "4b1e3f0a-2c55-4c7e-9d1b-5d0e8f7a6b21",
    "x-stainless-arch": "x64",
    "x-stainless-lang": "js",
    "x-stainless-os": "Linux",
    "x-stainless-package-version": "0.94.0",
    "x-stainless-runtime": "node",
    "x-stainless-runtime-version": "v26.3.0",
    "x-stainless-retry-count": "0",
    "x-stainless-timeout": "600",
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,"
    "prompt-caching-scope-2026-01-05,effort-2025-11-24",
    "anthropic-dangerous-direct-browser-access": "true",
    "x-app": "cli",
    "connection": "keep-alive",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stat_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (proc(5) fields 14, 15)


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (from /proc/*/stat ppid)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo += children.get(current, [])
    return out


def status_kb(pid: int, field_name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Proc:
    """A started process: what to call, where it logs, how to measure it."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    port: int
    serving_pid: int = 0  # the process that answers requests (a child for granian / LiteLLM workers)

    def cpu_seconds(self) -> float:
        return sum(_stat_cpu(pid) for pid in process_tree(self.popen.pid))

    def server_pid(self) -> int:
        """The tree member with the largest RSS: the one that holds the app (granian's worker, not its master)."""
        pids = process_tree(self.popen.pid)
        return max(pids, key=lambda pid: status_kb(pid, "VmRSS")) if pids else self.popen.pid

    def peak_rss_mb(self) -> float:
        return status_kb(self.serving_pid or self.server_pid(), "VmHWM") / 1024

    def rss_mb(self) -> float:
        return status_kb(self.serving_pid or self.server_pid(), "VmRSS") / 1024

    def tree_rss_mb(self) -> float:
        return sum(status_kb(pid, "VmRSS") for pid in process_tree(self.popen.pid)) / 1024

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
            self.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=5)
        except ProcessLookupError:
            pass


def spawn(name: str, argv: list[str], env: dict[str, str], workdir: Path, cpu: int | None, port: int) -> Proc:
    log_path = workdir / f"{name}.log"
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu), *argv]
    popen = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return Proc(name=name, popen=popen, log_path=log_path, port=port)


def http_call(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None, timeout=5.0
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_answer(proc: Proc, probe: Any, timeout: float) -> float:
    """Seconds from the process start until ``probe()`` returns True (polled every 20 ms)."""
    started = proc_started_at(proc)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited {proc.popen.returncode}:\n{proc.log()[-4000:]}")
        try:
            if probe():
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.02)
    proc.stop()
    raise RuntimeError(f"{proc.name} did not answer within {timeout}s:\n{proc.log()[-4000:]}")


_STARTED: dict[int, float] = {}


def proc_started_at(proc: Proc) -> float:
    return _STARTED.get(proc.popen.pid, time.monotonic())


def mark_started(proc: Proc, at: float) -> None:
    _STARTED[proc.popen.pid] = at


def start_mock(workdir: Path, cpu: int | None, env: dict[str, str], config: dict[str, Any]) -> Proc:
    port = free_port()
    argv = [sys.executable, str(BENCH / "mock_upstream.py"), "--port", str(port)]
    for key, value in config.items():
        argv += ["--" + key.replace("_", "-"), str(value)]
    t0 = time.monotonic()
    proc = spawn("mock", argv, env, workdir, cpu, port)
    mark_started(proc, t0)
    wait_answer(proc, lambda: http_call(port, "GET", "/__mock/stats")[0] == 200, 20)
    proc.serving_pid = proc.popen.pid if cpu is None else proc.server_pid()
    return proc


def clean_env() -> dict[str, str]:
    """The harness's environment without anything that would configure Lynkr or LiteLLM behind our back."""
    prefixes = ("LYNKR_", "MODEL_", "AZURE_", "OPENAI_", "ANTHROPIC_", "REDIS_URL", "DATABASE_URL", "DJANGO_")
    prefixes += ("LITELLM_", "OLLAMA_", "DATABRICKS_", "OPENROUTER_", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["PYTHONUNBUFFERED"] = "1"
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


@dataclass
class LynkrSetup:
    server: str  # daphne | uvicorn | granian
    data_dir: Path
    mock_port: int
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    api_key: str = ""

    def env(self) -> dict[str, str]:
        env = clean_env()
        env.update(
            {
                "LYNKR_DATA_DIR": str(self.data_dir),
                "LYNKR_ENV_FILE": "/nonexistent",
                "HOST": "127.0.0.1",
                "PORT": str(self.port),
                "LYNKR_LOG_FORMAT": "json",
                "LYNKR_EMBEDDED_WORKER": "false",
                "LYNKR_BENCH_FLOOR": "1",
                # Identical bodies are sent on purpose: a response-cache hit would skip the upstream call.
                "PROMPT_CACHE_ENABLED": "false",
                "MODEL_PROVIDER": "openai",
                "OPENAI_API_KEY": UPSTREAM_KEY,
                "OPENAI_ENDPOINT": f"http://127.0.0.1:{self.mock_port}/v1/chat/completions",
                "OPENAI_MODEL": "gpt-mock",
            }
        )
        if "bench_floor" not in (ROOT / "lynkr_site" / "urls.py").read_text():
            # This tree does not mount the FLOOR endpoint itself: same settings, urlconf + FLOOR (bench/floor_*.py).
            env["DJANGO_SETTINGS_MODULE"] = "bench.floor_settings"
            env["PYTHONPATH"] = str(ROOT)
        env.update(self.extra_env)
        return env

    def prepare(self) -> None:
        """Database, a user and a key, before the timed start (a restart, as in production)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lynkr = str(VENV_BIN / "lynkr")
        env = self.env()
        subprocess.run([lynkr, "migrate"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
        subprocess.run(
            [lynkr, "createadmin", "--username", "bench", "--password-stdin"],
            cwd=ROOT,
            env=env,
            input=b"bench-password-not-secret\n",
            check=True,
            capture_output=True,
            timeout=120,
        )
        out = subprocess.run(
            [lynkr, "keys", "create", "--user", "bench"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=60
        )
        self.api_key = out.stdout.decode().strip().splitlines()[-1].strip()
        if not re.match(r"^sk-lynkr-\S+$", self.api_key):
            raise RuntimeError(f"unexpected `lynkr keys create` output: {out.stdout!r}")

    def argv(self) -> list[str]:
        if self.server in ("daphne", "uvicorn"):
            return [str(VENV_BIN / "lynkr"), "serve", "--no-worker", "--server", self.server]
        return [sys.executable, str(BENCH / "serve_asgi.py"), "--server", self.server, "--port", str(self.port)]


def answered_through_mock(name: str, status: int, body: bytes) -> bool:
    """True once a real answer came back through the mock (its text); a refusal is a set-up error, not a wait."""
    if status == 200 and b'"type":"message"' in body.replace(b" ", b"") and b"lorem ipsum" in body:
        return True
    if status in (200, 400, 401, 403, 404, 422, 429):
        raise RuntimeError(f"{name} answered {status} without the mock's text: {body[:800]!r}")
    return False  # 5xx while starting: try again


def start_lynkr(setup: LynkrSetup, workdir: Path, cpu: int | None, probe_body: bytes) -> tuple[Proc, float]:
    """Start the server and time it to the first answered /v1/messages (non-streaming, through the mock)."""
    headers = {**CLAUDE_CODE_HEADERS, "x-api-key": setup.api_key}
    t0 = time.monotonic()
    proc = spawn(f"lynkr-{setup.server}", setup.argv(), setup.env(), workdir, cpu, setup.port)
    mark_started(proc, t0)

    def answered() -> bool:
        status, body = http_call(setup.port, "POST", "/v1/messages?beta=true", probe_body, headers, timeout=10)
        return answered_through_mock(setup.server, status, body)

    seconds = wait_answer(proc, answered, 120)
    proc.serving_pid = proc.server_pid()
    return proc, seconds


def litellm_ready() -> bool:
    return (LITELLM_VENV / "bin" / "litellm").exists()


def litellm_install() -> None:
    """LiteLLM in its own venv (never the project's): ``litellm[proxy]`` at the pinned version."""
    LITELLM_VENV.parent.mkdir(parents=True, exist_ok=True)
    if not (LITELLM_VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
    pip = [str(LITELLM_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, f"litellm[proxy]=={LITELLM_VERSION}"], check=True)


def litellm_version() -> str:
    out = subprocess.run(
        [str(LITELLM_VENV / "bin" / "python"), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def start_litellm(
    workdir: Path, cpu: int | None, mock_port: int, model: str, probe_body: bytes
) -> tuple[Proc, float, str]:
    """The LiteLLM proxy: one worker, no database, the body's model mapped to the mock's OpenAI endpoint."""
    port = free_port()
    config = workdir / "litellm-config.yaml"
    config.write_text(
        json.dumps(  # JSON is YAML
            {
                "model_list": [
                    {
                        "model_name": model,
                        "litellm_params": {
                            "model": "openai/gpt-mock",
                            "api_base": f"http://127.0.0.1:{mock_port}/v1",
                            "api_key": UPSTREAM_KEY,
                        },
                    }
                ],
                "general_settings": {"master_key": LITELLM_KEY},
                # LiteLLM 1.108 sends Anthropic /v1/messages for openai/ models to the Responses API unless told
                # otherwise (litellm/llms/anthropic/pass_through/messages/handler.py); the comparison is Anthropic
                # in, OpenAI chat completions out, as Lynkr does.
                "litellm_settings": {"telemetry": False, "use_chat_completions_url_for_anthropic_messages": True},
            },
            indent=2,
        )
    )
    env = clean_env()
    # The cost map is fetched from GitHub at import time unless told to use the bundled copy (no network here).
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env["LITELLM_TELEMETRY"] = "False"
    argv = [str(LITELLM_VENV / "bin" / "litellm"), "--config", str(config), "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--num_workers", "1"]
    headers = {**CLAUDE_CODE_HEADERS, "x-api-key": LITELLM_KEY}
    t0 = time.monotonic()
    proc = spawn("litellm", argv, env, workdir, cpu, port)
    mark_started(proc, t0)

    def answered() -> bool:
        status, body = http_call(port, "POST", "/v1/messages?beta=true", probe_body, headers, timeout=10)
        return answered_through_mock("litellm", status, body)

    seconds = wait_answer(proc, answered, 180)
    proc.serving_pid = proc.server_pid()
    return proc, seconds, LITELLM_KEY
