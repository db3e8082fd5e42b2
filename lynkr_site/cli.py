"""The ``lynkr`` command: serve, worker, beat, migrate, createadmin, keys, check, config, index, mcp.

Never prompts, except `lynkr setup` without --non-interactive: everything comes from flags and the environment,
so it runs the same in a terminal, a container and CI.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lynkr_site.settings.base")
    import django
    from django.core.exceptions import ImproperlyConfigured

    try:
        django.setup()
    except ImproperlyConfigured as exc:
        print(f"lynkr: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc


def cmd_migrate(args: argparse.Namespace) -> int:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=1 if args.verbose else 0)
    return 0


def _bootstrap() -> None:
    """First start: an admin user and one key, printed once; and the providers the environment describes."""
    from django.conf import settings

    from gateway.keys import claude_code_exports
    from gateway.services import admin_bootstrap
    from providers.services import provider_sync_from_env, routing_sync_hybrid_from_env

    synced = provider_sync_from_env(values=settings.LYNKR_PROVIDER_ENV)
    if synced:
        print(f"lynkr: providers from the environment: {', '.join(synced)}", flush=True)
    hybrid = routing_sync_hybrid_from_env(
        prefer_ollama=settings.LYNKR_PREFER_OLLAMA,
        ollama_max_tools=settings.LYNKR_OLLAMA_MAX_TOOLS,
        mid_max_tools=settings.LYNKR_OPENROUTER_MAX_TOOLS,
        fallback_provider=settings.LYNKR_FALLBACK_PROVIDER,
    )
    if hybrid:
        print(f"lynkr: hybrid routing from the environment: {', '.join(hybrid)}", flush=True)
    from workspace.services import workspace_bootstrap_from_env

    if workspace_bootstrap_from_env(root=settings.LYNKR_WORKSPACE_ROOT):
        print(f"lynkr: workspace 'default' from WORKSPACE_ROOT={settings.LYNKR_WORKSPACE_ROOT}", flush=True)
    from mcp_app.services import mcp_server_import_from_settings

    # Lynkr loads its MCP manifests at boot: rows are created or refreshed (admin-edited rows are kept).
    for report in mcp_server_import_from_settings():
        if report.created or report.updated or report.skipped or report.error:
            print(f"lynkr: MCP servers: {report.summary()}", flush=True)
    result = admin_bootstrap(username=settings.LYNKR_ADMIN_USERNAME)
    if result is None:
        return
    base = settings.LYNKR_PUBLIC_URL.rstrip("/")
    client_url = base + ("/" + settings.LYNKR_BASE_PATH.rstrip("/") if settings.LYNKR_BASE_PATH else "")
    print(
        "\n".join(
            [
                "",
                "lynkr: first start: created the admin user (shown once, note it now)",
                f"  admin URL: {base}/admin/",
                f"  username:  {result.username}",
                f"  password:  {result.password}",
                "",
                f"  API key for {result.username} (shown once):",
                f"  {result.key.secret}",
                "",
                "  Point Claude Code at the gateway:",
                *(f"    {line}" for line in claude_code_exports(base_url=client_url, secret=result.key.secret)),
                "",
            ]
        ),
        flush=True,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from django.conf import settings
    from django.db import connections

    from gateway.writebehind import writebehind_flush_all

    if args.migrate:
        cmd_migrate(args)
    _bootstrap()
    connections.close_all()
    host = args.host or settings.LYNKR_HOST
    port = args.port or settings.LYNKR_PORT
    worker: subprocess.Popen[bytes] | None = None
    if settings.LYNKR_EMBEDDED_WORKER and not args.no_worker:
        worker = subprocess.Popen([sys.executable, "-m", "lynkr_site.cli", "worker", "--embedded"])
        print(f"lynkr: started an embedded Celery worker (pid {worker.pid})", flush=True)
    from lynkr_site.serve import process_prepare, serve_daphne, serve_uvicorn

    server = args.server or settings.LYNKR_SERVER
    process_prepare()
    print(f"lynkr: serving on http://{host}:{port}/ ({server.capitalize()})", flush=True)
    run = serve_uvicorn if server == "uvicorn" else serve_daphne
    try:
        run(host, port, access_log=settings.LYNKR_ACCESS_LOG, grace=settings.LYNKR_GRACEFUL_SHUTDOWN_TIMEOUT)
    finally:
        # Shutdown: nothing buffered is lost (usage rows, last-used times).
        writebehind_flush_all()
        from gateway.accounting import usage_buffer

        flushed = usage_buffer.flush_sync()
        if flushed:
            print(f"lynkr: wrote {flushed} buffered usage record(s) at shutdown", flush=True)
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from django.conf import settings

    from lynkr_site.celery import app

    argv = ["worker", "--loglevel", args.loglevel]
    if args.embedded:
        # Beside the server on a laptop: small, and it exits with its parent.
        argv += ["--pool", "threads", "--concurrency", "2", "--hostname", f"embedded-{os.getpid()}@%h"]
        # One process on a laptop: the worker also runs the periodic schedule (usage rollup, retention).
        argv += ["--beat", "--schedule", str(settings.DATA_DIR / "celerybeat-schedule")]
    app.worker_main(argv)
    return 0


def cmd_beat(args: argparse.Namespace) -> int:
    from django.conf import settings

    from lynkr_site.celery import app

    app.start(["beat", "--loglevel", args.loglevel, "--schedule", str(settings.DATA_DIR / "celerybeat-schedule")])
    return 0


def cmd_createadmin(args: argparse.Namespace) -> int:
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    if user_model.objects.filter(username=args.username).exists():
        print(f"lynkr: user {args.username!r} already exists", file=sys.stderr)
        return 1
    password = sys.stdin.readline().strip() if args.password_stdin else secrets.token_urlsafe(18)
    if not password:
        print("lynkr: empty password on stdin", file=sys.stderr)
        return 1
    user_model.objects.create_superuser(username=args.username, email=args.email, password=password)
    print(f"created admin user {args.username}")
    if not args.password_stdin:
        print(f"password: {password}")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from gateway.selectors import apikey_list
    from gateway.services import KeyError_, apikey_create_for_username, apikey_revoke

    try:
        if args.keys_command == "create":
            issued = apikey_create_for_username(username=args.user, name=args.name, expires_days=args.expires)
            expiry = issued.expires_at.isoformat() if issued.expires_at else "never"
            print(f"created key {issued.prefix} for {issued.username} (expires: {expiry}); secret, shown once:")
            print(issued.secret)
        elif args.keys_command == "list":
            rows = apikey_list(username=args.user)
            print(f"{'PREFIX':<20} {'USER':<16} {'LABEL':<20} {'STATUS':<8} {'LAST USED':<20} EXPIRES")
            for row in rows:
                status = "revoked" if row.revoked_at else "active"
                last = row.last_used_at.strftime("%Y-%m-%d %H:%M") if row.last_used_at else "-"
                expires = row.expires_at.strftime("%Y-%m-%d %H:%M") if row.expires_at else "-"
                print(f"{row.prefix:<20} {row.username:<16} {row.name[:20]:<20} {status:<8} {last:<20} {expires}")
        elif args.keys_command == "revoke":
            prefix = apikey_revoke(prefix=args.prefix)
            print(f"revoked {prefix} (every server process refuses it within a few seconds)")
    except KeyError_ as exc:
        print(f"lynkr: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from lynkr_site.checks import run_checks

    return 0 if run_checks(reach_providers=not args.offline) else 1


def cmd_config(args: argparse.Namespace) -> int:
    """The routing configuration as YAML: export it for review, import it (GitOps); see docs/routing.md."""
    from pathlib import Path

    from providers.config_io import (
        ConfigError,
        routing_config_dump,
        routing_config_export,
        routing_config_import,
        routing_config_load,
    )

    if args.config_command == "export":
        text = routing_config_dump(routing_config_export())
        if args.output:
            Path(args.output).write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
        return 0
    try:
        # "-" reads stdin, so `lynkr config export | lynkr config import -` works in a pipe.
        source = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
        report = routing_config_import(data=routing_config_load(source), dry_run=args.dry_run, prune=args.prune)
    except OSError as exc:
        print(f"lynkr: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except ConfigError as exc:
        print(f"lynkr: routing config refused, nothing written:\n{exc}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lynkr", description="Lynkr LLM gateway")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the gateway under Daphne or uvicorn (foreground)")
    serve.add_argument("--host", help="listen address (default HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default PORT or 8080)")
    serve.add_argument("--migrate", action="store_true", help="apply migrations first")
    serve.add_argument("--no-worker", action="store_true", help="do not start the embedded Celery worker")
    serve.add_argument("--server", choices=("daphne", "uvicorn"), help="ASGI server (default LYNKR_SERVER or daphne)")
    serve.add_argument("--verbose", action="store_true")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run a Celery worker")
    worker.add_argument("--loglevel", default="info")
    worker.add_argument("--embedded", action="store_true", help=argparse.SUPPRESS)
    worker.set_defaults(func=cmd_worker)

    beat = sub.add_parser("beat", help="run the Celery beat scheduler")
    beat.add_argument("--loglevel", default="info")
    beat.set_defaults(func=cmd_beat)

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("--verbose", action="store_true")
    migrate.set_defaults(func=cmd_migrate)

    admin = sub.add_parser("createadmin", help="create an admin user (prints a generated password)")
    admin.add_argument("--username", default="admin")
    admin.add_argument("--email", default="")
    admin.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    admin.set_defaults(func=cmd_createadmin)

    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="issue a key; the secret is the last line of stdout")
    create.add_argument("--user", required=True)
    create.add_argument("--name", default="")
    create.add_argument("--expires", type=int, metavar="DAYS")
    listing = keys_sub.add_parser("list", help="list keys (prefixes only)")
    listing.add_argument("--user")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its prefix")
    revoke.add_argument("prefix")
    keys.set_defaults(func=cmd_keys)

    check = sub.add_parser("check", help="validate configuration and reach each provider")
    check.add_argument("--offline", action="store_true", help="do not contact providers")
    check.set_defaults(func=cmd_check)

    config = sub.add_parser("config", help="export or import the routing configuration as YAML")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    export = config_sub.add_parser("export", help="write providers, tiers, mappings and rules as YAML")
    export.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")
    import_ = config_sub.add_parser("import", help="apply a YAML routing configuration (one transaction)")
    import_.add_argument("file", metavar="FILE", help="the YAML file, or - for standard input")
    import_.add_argument("--dry-run", action="store_true", help="report what would change, write nothing")
    import_.add_argument("--prune", action="store_true", help="delete admin-created rows the file leaves out")
    config.set_defaults(func=cmd_config)

    from lynkr_site.cli_workspace import add_parsers as add_workspace_parsers

    add_workspace_parsers(sub)
    from lynkr_site.cli_mcp import add_parsers as add_mcp_parsers

    add_mcp_parsers(sub)
    from lynkr_site.setup_wizard import add_parsers as add_setup_parsers

    add_setup_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args: Any = build_parser().parse_args(argv)
    if getattr(args, "needs_django", True):  # `lynkr setup` may be replacing a broken .env
        _setup()
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
