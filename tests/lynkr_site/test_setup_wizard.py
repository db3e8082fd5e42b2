"""``lynkr setup``: run for real (child processes, a real database, a real server) against loopback mock upstreams,
and in-process with a scripted terminal for the question flow. Nothing here leaves 127.0.0.1."""

from __future__ import annotations

import argparse
import os
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import environ
import httpx
import pytest

from lynkr_site import setup_wizard
from lynkr_site.setup_envfile import envfile_parse, envfile_render, envfile_write, mask
from lynkr_site.setup_probe import probe_request
from lynkr_site.setup_providers import SetupError, provider_choice
from lynkr_site.setup_steps import child_environ, database_prepare
from tests.e2e.server import ROOT, LynkrServer, free_port
from tests.mocks.ollama_upstream import MockOllamaUpstream
from tests.mocks.openai_upstream import MockOpenAIUpstream

UPSTREAM_KEY = "up-key-0123456789abcdef"


def _clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without Lynkr's variables (the test database URL included)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("LYNKR_", "MODEL_", "AZURE_", "OPENAI_", "OLLAMA_", "REDIS_URL", "DATABASE_URL", "DJANGO_")
        )
    }
    env["LYNKR_ENV_FILE"] = "/nonexistent"  # never the checkout's .env
    env.update(extra)
    return env


def _setup(*args: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lynkr_site.setup_wizard", *args],
        cwd=ROOT,
        env=_clean_env(),
        input=input_text,
        capture_output=True,
        text=True,
        timeout=180,
        start_new_session=True,  # no controlling terminal: secrets are read from the piped stdin
    )


