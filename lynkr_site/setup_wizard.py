"""``lynkr setup``: write a first ``.env``, prepare the database, create the admin user and a first key, and print
the Claude Code lines; interactive, or ``--non-interactive`` with flags (docs/configuration.md, last section).

It downloads nothing and talks only to the provider URL it is given (or Lynkr's default for that provider) and to
the local Ollama it looks for. The ``.env`` uses Lynkr's variable names, is written atomically with mode 0600, and
is never replaced without ``--force`` (or a yes in the terminal). Secrets are masked on the terminal; the admin
password (when generated) and the new API key are printed once, as ``lynkr serve`` prints them on a first start.

Also ``python -m lynkr_site.setup_wizard`` (no Django setup needed in this process: the database steps run as
child ``lynkr`` commands reading the new file, see setup_steps.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import secrets
import shlex
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.keys import claude_code_exports
from lynkr_site import docs_config
from lynkr_site.setup_envfile import backup_path, envfile_render, envfile_write
from lynkr_site.setup_interactive import interactive_plan
from lynkr_site.setup_plan import (
    DEFAULT_ADMIN,
    DEFAULT_HOST,
    DEFAULT_PORT,
    Console,
    Plan,
    TerminalConsole,
    api_key_from,
    check_host,
    check_password,
    check_port,
    check_username,
    parse_set,
)
from lynkr_site.setup_probe import DEFAULT_OLLAMA_URL, ollama_detect, probe_request, probe_run
from lynkr_site.setup_providers import KINDS, SetupError, provider_choice
from lynkr_site.setup_steps import (
    PROJECT_DIR,
    DatabaseOutcome,
    Runner,
    child_environ,
    database_prepare,
    loaded_dotenv,
    lynkr_runner,
)

KEY_NAME = "lynkr setup"


def env_path_for(option: str | None, environ: Mapping[str, str]) -> Path:
    """``--env-file``, else the file ``lynkr`` reads: ``LYNKR_ENV_FILE``, else ``.env`` beside manage.py."""
    raw = option or environ.get("LYNKR_ENV_FILE") or str(PROJECT_DIR / ".env")
    return Path(raw).expanduser().absolute()


def _same_model(listed: str, wanted: str) -> bool:
    return listed == wanted or listed == f"{wanted}:latest"


def noninteractive_plan(console: Console, opts: argparse.Namespace, *, env_path: Path) -> tuple[Plan, bool]:
    """Everything from flags; any problem is a SetupError (exit 1) before a file is touched."""
    if env_path.exists() and not opts.force:
        kept = backup_path(env_path).name
        raise SetupError(f"{env_path} exists: not overwriting it (pass --force; the old file is kept as {kept})")
    username = check_username(opts.admin_username or DEFAULT_ADMIN)
    host = check_host(opts.host or DEFAULT_HOST)
    port = check_port(opts.port or DEFAULT_PORT)
    extras = parse_set(opts.set or ())
    password = ""
    if opts.admin_password_stdin:
        password = check_password(console.stdin_line().rstrip("\r\n"))
    provider = opts.provider or ""
    if not provider:
        found = None if opts.no_ollama_detect else ollama_detect(opts.ollama_url, timeout=opts.timeout)
        if found is None:
            raise SetupError(f"--provider is required (no Ollama answered at {opts.ollama_url})")
        console.say(f"found Ollama at {opts.ollama_url}: {found.detail}")
        provider = "ollama"
    base_url = opts.base_url or (opts.ollama_url if provider == "ollama" else "")
    choice = provider_choice(kind=provider, base_url=base_url, api_key=api_key_from(opts), model=opts.model or "")
    if not opts.skip_check:
        request = probe_request(choice)
        result = probe_run(request, timeout=opts.timeout)
        console.say(f"checked {choice.kind.name} at {request.url}: {result.detail}")
        if not result.ok:
            raise SetupError(
                f"{choice.kind.name} at {request.url} {result.detail} (--skip-check writes the file anyway)"
            )
        default = choice.kind.model_default
        listed = result.models
        missing = listed and not any(_same_model(name, default) for name in listed)
        if choice.kind.name == "ollama" and not choice.model and missing:
            choice = dataclasses.replace(choice, model=listed[0])
            console.say(f"model: {choice.model} (Ollama has no {default}, Lynkr's default; --model chooses)")
    plan = Plan(
        choice=choice,
        host=host,
        port=port,
        admin_username=username,
        admin_password=password or secrets.token_urlsafe(18),
        password_generated=not password,
        data_dir=opts.data_dir_abs,
        extras=extras,
    )
    return plan, bool(opts.force)


def _client_url(effective: Mapping[str, str]) -> tuple[str, str]:
    """The admin base and ANTHROPIC_BASE_URL, computed as ``lynkr serve``'s first-start message computes them."""
    base = (effective.get("LYNKR_PUBLIC_URL") or f"http://{effective['HOST']}:{effective['PORT']}").rstrip("/")
    path = effective.get("LYNKR_BASE_PATH", "").strip("/")
    return base, base + (f"/{path}" if path else "")


