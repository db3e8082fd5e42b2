"""The questions of ``lynkr setup`` in a terminal. Each answer is checked as it is given and asked again when wrong;
an unreachable provider is reported and the user decides whether to go on."""

from __future__ import annotations

import argparse
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from lynkr_site.setup_envfile import backup_path, is_secret, mask
from lynkr_site.setup_plan import (
    DEFAULT_ADMIN,
    DEFAULT_HOST,
    DEFAULT_PORT,
    Console,
    Plan,
    api_key_from,
    check_host,
    check_password,
    check_port,
    check_username,
    parse_set,
)
from lynkr_site.setup_probe import ProbeResult, ollama_detect, probe_request, probe_run
from lynkr_site.setup_providers import KINDS, ProviderChoice, ProviderKind, SetupError, provider_choice

T = TypeVar("T")
_DETECT_TIMEOUT = 2.0  # seconds: a local Ollama answers at once or is not there


def _ask(console: Console, prompt: str, default: str = "") -> str:
    answer = console.ask(f"{prompt} [{default}]: " if default else f"{prompt}: ").strip()
    return answer or default


def _confirm(console: Console, prompt: str, *, default: bool) -> bool:
    while True:
        answer = console.ask(f"{prompt} [{'Y/n' if default else 'y/N'}] ").strip().lower()
        if not answer:
            return default
        if answer in ("y", "yes"):
            return True
        if answer in ("n", "no"):
            return False
        console.say("  please answer y or n")


def _until_valid(console: Console, read: Callable[[], T]) -> T:
    while True:
        try:
            return read()
        except SetupError as exc:
            console.say(f"  {exc}")


def _pick(console: Console, prompt: str, options: Sequence[str], default: str) -> str:
    """A numbered list; the answer is a number or one of the options."""
    for number, option in enumerate(options, 1):
        console.say(f"  {number}) {option}")

    def read() -> str:
        answer = _ask(console, prompt, default)
        if answer.isdigit() and 1 <= int(answer) <= len(options):
            return options[int(answer) - 1]
        if answer in options:
            return answer
        raise SetupError(f"{answer!r} is not one of the choices")

    return _until_valid(console, read)


def _pick_kind(console: Console) -> ProviderKind:
    console.say("Providers:")
    width = max(len(name) for name in KINDS)
    for number, kind in enumerate(KINDS.values(), 1):
        console.say(f"  {number}) {kind.name:<{width}}  {kind.label}")

    def read() -> ProviderKind:
        answer = _ask(console, f"Provider (1-{len(KINDS)} or a name)").lower()
        names = list(KINDS)
        if answer.isdigit() and 1 <= int(answer) <= len(names):
            return KINDS[names[int(answer) - 1]]
        if answer in KINDS:
            return KINDS[answer]
        raise SetupError(f"{answer!r} is not one of the providers")

    return _until_valid(console, read)


def _provider_details(
    console: Console, kind: ProviderKind, *, base_url: str, models: Sequence[str], preset: argparse.Namespace | None
) -> ProviderChoice:
    """The provider's URL, key and model; ``preset`` (the flags, when they named this provider) fills what it gives."""
    if not base_url:
        hint = f" (e.g. {kind.url_example})" if not kind.url_default else ""
        default = (preset.base_url if preset else "") or kind.url_default
        base_url = _ask(console, f"{kind.url_var}{hint}", default)
        if base_url == kind.url_default:
            base_url = ""  # Lynkr's default: nothing to write
    api_key = api_key_from(preset) if preset and kind.key_var else ""
    if kind.key_var and not api_key:
        api_key = _until_valid(console, lambda: _nonempty(console.secret(f"{kind.key_var} (input hidden): ")))
    wanted = (preset.model if preset else "") or kind.model_default
    if models:
        model = _pick(console, f"{kind.model_var}", models, wanted if wanted in models else models[0])
    else:
        what = "serving endpoint name" if kind.name == "databricks" else kind.model_var
        model = _ask(console, what, wanted)
    if model == kind.model_default:
        model = ""
    return provider_choice(kind=kind.name, base_url=base_url, api_key=api_key, model=model)