def _variables(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


def _printed_key(stdout: str) -> str:
    lines = [line.strip() for line in stdout.splitlines()]
    exports = [line.split("=", 1)[1] for line in lines if line.startswith("export ANTHROPIC_API_KEY=")]
    assert len(exports) == 1, stdout
    return exports[0]


# --- for real: child processes, database, server --------------------------------------------------------------


def test_noninteractive_setup_writes_env_and_its_key_works_on_a_served_gateway(tmp_path: Path) -> None:
    env_file, data = tmp_path / "conf" / ".env", tmp_path / "data"
    with MockOpenAIUpstream(api_key=UPSTREAM_KEY, models=("gpt-mock",)) as upstream:
        result = _setup(
            "--non-interactive", "--provider", "openai", "--base-url", f"{upstream.url}/v1",
            "--api-key", UPSTREAM_KEY, "--model", "gpt-mock", "--env-file", str(env_file), "--data-dir", str(data),
            "--port", "8123", "--admin-username", "lead", "--admin-password-stdin", "--no-ollama-detect",
            input_text="a-long-admin-password\n",
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert _variables(env_file) == [
            "MODEL_PROVIDER=openai",
            f"OPENAI_ENDPOINT={upstream.url}/v1",
            f"OPENAI_API_KEY={UPSTREAM_KEY}",
            "OPENAI_MODEL=gpt-mock",
            "HOST=127.0.0.1",
            "PORT=8123",
            "LYNKR_ADMIN_USERNAME=lead",
            f"LYNKR_DATA_DIR={data}",
        ]
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        # The provider was checked with the key, at its model listing.
        assert [(r.method, r.route, r.headers.get("authorization")) for r in upstream.requests] == [
            ("GET", "/v1/models", f"Bearer {UPSTREAM_KEY}")
        ]
        out = result.stdout
        assert UPSTREAM_KEY not in out and "a-long-admin-password" not in out
        assert "password:  the one you gave" in out
        key = _printed_key(out)
        assert f"\n  {key}\n" in out  # alone on its line, like `lynkr serve`'s first start
        assert "    export ANTHROPIC_BASE_URL=http://127.0.0.1:8123\n" in out
        assert "    export CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1\n" in out
        assert f"LYNKR_ENV_FILE={env_file} lynkr serve" in out

        # The file and the key are what a server started with that file uses (HOST/PORT from the real env win).
        server = LynkrServer(data_dir=data, env_extra={"LYNKR_ENV_FILE": str(env_file)}).start()
        try:
            assert "created the admin user" not in server.log()  # setup created it: no second bootstrap
            models = httpx.get(f"{server.url}/v1/models", headers={"x-api-key": key}, timeout=30)
            assert models.status_code == 200, models.text
            answer = httpx.post(
                f"{server.url}/v1/messages",
                headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
                json={"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]},
                timeout=60,
            )
            assert answer.status_code == 200, answer.text
            assert httpx.get(f"{server.url}/v1/models", headers={"x-api-key": "sk-lynkr-wrong"}).status_code == 401
        finally:
            server.stop()
        chat = upstream.chat_requests
        assert len(chat) == 1 and chat[0].headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
        assert chat[0].body["model"] == "gpt-mock"
        assert upstream.errors == []
        admin = server.lynkr("keys", "list", "--user", "lead")
        assert "lynkr setup" in admin.stdout and key.split("_", 1)[0] in admin.stdout


def test_interactive_setup_from_piped_answers_masks_the_provider_key(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    with MockOpenAIUpstream(api_key=UPSTREAM_KEY) as upstream:
        answers = [
            "openai",  # provider (Ollama detection is off)
            f"{upstream.url}/v1",  # OPENAI_ENDPOINT
            UPSTREAM_KEY,  # OPENAI_API_KEY (hidden)
            "",  # OPENAI_MODEL: Lynkr's default
            "",  # HOST: default
            "9001",  # PORT
            "",  # admin username: default
            "",  # admin password: generate
            "y",  # write it
        ]
        result = _setup(
            "--env-file", str(env_file), "--data-dir", str(tmp_path / "data"), "--no-ollama-detect",
            input_text="\n".join(answers) + "\n",
        )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert _variables(env_file) == [
        "MODEL_PROVIDER=openai",
        f"OPENAI_ENDPOINT={upstream.url}/v1",
        f"OPENAI_API_KEY={UPSTREAM_KEY}",
        "HOST=127.0.0.1",
        "PORT=9001",
        "LYNKR_ADMIN_USERNAME=admin",
        f"LYNKR_DATA_DIR={tmp_path / 'data'}",
    ]
    out = result.stdout
    assert UPSTREAM_KEY not in out  # the summary shows it masked
    assert f"OPENAI_API_KEY={mask(UPSTREAM_KEY)}" in out
    assert "ok: answered HTTP 200" in out
    password = next(line.split()[-1] for line in out.splitlines() if line.strip().startswith("password:"))
    assert len(password) >= 20
    assert _printed_key(out).startswith("sk-lynkr-")
    assert "export ANTHROPIC_BASE_URL=http://127.0.0.1:9001" in out


# --- in-process: a scripted terminal, no database --------------------------------------------------------------


class ScriptedConsole:
    def __init__(self, answers: Sequence[str] = (), stdin: str = "") -> None:
        self.answers = list(answers)
        self.prompts: list[str] = []
        self.out: list[str] = []
        self.err: list[str] = []
        self.stdin = stdin

    def ask(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if not self.answers:
            raise EOFError
        return self.answers.pop(0)

    secret = ask

    def say(self, text: str = "") -> None:
        self.out.append(text)

    def error(self, text: str) -> None:
        self.err.append(text)

    def stdin_line(self) -> str:
        return self.stdin

    @property
    def text(self) -> str:
        return "\n".join(self.out)


class FakeLynkr:
    """Stands in for the child `lynkr` commands; records what they were asked."""

    def __init__(self, *, admin_exists: bool = False) -> None:
        self.calls: list[tuple[list[str], str | None]] = []
        self.admin_exists = admin_exists

    def __call__(self, args: Sequence[str], *, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        self.calls.append((list(args), input_text))
        if args[0] == "createadmin" and self.admin_exists:
            return subprocess.CompletedProcess(list(args), 1, "", f"lynkr: user {args[2]!r} already exists\n")
        stdout = "created key sk-lynkr-fake1234 ...; secret, shown once:\nsk-lynkr-fake1234_secret\n"
        return subprocess.CompletedProcess(list(args), 0, stdout if args[0] == "keys" else "", "")


def _opts(*args: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    setup_wizard.add_setup_arguments(parser)
    return parser.parse_args(list(args))


def _run(console: ScriptedConsole, *args: str, runner: FakeLynkr | None = None) -> int:
    return setup_wizard.run_setup(_opts(*args), console=console, environ={}, runner=runner or FakeLynkr())


def test_refuses_to_overwrite_without_force_and_keeps_a_private_backup_with_it(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("OLD=1\n")
    base = ("--non-interactive", "--provider", "ollama", "--skip-check", "--env-file", str(env_file))
    console = ScriptedConsole()
    assert _run(console, *base) == 1
    assert "exists: not overwriting it (pass --force" in console.err[0]
    assert env_file.read_text() == "OLD=1\n"

    console = ScriptedConsole()
    assert _run(console, *base, "--force") == 0, console.err
    backup = tmp_path / ".env.bak"
    assert backup.read_text() == "OLD=1\n" and stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert "MODEL_PROVIDER=ollama" in _variables(env_file)
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600


def test_unreachable_provider_fails_noninteractive_run_and_writes_nothing(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    closed = f"http://127.0.0.1:{free_port()}"
    console = ScriptedConsole()
    code = _run(console, "--non-interactive", "--provider", "ollama", "--base-url", closed, "--env-file", str(env_file))
    assert code == 1
    assert f"ollama at {closed}/api/tags not reachable: ConnectError" in console.err[0]
    assert "--skip-check" in console.err[0]
    assert not env_file.exists()


def test_refused_key_fails_noninteractive_run(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    with MockOpenAIUpstream(api_key=UPSTREAM_KEY) as upstream:
        console = ScriptedConsole()
        args = ("--non-interactive", "--provider", "openai", "--base-url", upstream.url, "--api-key", "wrong-key-123")
        assert _run(console, *args, "--env-file", str(env_file)) == 1
    assert "answered HTTP 401: the API key was refused" in console.err[0]
    assert "wrong-key-123" not in "\n".join(console.err + console.out)
    assert not env_file.exists()


def test_noninteractive_without_provider_uses_the_detected_ollama(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    models = {"qwen3:8b": {"context_length": 40960, "capabilities": ["completion", "tools"]}, "llama3.2": {}}
    with MockOllamaUpstream(models=models) as ollama:
        console = ScriptedConsole(stdin="")
        runner = FakeLynkr()
        code = _run(
            console, "--non-interactive", "--ollama-url", ollama.url, "--env-file", str(env_file), runner=runner
        )
        assert code == 0, console.err
        assert {r.route for r in ollama.requests} == {"/api/tags"}
    assert _variables(env_file)[:3] == [
        "MODEL_PROVIDER=ollama",
        f"OLLAMA_ENDPOINT={ollama.url}",
        "OLLAMA_MODEL=qwen3:8b",
    ]
    assert f"found Ollama at {ollama.url}: answered HTTP 200; 2 model(s): qwen3:8b, llama3.2:latest" in console.text
    # The database steps: migrate, the admin with its (generated) password on stdin, a key for it.
    assert [call[0][0] for call in runner.calls] == ["migrate", "createadmin", "keys"]
    password = runner.calls[1][1]
    assert password and f"password:  {password.strip()}" in console.text
    assert "export ANTHROPIC_API_KEY=sk-lynkr-fake1234_secret" in console.text


def test_noninteractive_without_provider_and_without_ollama_asks_for_a_provider(tmp_path: Path) -> None:
    console = ScriptedConsole()
    closed = f"http://127.0.0.1:{free_port()}"
    assert _run(console, "--non-interactive", "--ollama-url", closed, "--env-file", str(tmp_path / ".env")) == 1
    assert console.err == [f"lynkr setup: --provider is required (no Ollama answered at {closed})"]


def test_interactive_offers_the_local_ollama_and_its_models(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    models = {"qwen3:8b": {}, "gpt-oss:20b": {}}
    with MockOllamaUpstream(models=models) as ollama:
        console = ScriptedConsole(["", "2", "", "nope", "8080", "", "short", "a-good-password", "different", "", "y"])
        assert _run(console, "--ollama-url", ollama.url, "--env-file", str(env_file)) == 0, console.err
    assert "  found Ollama: answered HTTP 200; 2 model(s): qwen3:8b, gpt-oss:20b" in console.out
    assert "  2) gpt-oss:20b" in console.out
    # Wrong answers are explained and asked again: a port, a short password, a repeat that differs.
    assert "  port 'nope' is not a number" in console.out
    assert "  the admin password needs at least 8 characters" in console.out
    assert "  the two passwords differ" in console.out
    assert _variables(env_file)[:3] == [
        "MODEL_PROVIDER=ollama",
        f"OLLAMA_ENDPOINT={ollama.url}",
        "OLLAMA_MODEL=gpt-oss:20b",
    ]
    assert "password:  " in console.text and "generate" in console.prompts[6]


def test_interactive_unreachable_provider_asks_whether_to_continue(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    closed = f"http://127.0.0.1:{free_port()}"
    console = ScriptedConsole(["ollama", closed, "", "n"])  # provider, URL, model, do not continue; then input ends
    assert _run(console, "--no-ollama-detect", "--env-file", str(env_file)) == 1
    assert any(line.startswith("  problem: not reachable") for line in console.out)
    assert console.prompts[3] == "Continue with these settings anyway? [y/N] "
    assert console.prompts[4].startswith("Provider (1-6")  # declined: asked again from the provider
    assert console.err[-1].endswith("nothing written") and not env_file.exists()

    console = ScriptedConsole(["ollama", closed, "", "y", "", "", "", "", "y"])
    assert _run(console, "--no-ollama-detect", "--env-file", str(env_file)) == 0, console.err
    assert f"OLLAMA_ENDPOINT={closed}" in _variables(env_file)


def test_interactive_takes_what_the_flags_give_and_asks_the_rest(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    flags = ("--provider", "openrouter", "--api-key", "sk-or-0123456789abcdef", "--model", "qwen/qwen3-coder")
    console = ScriptedConsole(["", "", "", "", "", "", "y"])  # URL, model, host, port, user, password, write
    assert _run(console, *flags, "--skip-check", "--env-file", str(env_file)) == 0, console.err
    assert console.prompts[:2] == [
        "OPENROUTER_ENDPOINT [https://openrouter.ai/api/v1/chat/completions]: ",
        "OPENROUTER_MODEL [qwen/qwen3-coder]: ",
    ]
    assert not any("input hidden" in prompt for prompt in console.prompts)  # the key came from the flag
    assert _variables(env_file)[:3] == [
        "MODEL_PROVIDER=openrouter",
        "OPENROUTER_API_KEY=sk-or-0123456789abcdef",
        "OPENROUTER_MODEL=qwen/qwen3-coder",
    ]
    assert "  OPENROUTER_API_KEY=sk-o...(22 characters)" in console.out
    assert "sk-or-0123456789abcdef" not in console.text


def test_interactive_existing_file_is_kept_unless_confirmed(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("KEEP=1\n")
    console = ScriptedConsole(["n"])
    assert _run(console, "--no-ollama-detect", "--env-file", str(env_file)) == 1
    assert console.err == [f"lynkr setup: nothing written: {env_file} exists"]
    assert env_file.read_text() == "KEEP=1\n"


def test_existing_admin_is_kept_and_still_gets_a_key(tmp_path: Path) -> None:
    console = ScriptedConsole()
    runner = FakeLynkr(admin_exists=True)
    args = ("--non-interactive", "--provider", "ollama", "--skip-check", "--env-file", str(tmp_path / ".env"))
    assert _run(console, *args, runner=runner) == 0
    assert "password:  unchanged (the user existed already)" in console.text
    assert "sk-lynkr-fake1234_secret" in console.text


def test_database_failure_is_reported_with_the_command() -> None:
    def failing(args: Sequence[str], *, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(list(args), 2, "", "lynkr: configuration error: PORT='x' is invalid\n")

    with pytest.raises(SetupError, match=r"`lynkr migrate` failed \(exit 2\): lynkr: configuration error: PORT="):
        database_prepare(run=failing, username="admin", password="p" * 10, key_name="k")


def test_noninteractive_flag_problems_are_one_line_errors(tmp_path: Path) -> None:
    env = ("--env-file", str(tmp_path / ".env"), "--non-interactive", "--skip-check")
    cases = {
        ("--provider", "openai"): "openai needs an API key (--api-key or --api-key-file, written as OPENAI_API_KEY)",
        ("--provider", "azure-anthropic", "--api-key", "k"): "azure-anthropic needs its URL (--base-url",
        ("--provider", "ollama", "--port", "70000"): "port 70000 is not between 1 and 65535",
        ("--provider", "ollama", "--admin-username", "a b"): "admin username 'a b'",
        ("--provider", "ollama", "--set", "NOPE=1"): "--set NOPE: not a Lynkr variable",
        ("--provider", "ollama", "--api-key-file", "/nonexistent/key"): "cannot read --api-key-file",
        ("--provider", "ollama", "--admin-password-stdin"): "at least 8 characters",
    }
    for args, message in cases.items():
        console = ScriptedConsole(stdin="short\n")
        assert _run(console, *env, *args) == 1, args
        assert message in console.err[0], (args, console.err)
    assert not (tmp_path / ".env").exists()


def test_set_adds_variables_and_secrets_read_from_a_file(tmp_path: Path) -> None:
    env_file, key_file = tmp_path / ".env", tmp_path / "key"
    key_file.write_text("sk-or-secret-value\n")
    args = ("--non-interactive", "--skip-check", "--provider", "openrouter", "--api-key-file", str(key_file))
    console = ScriptedConsole()
    extra = ("--set", "PREFER_OLLAMA=true", "--set", "LYNKR_BASE_PATH=gw/anthropic")
    assert _run(console, *args, *extra, "--env-file", str(env_file)) == 0, console.err
    lines = _variables(env_file)
    assert lines[:2] == ["MODEL_PROVIDER=openrouter", "OPENROUTER_API_KEY=sk-or-secret-value"]
    assert "PREFER_OLLAMA=true" in lines and "LYNKR_BASE_PATH=gw/anthropic" in lines
    assert "export ANTHROPIC_BASE_URL=http://127.0.0.1:8080/gw/anthropic" in console.text  # the prefix is kept


# --- pure parts --------------------------------------------------------------------------------------------------


def test_env_file_reads_back_exactly_through_django_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    values = [
        ("A", "plain"),
        ("B", "with # hash and = sign"),
        ("C", "'single-quoted'"),
        ("D", '"double" quoted "'),
        ("E", '"wrapped \\n in" quotes"'),
        ("F", ""),
        ("G", "back\\slash"),
    ]
    path = tmp_path / ".env"
    envfile_write(path, envfile_render(values, header=["test"]), force=False)
    read: dict[str, str] = {}
    monkeypatch.setattr(environ.Env, "ENVIRON", read)
    environ.Env.read_env(str(path))
    assert read == dict(values)
    assert envfile_parse(path.read_text()) == dict(values)


@pytest.mark.parametrize(("value", "problem"), [("a\nb", "line break"), ("$OTHER", "reference to another variable")])
def test_env_file_refuses_values_it_cannot_carry(value: str, problem: str) -> None:
    with pytest.raises(SetupError, match=problem):
        envfile_render([("X", value)], header=[])


def test_probe_urls_and_credentials_per_kind() -> None:
    def probe(kind: str, url: str, key: str = "k", model: str = "m") -> tuple[str, dict[str, str]]:
        request = probe_request(provider_choice(kind=kind, base_url=url, api_key=key, model=model))
        return request.url, dict(request.headers)

    assert probe("ollama", "http://h:11434") == ("http://h:11434/api/tags", {})
    assert probe("openai", "") == ("https://api.openai.com/v1/models", {"authorization": "Bearer k"})
    assert probe("openai", "http://h:8000/v1/chat/completions")[0] == "http://h:8000/v1/models"
    assert probe("openrouter", "")[0] == "https://openrouter.ai/api/v1/models"
    assert probe("azure-anthropic", "https://r.services.ai.azure.com/anthropic/v1/messages") == (
        "https://r.services.ai.azure.com/anthropic/v1/models",
        {"x-api-key": "k", "anthropic-version": "2023-06-01"},
    )
    assert probe("databricks", "https://w.cloud.databricks.com") == (
        "https://w.cloud.databricks.com/api/2.0/serving-endpoints",
        {"authorization": "Bearer k"},
    )
    assert probe("azure-openai", "https://r.openai.azure.com") == (
        "https://r.openai.azure.com/openai/models?api-version=2024-10-21",
        {"api-key": "k"},
    )
    assert probe("azure-openai", "https://r.services.ai.azure.com/models")[1] == {"authorization": "Bearer k"}
    assert "k" not in repr(probe_request(provider_choice(kind="openai", base_url="", api_key="k", model="")))


def test_provider_values_use_lynkrs_names() -> None:
    databricks = provider_choice(kind="databricks", base_url="https://w.cloud.databricks.com", api_key="p", model="ep")
    assert databricks.env_values() == [
        ("MODEL_PROVIDER", "databricks"),
        ("DATABRICKS_API_BASE", "https://w.cloud.databricks.com"),
        ("DATABRICKS_API_KEY", "p"),
        ("DATABRICKS_ENDPOINT_PATH", "/serving-endpoints/ep/invocations"),
    ]
    azure = provider_choice(kind="azure-openai", base_url="https://r.openai.azure.com", api_key="k", model="dep")
    assert azure.env_values()[-1] == ("AZURE_OPENAI_DEPLOYMENT", "dep")
    with pytest.raises(SetupError, match="needs the deployment name"):
        provider_choice(kind="azure-openai", base_url="https://r.openai.azure.com", api_key="k", model="")
    with pytest.raises(SetupError, match="unknown provider 'bedrock'"):
        provider_choice(kind="bedrock", base_url="", api_key="", model="")


def test_children_do_not_inherit_what_the_old_dotenv_put_in_the_environment(tmp_path: Path) -> None:
    new = tmp_path / ".env"
    child = child_environ(
        environ={"PATH": "/bin", "PORT": "9000", "HOST": "0.0.0.0"},
        loaded={"PORT": "9000", "HOST": "10.0.0.1"},  # PORT came from the old file; HOST was exported over it
        env_file=new,
    )
    assert child == {"PATH": "/bin", "HOST": "0.0.0.0", "LYNKR_ENV_FILE": str(new)}


def test_lynkr_setup_and_docs_subcommands_are_wired_by_add_parsers() -> None:
    parser = argparse.ArgumentParser(prog="lynkr")
    setup_wizard.add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["setup", "--non-interactive", "--provider", "ollama", "--force"])
    assert args.func is setup_wizard.cmd_setup and args.needs_django is False and args.force
    docs = parser.parse_args(["docs", "config", "--check"])
    assert docs.func.__name__ == "cmd_docs_config" and docs.check and docs.needs_django is False
