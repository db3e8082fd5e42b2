"""The whole routing configuration as one YAML document (``lynkr config export|import``), for review and GitOps.

The format is described in docs/routing.md ("Routing config as YAML"). It is declarative: a field left out of an
entry means the model default, so the export leaves defaults out and ``export | import | export`` is
byte-identical. Secrets never pass through it: a stored credential is exported as ``credential: "***"`` and an
import can only keep it or replace it with an environment variable's name. Rows from the environment
(``source: env``) are re-created at every start, so an import reports them as skipped and never touches them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any, TypeVar

import yaml
from django.db import models
from django.db.models import Prefetch

from providers.models import ModelMapping, Provider, ProviderSource, RouteTier, RoutingRule, TierTarget

FORMAT_VERSION = 1
MASK = "***"
SECTIONS = ("providers", "tiers", "mappings", "rules")
ENV = ProviderSource.ENV.value
_NO_INLINE_KEYS = (
    "secrets never go through YAML: name an environment variable with api_key_env, or set the key in admin"
)

# Key order in the file, which is also the set of keys an entry may carry.
_KEYS: dict[str, tuple[str, ...]] = {
    "providers": ("name", "source", "kind", "base_url", "auth_style", "api_key_env", "credential", "api_version",
                  "model_override", "advertised_models", "supports_count_tokens", "supports_tools",
                  "supports_images", "supports_thinking", "context_window", "max_output_tokens", "connect_timeout",
                  "read_timeout", "options", "enabled", "priority"),
    "tiers": ("name", "source", "description", "order", "long_context", "max_attempts", "targets"),
    "targets": ("provider", "upstream_model", "context_window", "max_output_tokens"),
    "mappings": ("match_type", "pattern", "user", "group", "key_prefix", "provider", "upstream_model",
                 "context_window", "max_output_tokens", "fallback_tier", "priority", "enabled"),
    "rules": ("name", "source", "tier", "order", "enabled", "user", "group", "key_prefix", "client_model",
              "min_tools", "max_tools", "min_input_tokens", "background", "thinking", "has_images", "header_name",
              "header_value"),
}  # fmt: skip
# Written even at their default: what identifies an entry and what a reviewer needs to read it.
_ALWAYS = {
    "providers": {"name", "kind", "base_url"},
    "tiers": {"name", "order", "targets"},
    "targets": {"provider"},
    "mappings": {"match_type", "provider", "priority"},
    "rules": {"name", "tier", "order"},
}
_REQUIRED = {"providers": ("name", "base_url"), "tiers": ("name",), "targets": ("provider",),
             "mappings": ("provider",), "rules": ("name", "tier")}  # fmt: skip
_MODELS: dict[str, type[models.Model]] = {
    "providers": Provider, "tiers": RouteTier, "targets": TierTarget, "mappings": ModelMapping, "rules": RoutingRule
}  # fmt: skip
# Keys that are not plain model fields: references by name, the masked credential, the nested chain.
_REFS = ("provider", "tier", "fallback_tier", "user", "group", "key_prefix")
_SPECIAL = {*_REFS, "credential", "targets"}
_FK_FIELDS = ["provider", "tier", "fallback_tier", "api_key", "user", "group"]
_SCOPE = ("user", "group", "key_prefix")

Entry = dict[str, Any]
_M = TypeVar("_M", bound=models.Model)
_Scoped = TypeVar("_Scoped", ModelMapping, RoutingRule)


class ConfigError(ValueError):
    """The file is refused; every message starts with the path of what is wrong (``tiers[1].targets[0].provider``)."""

    def __init__(self, errors: Iterable[str]) -> None:
        self.errors = tuple(errors)
        super().__init__("\n".join(self.errors))


@dataclasses.dataclass(frozen=True, slots=True)
class KindReport:
    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class ImportReport:
    providers: KindReport
    tiers: KindReport
    mappings: KindReport
    rules: KindReport
    dry_run: bool

    def summary(self) -> str:
        lines = []
        for kind in SECTIONS:
            r: KindReport = getattr(self, kind)
            counts = ", ".join(f"{len(getattr(r, a))} {a}" for a in ("created", "updated", "deleted", "skipped"))
            lines.append(f"{kind}: {counts}, {len(r.unchanged)} unchanged")
            lines += [
                f"  {a:<8} {label}" for a in ("created", "updated", "deleted", "skipped") for label in getattr(r, a)
            ]
        if self.dry_run:
            lines.append("dry run: nothing was written")
        return "\n".join(lines)


# ---- export -------------------------------------------------------------------------------------------------


def routing_config_export() -> dict[str, Any]:
    """Every provider, tier, mapping and rule, sorted by identity so two exports of one state are identical."""
    state = _State.load()
    return {
        "version": FORMAT_VERSION,
        "providers": [_strip("providers", _full("providers", p)) for _, p in sorted(state.providers.items())],
        "tiers": [_strip("tiers", _full("tiers", t)) for _, t in sorted(state.tiers.items())],
        "mappings": sorted(
            (_strip("mappings", _full("mappings", m)) for m in state.mappings),
            key=lambda e: _mapping_identity(_fill("mappings", e)),
        ),
        "rules": [_strip("rules", _full("rules", r)) for _, r in sorted(state.rules.items())],
    }


def routing_config_dump(data: dict[str, Any]) -> str:
    # Wide lines: a wrapped URL or glob is harder to review and to diff.
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True, width=4096)


def routing_config_load(text: str) -> dict[str, Any]:
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise ConfigError([f"invalid YAML: {exc}"]) from exc
    if not isinstance(data, dict):
        raise ConfigError([f"(top level): expected a mapping with version and {', '.join(SECTIONS)}"])
    return data


class _StrictLoader(yaml.SafeLoader):
    """Refuses a key given twice: YAML keeps the last silently, which a reviewer would not see."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node)
        if not isinstance(key, str | int | float | bool):
            continue  # an unhashable key: construct_mapping below names it
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