def _report(console: Console, plan: Plan, outcome: DatabaseOutcome | None, *, effective: Mapping[str, str]) -> None:
    base, client_url = _client_url(effective)
    lines = ["", "lynkr setup: done (shown once, note it now)", f"  admin URL: {base}/admin/"]
    lines.append(f"  username:  {plan.admin_username}")
    if outcome is None:
        lines += [
            "",
            "  database not prepared (--no-database): run `lynkr migrate`, `lynkr createadmin`, `lynkr keys create`",
        ]
    else:
        if not outcome.admin_created:
            lines.append("  password:  unchanged (the user existed already)")
        elif plan.password_generated:
            lines.append(f"  password:  {plan.admin_password}")
        else:
            lines.append("  password:  the one you gave")
        lines += [
            "",
            f"  API key for {plan.admin_username} (shown once):",
            f"  {outcome.key_secret}",
            "",
            "  Point Claude Code at the gateway:",
            *(f"    {line}" for line in claude_code_exports(base_url=client_url, secret=outcome.key_secret)),
        ]
    console.say("\n".join(lines))


def run_setup(
    opts: argparse.Namespace, *, console: Console, environ: Mapping[str, str], runner: Runner | None = None
) -> int:
    """The whole wizard; 0 on success, 1 with a one-line reason otherwise."""
    env_path = env_path_for(opts.env_file, environ)
    opts.data_dir_abs = str(Path(opts.data_dir).expanduser().absolute()) if opts.data_dir else ""
    loaded = loaded_dotenv()  # before the old file is replaced
    written = False
    try:
        if opts.non_interactive:
            plan, force = noninteractive_plan(console, opts, env_path=env_path)
        else:
            if opts.admin_password_stdin:
                raise SetupError("--admin-password-stdin goes with --non-interactive (the wizard asks for it)")
            plan, force = interactive_plan(console, opts, env_path=env_path)
        values = plan.env_values()
        header = [
            f"Lynkr configuration, written by `lynkr setup` on {datetime.now(UTC).date().isoformat()}.",
            "docs/configuration.md describes every variable; real environment variables win over this file.",
            "A secret may be given as NAME_FILE=/path/to/file instead of NAME=value.",
        ]
        backup = envfile_write(env_path, envfile_render(values, header=header), force=force)
        written = True
        console.say(f"wrote {env_path} (mode 0600)" + (f"; the previous file is kept as {backup}" if backup else ""))
        child = child_environ(environ=environ, loaded=loaded, env_file=env_path)
        file_values = dict(values)
        for name, value in file_values.items():
            if name in child and child[name] != value:
                console.error(f"lynkr setup: warning: {name} is set in this environment, and wins over the file")
        outcome = None
        if not opts.no_database:
            console.say("preparing the database: migrations, the admin user, a first API key ...")
            outcome = database_prepare(
                run=runner or lynkr_runner(environ=child),
                username=plan.admin_username,
                password=plan.admin_password,
                key_name=KEY_NAME,
            )
        names = ("HOST", "PORT", "LYNKR_PUBLIC_URL", "LYNKR_BASE_PATH")
        effective = {name: child.get(name) or file_values.get(name, "") for name in names}
        _report(console, plan, outcome, effective=effective)
        user_env = {name: value for name, value in environ.items() if loaded.get(name) != value}
        serve = "lynkr serve"
        if env_path != env_path_for(None, user_env):
            serve = f"LYNKR_ENV_FILE={shlex.quote(str(env_path))} lynkr serve"
        console.say(f"\n  Start the gateway:\n    {serve}\n")
        return 0
    except SetupError as exc:
        console.error(f"lynkr setup: {exc}")
        if written:
            console.error(f"lynkr setup: {env_path} was written; fix the problem, then run `lynkr setup --force` again")
        return 1
    except (EOFError, KeyboardInterrupt):
        console.error("\nlynkr setup: stopped" + ("" if written else "; nothing written"))
        return 1