def _nonempty(value: str) -> str:
    if not value.strip():
        raise SetupError("a value is needed")
    return value


def _provider(console: Console, opts: argparse.Namespace) -> ProviderChoice:
    if not opts.no_ollama_detect and not opts.provider:
        console.say(f"Looking for Ollama at {opts.ollama_url} ...")
        found = ollama_detect(opts.ollama_url, timeout=min(opts.timeout, _DETECT_TIMEOUT))
        if found is None:
            console.say("  no Ollama there")
        else:
            console.say(f"  found Ollama: {found.detail}" + ("" if found.models else " (pull one: ollama pull NAME)"))
            if _confirm(console, "Use this Ollama?", default=True):
                kind = KINDS["ollama"]
                models = found.models
                return _until_valid(
                    console,
                    lambda: _provider_details(console, kind, base_url=opts.ollama_url, models=models, preset=None),
                )
    preset = opts if opts.provider in KINDS else None
    kind = KINDS[opts.provider] if preset else _pick_kind(console)
    return _until_valid(console, lambda: _provider_details(console, kind, base_url="", models=(), preset=preset))


def _check(console: Console, choice: ProviderChoice, *, timeout: float) -> ProbeResult:
    request = probe_request(choice)
    console.say(f"Checking {choice.kind.name} at {request.url} ...")
    result = probe_run(request, timeout=timeout)
    console.say(f"  {'ok' if result.ok else 'problem'}: {result.detail}")
    return result


def interactive_plan(console: Console, opts: argparse.Namespace, *, env_path: Path) -> tuple[Plan, bool]:
    """Ask everything; returns the plan and whether an existing file may be replaced."""
    console.say(f"Lynkr setup: writes {env_path}, prepares the database, creates the admin user and a first API key.")
    console.say("Press Enter to take the value in [brackets].")
    console.say()
    force = bool(opts.force)
    if env_path.exists() and not force:
        question = f"{env_path} exists. Replace it (the old one is kept as {backup_path(env_path).name})?"
        if not _confirm(console, question, default=False):
            raise SetupError(f"nothing written: {env_path} exists")
        force = True
    while True:
        choice = _provider(console, opts)
        if opts.skip_check or _check(console, choice, timeout=opts.timeout).ok:
            break
        if _confirm(console, "Continue with these settings anyway?", default=False):
            break
        opts.provider = ""  # ask again from the start
    console.say()
    host = _until_valid(console, lambda: check_host(_ask(console, "Listen address (HOST)", opts.host or DEFAULT_HOST)))
    port = _until_valid(console, lambda: check_port(_ask(console, "Port (PORT)", str(opts.port or DEFAULT_PORT))))
    username = _until_valid(
        console, lambda: check_username(_ask(console, "Admin username", opts.admin_username or DEFAULT_ADMIN))
    )
    password = _until_valid(console, lambda: _password(console))
    plan = Plan(
        choice=choice,
        host=host,
        port=port,
        admin_username=username,
        admin_password=password or secrets.token_urlsafe(18),
        password_generated=not password,
        data_dir=opts.data_dir_abs,
        extras=parse_set(opts.set or ()),
    )
    console.say()
    console.say(f"About to write {env_path}:")
    for name, value in plan.env_values():
        console.say(f"  {name}={mask(value) if is_secret(name) else value}")
    if not _confirm(console, "Write it?", default=True):
        raise SetupError("nothing written")
    return plan, force


def _password(console: Console) -> str:
    first = console.secret("Admin password (Enter to generate one): ")
    if not first:
        return ""
    check_password(first)
    if console.secret("Repeat it: ") != first:
        raise SetupError("the two passwords differ")
    return first