@dataclasses.dataclass(slots=True)
class _State:
    providers: dict[str, Provider]
    tiers: dict[str, RouteTier]
    mappings: list[ModelMapping]
    rules: dict[str, RoutingRule]

    @classmethod
    def load(cls) -> _State:
        chain = TierTarget.objects.select_related("provider").order_by("order", "id")
        scoped = ("api_key", "user", "group")
        return cls(
            providers={p.name: p for p in Provider.objects.all()},
            tiers={t.name: t for t in RouteTier.objects.prefetch_related(Prefetch("targets", queryset=chain))},
            mappings=list(ModelMapping.objects.select_related("provider", "fallback_tier", *scoped).order_by("id")),
            rules={r.name: r for r in RoutingRule.objects.select_related("tier", *scoped)},
        )


def _full(kind: str, row: Any) -> Entry:
    """A row as a complete entry (every key, references by name)."""
    return {key: _row_value(row, key) for key in _KEYS[kind]}


def _row_value(row: Any, key: str) -> Any:
    if key == "credential":
        return MASK if row.api_key else None
    if key == "targets":
        return [_full("targets", t) for t in row.targets.all()]
    if key == "user":
        return row.user.username if row.user else None
    if key == "key_prefix":
        return row.api_key.prefix if row.api_key else None
    if key in _REFS:
        related = getattr(row, key)
        return related.name if related else None
    if key == "options":
        return _sorted_json(row.options)
    return getattr(row, key)


def _default(kind: str, key: str) -> Any:
    if key == "targets":
        return []
    if key in _SPECIAL:
        return None
    default = _field(kind, key).get_default()
    return str(default) if isinstance(default, str) else default  # TextChoices member -> its plain value


def _field(kind: str, key: str) -> models.Field[Any, Any]:
    field = _MODELS[kind]._meta.get_field(key)
    assert isinstance(field, models.Field)
    return field


def _strip(kind: str, entry: Entry) -> Entry:
    out = {k: v for k, v in entry.items() if k in _ALWAYS[kind] or v != _default(kind, k)}
    if "targets" in out:
        out["targets"] = [_strip("targets", t) for t in out["targets"]]
    return out


def _fill(kind: str, entry: Entry) -> Entry:
    return {k: entry[k] if k in entry else _default(kind, k) for k in _KEYS[kind]}


def _mapping_identity(entry: Entry) -> tuple[str, ...]:
    return (entry["pattern"], entry["match_type"], *(entry[k] or "" for k in _SCOPE))


def _label(kind: str, entry: Entry) -> str:
    if kind != "mappings":
        return str(entry["name"])
    scope = next((f"{k} {entry[k]}" for k in _SCOPE if entry[k]), "everyone")
    return f"{entry['match_type']} {entry['pattern'] or '*'} ({scope})"


def _sorted_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_json(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_json(v) for v in value]
    return value


from providers.config_import import routing_config_import as routing_config_import  # noqa: E402
