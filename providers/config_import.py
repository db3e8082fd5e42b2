"""Importing the routing configuration YAML (``lynkr config import``): validate everything, then apply it in one
transaction. The format and the export side are in ``providers/config_io.py``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from django.contrib.auth.models import Group, User
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models, transaction

from gateway.models import ApiKey
from providers.config_io import (
    _FK_FIELDS,
    _KEYS,
    _M,
    _MODELS,
    _NO_INLINE_KEYS,
    _REFS,
    _REQUIRED,
    _SCOPE,
    _SPECIAL,
    ENV,
    FORMAT_VERSION,
    MASK,
    SECTIONS,
    ConfigError,
    Entry,
    ImportReport,
    KindReport,
    _default,
    _field,
    _full,
    _label,
    _mapping_identity,
    _Scoped,
    _sorted_json,
    _State,
)
from providers.models import ModelMapping, Provider, ProviderSource, RouteTier, RoutingRule, TierTarget

# ---- import -------------------------------------------------------------------------------------------------

ACTIONS = ("created", "updated", "deleted", "skipped", "unchanged")


@transaction.atomic
def routing_config_import(*, data: dict[str, Any], dry_run: bool = False, prune: bool = False) -> ImportReport:
    """Make the routing tables match ``data``. Everything is validated before the first write (a ConfigError lists
    every problem by path, and nothing is written); rows are matched by identity and created or updated; with
    ``prune``, admin rows the file leaves out are deleted. A dry run reports the same without writing."""
    errors = _Errors()
    parsed = _parse(data, errors)
    errors.raise_if_any()
    plan = _Plan(_State.load(), prune=prune, errors=errors)
    plan.build(parsed)
    errors.raise_if_any()
    if not dry_run:
        for op in plan.ops:
            op()
    return plan.report(dry_run=dry_run)


class _Bad(Exception):
    """A value of the wrong type; the message follows ``<path>: ``."""


class _Errors:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}")

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.items)


Parsed = dict[str, list[tuple[str, Entry]]]


def _parse(data: Any, errors: _Errors) -> Parsed:
    """Shape and types of the whole file, each entry filled with defaults; references are resolved later."""
    parsed: Parsed = {kind: [] for kind in SECTIONS}
    if not isinstance(data, dict):
        errors.add("(top level)", f"expected a mapping with version and {', '.join(SECTIONS)}")
        return parsed
    for key in data:
        if key != "version" and key not in SECTIONS:
            errors.add(str(key), f"unknown key (expected version, {', '.join(SECTIONS)})")
    version = data.get("version")
    if "version" not in data:
        errors.add("version", f"required ({FORMAT_VERSION})")
    elif isinstance(version, bool) or version != FORMAT_VERSION:
        errors.add("version", f"expected {FORMAT_VERSION}, got {_describe(version)}")
    for kind in SECTIONS:
        items = data.get(kind)
        if items is None:
            continue  # an absent section is an empty one (and --prune then empties that table)
        if not isinstance(items, list):
            errors.add(kind, f"expected a list, got {_describe(items)}")
            continue
        for i, item in enumerate(items):
            entry = _parse_entry(kind, item, f"{kind}[{i}]", errors)
            if entry is not None:
                parsed[kind].append((f"{kind}[{i}]", entry))
    _check_identities(parsed, errors)
    return parsed


def _parse_entry(kind: str, item: Any, path: str, errors: _Errors) -> Entry | None:
    if not isinstance(item, dict):
        errors.add(path, f"expected a mapping, got {_describe(item)}")
        return None
    before = len(errors.items)
    for key in item:
        if key not in _KEYS[kind]:
            hint = f" ({_NO_INLINE_KEYS})" if kind == "providers" and key == "api_key" else ""
            errors.add(f"{path}.{key}", f"unknown key{hint}")
    entry: Entry = {}
    for key in _KEYS[kind]:
        value = item.get(key)
        if key in _REQUIRED[kind] and value in (None, ""):
            errors.add(f"{path}.{key}", "required")
        elif key not in item:
            entry[key] = _default(kind, key)
        elif key == "targets":
            if not isinstance(value, list):
                errors.add(f"{path}.targets", f"expected a list, got {_describe(value)}")
                continue
            entry[key] = [_parse_entry("targets", t, f"{path}.targets[{i}]", errors) for i, t in enumerate(value)]
        else:
            try:
                entry[key] = _coerce(kind, key, value)
            except _Bad as exc:
                errors.add(f"{path}.{key}", str(exc))
    if len(errors.items) > before:
        return None
    # What the model itself checks (choices, lengths, the URL, slugs, clean()), so the file cannot store a row
    # that admin would refuse.
    fields = {k: v for k, v in entry.items() if k not in _SPECIAL}
    try:
        _MODELS[kind](**fields).full_clean(exclude=_FK_FIELDS, validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.add(path if field == NON_FIELD_ERRORS else f"{path}.{field}", " ".join(messages))
        return None
    return entry


def _coerce(kind: str, key: str, value: Any) -> Any:
    if key == "credential":
        if value is None or value == MASK:
            return value
        raise _Bad(f"only {MASK!r} (keep the stored key) is accepted; {_NO_INLINE_KEYS}")
    if key in _REFS:
        if value is None or (isinstance(value, str) and value):
            return value
        raise _Bad(f"expected a name, got {_describe(value)}")
    if key == "source" and value not in ProviderSource.values:
        # Checked here: Django skips the validation of a non-editable field.
        raise _Bad(f"expected one of {', '.join(ProviderSource.values)}, got {_describe(value)}")
    field = _field(kind, key)
    if isinstance(field, models.BooleanField):
        expected, ok = "true or false", isinstance(value, bool)
    elif isinstance(field, models.FloatField):
        expected, ok = "a number", isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value  # 30 and 30.0 are one value; export writes 30.0
    elif isinstance(field, models.IntegerField):
        expected, ok = "an integer", isinstance(value, int) and not isinstance(value, bool)
    elif key == "advertised_models":
        expected, ok = "a list of strings", isinstance(value, list) and all(isinstance(v, str) for v in value)
    elif key == "options":
        expected, ok = "a mapping of JSON values", isinstance(value, dict) and _is_json(value)
        value = _sorted_json(value)
    else:
        expected, ok = "a string", isinstance(value, str)
    if value is None and field.null:
        return None
    if not ok:
        raise _Bad(f"expected {expected}{' or null' if field.null else ''}, got {_describe(value)}")
    return value


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        # YAML reads an unquoted 2023-06-01 as a date.
        return f"a date (quote it: '{value.isoformat()}')"
    if isinstance(value, int | float | str):
        kind = "string" if isinstance(value, str) else "number" if isinstance(value, float) else "integer"
        return f"{kind} {value!r}"
    return "a list" if isinstance(value, list) else "a mapping" if isinstance(value, dict) else type(value).__name__


def _is_json(value: Any) -> bool:
    if value is None or isinstance(value, str | int | float | bool):
        return True
    if isinstance(value, list):
        return all(_is_json(v) for v in value)
    return isinstance(value, dict) and all(isinstance(k, str) and _is_json(v) for k, v in value.items())


def _check_identities(parsed: Parsed, errors: _Errors) -> None:
    for kind in ("providers", "tiers", "rules"):
        names: dict[str, str] = {}
        for path, entry in parsed[kind]:
            if entry["name"] in names:
                errors.add(f"{path}.name", f"duplicate {entry['name']!r} (also {names[entry['name']]})")
            names.setdefault(entry["name"], path)
    identities: dict[tuple[str, ...], str] = {}
    for path, entry in parsed["mappings"]:
        if sum(entry[k] is not None for k in _SCOPE) > 1:
            errors.add(path, "scope a mapping to at most one of user, group, key_prefix")
        identity = _mapping_identity(entry)
        if identity in identities:
            errors.add(path, f"duplicate mapping: same match_type, pattern and scope as {identities[identity]}")
        identities.setdefault(identity, path)


class _Plan:
    """Compares the parsed file with the tables; collects the report and the writes (run only when not dry)."""

    def __init__(self, state: _State, *, prune: bool, errors: _Errors) -> None:
        self.state, self.prune, self.errors = state, prune, errors
        self.ops: list[Callable[[], None]] = []
        self.deletes: list[Callable[[], None]] = []
        self.actions = {kind: {a: list[str]() for a in ACTIONS} for kind in SECTIONS}
        self.providers: dict[str, Provider] = dict(state.providers)  # by name, including rows the ops create
        self.tiers: dict[str, RouteTier] = dict(state.tiers)
        self.scopes: dict[str, dict[str, Any]] = {}

    def build(self, parsed: Parsed) -> None:
        known_providers = self._known(parsed["providers"], self.state.providers)
        known_tiers = self._known(parsed["tiers"], self.state.tiers)
        wanted = {k: {e[k] for kind in ("mappings", "rules") for _, e in parsed[kind] if e[k]} for k in _SCOPE}
        self.scopes = {
            "user": {u.username: u for u in User.objects.filter(username__in=wanted["user"])},
            "group": {g.name: g for g in Group.objects.filter(name__in=wanted["group"])},
            "key_prefix": {k.prefix: k for k in ApiKey.objects.filter(prefix__in=wanted["key_prefix"])},
        }
        for path, entry in parsed["providers"]:
            row = self.state.providers.get(entry["name"])
            if not self._skipped("providers", entry, row):
                self._provider(path, entry, row)
        for path, entry in parsed["tiers"]:
            row_t = self.state.tiers.get(entry["name"])
            if not self._skipped("tiers", entry, row_t):
                for i, target in enumerate(entry["targets"]):
                    self._ref(f"{path}.targets[{i}].provider", "provider", target["provider"], known_providers)
                self._upsert("tiers", entry, row_t, self._write_tier)
        by_identity: dict[tuple[str, ...], ModelMapping] = {}
        for m in reversed(self.state.mappings):  # duplicates in the table: the oldest row is the one matched
            by_identity[_mapping_identity(_full("mappings", m))] = m
        matched: set[int] = set()
        for path, entry in parsed["mappings"]:
            self._ref(f"{path}.provider", "provider", entry["provider"], known_providers)
            self._ref(f"{path}.fallback_tier", "tier", entry["fallback_tier"], known_tiers)
            self._scope_refs(path, entry)
            row_m = by_identity.get(_mapping_identity(entry))
            matched.add(row_m.pk if row_m is not None else 0)
            self._upsert("mappings", entry, row_m, self._write_mapping)
        for path, entry in parsed["rules"]:
            row_r = self.state.rules.get(entry["name"])
            if not self._skipped("rules", entry, row_r):
                self._ref(f"{path}.tier", "tier", entry["tier"], known_tiers)
                self._scope_refs(path, entry)
                self._upsert("rules", entry, row_r, self._write_rule)
        if self.prune:
            self._prune(parsed, unmatched=[m for m in self.state.mappings if m.pk not in matched])
        self.ops += self.deletes  # last: a row the file moves off a pruned row must be moved before the delete

    def _known(self, entries: list[tuple[str, Entry]], rows: dict[str, Any]) -> set[str]:
        """Names the file may refer to: its own entries and the rows that stay."""
        in_file = {e["name"] for _, e in entries}
        kept = {n for n, row in rows.items() if not self.prune or row.source == ENV or n in in_file}
        return kept | {e["name"] for _, e in entries if e["source"] != ENV}

    def _skipped(self, kind: str, entry: Entry, row: Any) -> bool:
        # Environment rows are re-created at every start: an import neither changes nor shadows them.
        if entry["source"] == ENV or (row is not None and row.source == ENV):
            self.actions[kind]["skipped"].append(f"{entry['name']} (source: env)")
            return True
        return False

    def _ref(self, path: str, what: str, name: str | None, known: Iterable[str]) -> None:
        if name is not None and name not in known:
            self.errors.add(path, f"unknown {what} {name!r}")

    def _scope_refs(self, path: str, entry: Entry) -> None:
        for key, what in (("user", "user"), ("group", "group"), ("key_prefix", "API key prefix")):
            self._ref(f"{path}.{key}", what, entry[key], self.scopes[key])

    def _provider(self, path: str, entry: Entry, row: Provider | None) -> None:
        stored = row is not None and bool(row.api_key)
        if entry["credential"] == MASK and entry["api_key_env"]:
            self.errors.add(f"{path}.credential", "give api_key_env or a stored credential ('***'), not both")
        elif entry["credential"] == MASK and row is None:
            self.errors.add(
                f"{path}.credential", f"new provider {entry['name']!r} has no stored key; {_NO_INLINE_KEYS}"
            )
        elif entry["credential"] == MASK and not stored:
            self.errors.add(
                f"{path}.credential", f"provider {entry['name']!r} has no stored key here; {_NO_INLINE_KEYS}"
            )
        elif stored and not entry["api_key_env"]:
            entry = {**entry, "credential": MASK}  # kept: only naming a variable replaces a stored key
        self._upsert("providers", entry, row, self._write_provider)

    def _upsert(self, kind: str, entry: Entry, row: Any, write: Callable[[Any, Entry], None]) -> None:
        action = "created" if row is None else "unchanged" if _full(kind, row) == entry else "updated"
        self.actions[kind][action].append(_label(kind, entry))
        if action != "unchanged":
            self.ops.append(lambda: write(row, entry))

    def _prune(self, parsed: Parsed, *, unmatched: list[ModelMapping]) -> None:
        in_file = {kind: {e["name"] for _, e in parsed[kind]} for kind in ("providers", "tiers", "rules")}
        env_chains = {
            t.provider.name for tier in self.state.tiers.values() if tier.source == ENV for t in tier.targets.all()
        }
        doomed: list[tuple[str, str, Any]] = [("rules", n, r) for n, r in sorted(self.state.rules.items())]
        doomed += [("mappings", _label("mappings", _full("mappings", m)), m) for m in unmatched]
        doomed += [("tiers", n, t) for n, t in sorted(self.state.tiers.items())]
        doomed += [("providers", n, p) for n, p in sorted(self.state.providers.items())]
        for kind, label, row in doomed:
            if kind != "mappings" and (row.source == ENV or label in in_file[kind]):
                continue
            if kind == "providers" and label in env_chains:
                # Deleting it would cut an environment tier's chain, which the import must not change.
                self.actions[kind]["skipped"].append(f"{label} (used by an environment tier)")
                continue
            self.actions[kind]["deleted"].append(label)
            self.deletes.append(row.delete)

    def _write_provider(self, row: Provider | None, entry: Entry) -> None:
        provider = _assign(row or Provider(source=ProviderSource.ADMIN), "providers", entry)
        if provider.api_key_env:
            provider.api_key = ""  # the named variable replaces the stored key (Provider.clean: not both)
        provider.save()
        self.providers[provider.name] = provider

    def _write_tier(self, row: RouteTier | None, entry: Entry) -> None:
        before = _full("tiers", row)["targets"] if row is not None else None
        tier = _assign(row or RouteTier(source=ProviderSource.ADMIN), "tiers", entry)
        tier.save()
        self.tiers[tier.name] = tier
        if before != entry["targets"]:
            tier.targets.all().delete()
            for order, target in enumerate(entry["targets"]):
                chained = _assign(TierTarget(tier=tier, order=order), "targets", target)
                chained.provider = self.providers[target["provider"]]
                chained.save()

    def _write_mapping(self, row: ModelMapping | None, entry: Entry) -> None:
        mapping = self._scoped(_assign(row or ModelMapping(), "mappings", entry), entry)
        mapping.provider = self.providers[entry["provider"]]
        mapping.fallback_tier = self.tiers[entry["fallback_tier"]] if entry["fallback_tier"] else None
        mapping.save()

    def _write_rule(self, row: RoutingRule | None, entry: Entry) -> None:
        rule = self._scoped(_assign(row or RoutingRule(source=ProviderSource.ADMIN), "rules", entry), entry)
        rule.tier = self.tiers[entry["tier"]]
        rule.save()

    def _scoped(self, row: _Scoped, entry: Entry) -> _Scoped:
        row.user = self.scopes["user"][entry["user"]] if entry["user"] else None
        row.group = self.scopes["group"][entry["group"]] if entry["group"] else None
        row.api_key = self.scopes["key_prefix"][entry["key_prefix"]] if entry["key_prefix"] else None
        return row

    def report(self, *, dry_run: bool) -> ImportReport:
        kinds = {k: KindReport(**{a: tuple(sorted(v)) for a, v in acts.items()}) for k, acts in self.actions.items()}
        return ImportReport(kinds["providers"], kinds["tiers"], kinds["mappings"], kinds["rules"], dry_run=dry_run)


def _assign(row: _M, kind: str, entry: Entry) -> _M:
    for key, value in entry.items():
        if key not in _SPECIAL and key != "source":
            setattr(row, key, value)
    return row