def add_setup_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--non-interactive", action="store_true", help="take everything from flags; never prompt")
    parser.add_argument("--provider", choices=sorted(KINDS), help="the MODEL_PROVIDER to write")
    parser.add_argument("--base-url", help="the provider's URL (its Lynkr variable, e.g. OPENAI_ENDPOINT)")
    key = parser.add_mutually_exclusive_group()
    key.add_argument("--api-key", help="the provider's key (visible to other local users in `ps`: prefer the file)")
    key.add_argument("--api-key-file", metavar="FILE", help="read the provider's key from FILE")
    parser.add_argument("--model", help="the upstream model (Ollama/OpenAI/OpenRouter model, Azure deployment, ...)")
    parser.add_argument("--set", action="append", metavar="NAME=VALUE", help="any other variable (repeatable)")
    parser.add_argument("--env-file", metavar="PATH", help="where to write (default: the .env `lynkr` reads)")
    parser.add_argument("--data-dir", metavar="DIR", help="write LYNKR_DATA_DIR (made absolute)")
    parser.add_argument("--host", help=f"listen address (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, help=f"listen port (default {DEFAULT_PORT})")
    parser.add_argument("--admin-username", help=f"the admin user (default {DEFAULT_ADMIN})")
    parser.add_argument(
        "--admin-password-stdin", action="store_true", help="read the admin password from standard input"
    )
    parser.add_argument("--force", action="store_true", help="replace an existing file (kept as .bak)")
    parser.add_argument("--skip-check", action="store_true", help="do not contact the provider before writing")
    parser.add_argument(
        "--ollama-url", default=DEFAULT_OLLAMA_URL, help="where to look for Ollama (and its URL for --provider ollama)"
    )
    parser.add_argument("--no-ollama-detect", action="store_true", help="do not look for a local Ollama")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds for the provider check (default 5)")
    parser.add_argument("--no-database", action="store_true", help="write the file only (no migrate, user or key)")


def cmd_setup(args: argparse.Namespace) -> int:
    return run_setup(args, console=TerminalConsole(), environ=os.environ)


def add_parsers(sub: Any) -> None:
    """``lynkr setup`` and ``lynkr docs config``. Neither needs Django set up in the calling process
    (``needs_django=False``): setup must work, and replace the file, even when the current .env is broken."""
    setup = sub.add_parser("setup", help="write .env, prepare the database, create the admin user and a first key")
    add_setup_arguments(setup)
    setup.set_defaults(func=cmd_setup, needs_django=False)
    docs = sub.add_parser("docs", help="generated documentation")
    docs_sub = docs.add_subparsers(dest="docs_command", required=True)
    config = docs_sub.add_parser("config", help="the configuration reference (docs/configuration.md)")
    docs_config.add_arguments(config)
    config.set_defaults(func=docs_config.cmd_docs_config, needs_django=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lynkr setup", description="Write a first .env and prepare Lynkr.")
    add_setup_arguments(parser)
    return cmd_setup(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
