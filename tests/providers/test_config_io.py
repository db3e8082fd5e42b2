"""The routing configuration as YAML: export, import (dry run, prune), validation by path, secrets kept out."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.contrib.auth.models import Group, User

from gateway.models import ApiKey
from gateway.services import apikey_create
from providers.config_io import (
    ConfigError,
    ImportReport,
    KindReport,
    routing_config_dump,
    routing_config_export,
    routing_config_import,
    routing_config_load,
)
from providers.models import ModelMapping, Provider, ProviderSource, RouteTier, RoutingRule, TierTarget
from tests.e2e.server import LynkrServer

SECRET = "sk-ant-api03-the-stored-secret"
ENV = ProviderSource.ENV

# A hand-written file, in the exact form `lynkr config export` writes (sorted by name, defaults left out).
CANONICAL = """\
version: 1
providers:
- name: alpha
  kind: anthropic
  base_url: https://alpha.example
  api_key_env: ALPHA_KEY
  advertised_models:
  - claude-sonnet-5
  read_timeout: 30.0
  options:
    a: 1
    z:
      b: 2
      c: 3
- name: beta
  kind: openai_chat
  base_url: http://beta:8000
  auth_style: bearer
  supports_tools: false
  priority: 50
tiers:
- name: fast
  order: 10
  targets:
  - provider: beta
    upstream_model: small
- name: heavy
  order: 30
  long_context: true
  targets:
  - provider: alpha
    upstream_model: big
    context_window: 200000
  - provider: beta
mappings:
- match_type: any
  provider: beta
  priority: 100
- match_type: exact
  pattern: claude-sonnet-5
  provider: alpha
  fallback_tier: fast
  priority: 10
rules:
- name: many-tools
  tier: heavy
  order: 10
  min_tools: 5
- name: no-images
  tier: fast
  order: 20
  enabled: false
  has_images: false
  header_name: x-tenant
  header_value: team-*
"""


def base() -> dict[str, Any]:
    return routing_config_load(CANONICAL)


def export_text() -> str:
    return routing_config_dump(routing_config_export())


def names(report: ImportReport, kind: str, action: str) -> tuple[str, ...]:
    result: tuple[str, ...] = getattr(getattr(report, kind), action)
    return result


@pytest.fixture
def populated(db: None) -> dict[str, Any]:
    """Every kind of row, with scopes, a stored key, an environment provider and an environment tier/rule."""
    alice = User.objects.create_user(username="alice")
    team = Group.objects.create(name="backend")
    key = apikey_create(user=alice, name="ci")
    stored = Provider.objects.create(
        name="main", base_url="https://api.anthropic.com", api_key=SECRET, options={"z": 1, "a": {"y": 2, "b": 1}}
    )
    router = Provider.objects.create(
        name="router", kind="openai_chat", base_url="https://openrouter.ai/api", api_key_env="OPENROUTER_KEY"
    )
    envp = Provider.objects.create(
        name="azure-anthropic", base_url="https://res.example/anthropic", api_key_env="AZURE_KEY", source=ENV
    )
    fast = RouteTier.objects.create(name="fast", order=10)
    TierTarget.objects.create(tier=fast, provider=router, upstream_model="gpt-4o-mini", order=5)
    TierTarget.objects.create(tier=fast, provider=stored, upstream_model="claude-haiku", order=9)
    heavy = RouteTier.objects.create(name="heavy", order=30, long_context=True)
    TierTarget.objects.create(tier=heavy, provider=stored, upstream_model="claude-opus", context_window=200000)
    hybrid = RouteTier.objects.create(name="hybrid-local", order=5, source=ENV)
    TierTarget.objects.create(tier=hybrid, provider=envp)
    RoutingRule.objects.create(name="hybrid-local", order=5, tier=hybrid, max_tools=2, source=ENV)
    ModelMapping.objects.create(pattern="claude-sonnet-5", provider=stored, priority=50)
    ModelMapping.objects.create(match_type="glob", pattern="claude-*haiku*", provider=router, group=team)
    ModelMapping.objects.create(match_type="any", provider=stored, user=alice, fallback_tier=fast)
    ModelMapping.objects.create(pattern="claude-sonnet-5", provider=router, api_key_id=_key_id(key.prefix))
    RoutingRule.objects.create(name="many-tools", order=10, tier=heavy, min_tools=5)
    RoutingRule.objects.create(name="alice-thinks", order=20, tier=heavy, thinking=True, user=alice)
    return {"prefix": key.prefix, "alice": alice}


def _key_id(prefix: str) -> int:
    return ApiKey.objects.get(prefix=prefix).pk


# ---- export ---------------------------------------------------------------------------------------------------


def test_export_is_sorted_masked_and_names_references(populated: dict[str, Any]) -> None:
    text = export_text()
    assert SECRET not in text and "api_key:" not in text
    data = yaml.safe_load(text)
    assert [p["name"] for p in data["providers"]] == ["azure-anthropic", "main", "router"]
    main = data["providers"][1]
    assert list(main)[:3] == ["name", "kind", "base_url"]
    assert main["credential"] == "***"
    assert list(main["options"]) == ["a", "z"] and list(main["options"]["a"]) == ["b", "y"]
    assert "enabled" not in main and "priority" not in main  # defaults are left out
    assert data["providers"][0]["source"] == "env" and "source" not in main
    assert data["providers"][2]["api_key_env"] == "OPENROUTER_KEY" and "credential" not in data["providers"][2]
    fast = next(t for t in data["tiers"] if t["name"] == "fast")
    assert fast["targets"] == [
        {"provider": "router", "upstream_model": "gpt-4o-mini"},
        {"provider": "main", "upstream_model": "claude-haiku"},
    ]  # the chain in its order; the order numbers themselves are not exported
    by_pattern = [(m["match_type"], m.get("pattern"), m["provider"]) for m in data["mappings"]]
    assert by_pattern == [  # sorted by identity: pattern, match type, scope
        ("any", None, "main"),
        ("glob", "claude-*haiku*", "router"),
        ("exact", "claude-sonnet-5", "main"),
        ("exact", "claude-sonnet-5", "router"),
    ]
    assert data["mappings"][0] == {
        "match_type": "any", "user": "alice", "provider": "main", "fallback_tier": "fast", "priority": 100
    }  # fmt: skip
    assert data["mappings"][1]["group"] == "backend"
    assert data["mappings"][3]["key_prefix"] == populated["prefix"]
    rules = {r["name"]: r for r in data["rules"]}
    assert rules["alice-thinks"] == {
        "name": "alice-thinks", "tier": "heavy", "order": 20, "user": "alice", "thinking": True
    }  # fmt: skip
    assert rules["hybrid-local"]["source"] == "env"


def test_export_import_export_is_byte_identical(populated: dict[str, Any]) -> None:
    first = export_text()
    report = routing_config_import(data=routing_config_load(first))
    assert report.providers.unchanged == ("main", "router")
    for kind in ("providers", "tiers", "mappings", "rules"):
        assert names(report, kind, "created") == names(report, kind, "updated") == ()
    assert names(report, "providers", "skipped") == ("azure-anthropic (source: env)",)
    assert export_text() == first
    assert Provider.objects.get(name="main").api_key == SECRET


@pytest.mark.django_db
def test_import_into_an_empty_database_reproduces_the_file() -> None:
    report = routing_config_import(data=base())
    assert report.providers.created == ("alpha", "beta")
    assert report.tiers.created == ("fast", "heavy")
    assert report.mappings.created == ("any * (everyone)", "exact claude-sonnet-5 (everyone)")
    assert report.rules.created == ("many-tools", "no-images")
    assert export_text() == CANONICAL
    chain = TierTarget.objects.filter(tier__name="heavy").order_by("order")
    assert [(t.provider.name, t.order) for t in chain] == [("alpha", 0), ("beta", 1)]


def test_the_example_in_the_docs_is_an_export(db: None) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs/routing.md").read_text()
    example = text.split("### Format\n\n```yaml\n", 1)[1].split("```", 1)[0]
    alice = User.objects.create_user(username="alice")
    Group.objects.create(name="backend")
    ApiKey.objects.create(user=alice, prefix="sk-lynkr-3f9a1c2b", key_hash="0" * 64)
    Provider.objects.create(name="main", base_url="https://api.anthropic.com", api_key=SECRET)
    Provider.objects.create(
        name="azure-anthropic",
        source=ENV,
        base_url="https://res.services.ai.azure.com/anthropic/v1/messages",
        api_key_env="AZURE_ANTHROPIC_API_KEY",
        supports_thinking=True,
        priority=10,
    )
    report = routing_config_import(data=routing_config_load(example))
    assert report.providers.skipped == ("azure-anthropic (source: env)",)
    assert export_text() == re.sub(r" +#.*", "", example)


# ---- import -----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_import_updates_in_place_and_reports_each_change() -> None:
    routing_config_import(data=base())
    alpha_id = Provider.objects.get(name="alpha").pk
    data = base()
    data["providers"][1]["priority"] = 5
    data["providers"].append({"name": "gamma", "kind": "ollama", "base_url": "http://ollama:11434"})
    data["tiers"][1]["targets"].reverse()
    data["mappings"][1]["upstream_model"] = "claude-sonnet-4-5"
    data["rules"][0]["min_tools"] = 8
    report = routing_config_import(data=data)
    assert report.providers == KindReport(created=("gamma",), updated=("beta",), unchanged=("alpha",))
    assert report.tiers.updated == ("heavy",) and report.tiers.unchanged == ("fast",)
    assert report.mappings.updated == ("exact claude-sonnet-5 (everyone)",)
    assert report.rules.updated == ("many-tools",)
    assert Provider.objects.get(name="alpha").pk == alpha_id  # matched by name, not re-created
    chain = TierTarget.objects.filter(tier__name="heavy").order_by("order")
    assert [t.provider.name for t in chain] == ["beta", "alpha"]
    assert ModelMapping.objects.get(pattern="claude-sonnet-5").upstream_model == "claude-sonnet-4-5"
    assert RoutingRule.objects.get(name="many-tools").min_tools == 8
    assert "providers: 1 created, 1 updated, 0 deleted, 0 skipped, 1 unchanged" in report.summary()


@pytest.mark.django_db
def test_dry_run_writes_nothing() -> None:
    report = routing_config_import(data=base(), dry_run=True)
    assert report.providers.created == ("alpha", "beta") and report.dry_run
    assert report.summary().endswith("dry run: nothing was written")
    assert not Provider.objects.exists() and not RouteTier.objects.exists() and not ModelMapping.objects.exists()
    routing_config_import(data=base())
    data = base()
    del data["rules"][1]
    data["providers"][0]["priority"] = 1
    before = export_text()
    report = routing_config_import(data=data, dry_run=True, prune=True)
    assert report.rules.deleted == ("no-images",) and report.providers.updated == ("alpha",)
    assert export_text() == before


def test_prune_deletes_admin_rows_left_out_and_spares_the_environment(populated: dict[str, Any]) -> None:
    data = routing_config_load(export_text())
    data["providers"] = [p for p in data["providers"] if p.get("source") == "env"]  # main and router left out
    data["tiers"] = [t for t in data["tiers"] if t.get("source") == "env"]
    data["mappings"] = []
    data["rules"] = [r for r in data["rules"] if r.get("source") == "env"]
    kept = routing_config_import(data=data)  # without --prune nothing is deleted
    assert all(not names(kept, k, "deleted") for k in ("providers", "tiers", "mappings", "rules"))
    assert Provider.objects.count() == 3

    report = routing_config_import(data=data, prune=True)
    assert report.providers.deleted == ("main", "router")
    assert report.tiers.deleted == ("fast", "heavy")
    assert len(report.mappings.deleted) == 4
    assert report.rules.deleted == ("alice-thinks", "many-tools")
    assert list(Provider.objects.values_list("name", flat=True)) == ["azure-anthropic"]
    assert list(RouteTier.objects.values_list("name", flat=True)) == ["hybrid-local"]
    assert list(RoutingRule.objects.values_list("name", flat=True)) == ["hybrid-local"]
    assert TierTarget.objects.filter(tier__name="hybrid-local").count() == 1


@pytest.mark.django_db
def test_prune_spares_an_admin_provider_an_environment_tier_uses() -> None:
    routing_config_import(data=base())
    hybrid = RouteTier.objects.create(name="hybrid-heavy", source=ENV)
    TierTarget.objects.create(tier=hybrid, provider=Provider.objects.get(name="beta"))
    report = routing_config_import(data={"version": 1}, prune=True)
    assert report.providers.deleted == ("alpha",)
    assert report.providers.skipped == ("beta (used by an environment tier)",)
    assert TierTarget.objects.filter(tier=hybrid).exists()


def test_environment_rows_are_skipped_not_modified(populated: dict[str, Any]) -> None:
    data = routing_config_load(export_text())
    envp = next(p for p in data["providers"] if p["name"] == "azure-anthropic")
    envp["base_url"] = "https://elsewhere.example"
    del envp["source"]  # even presented as an admin entry, the environment's row is not the file's to change
    next(r for r in data["rules"] if r["name"] == "hybrid-local")["max_tools"] = 9
    report = routing_config_import(data=data, prune=True)
    assert report.providers.skipped == ("azure-anthropic (source: env)",)
    assert report.rules.skipped == ("hybrid-local (source: env)",)
    assert report.tiers.skipped == ("hybrid-local (source: env)",)
    row = Provider.objects.get(name="azure-anthropic")
    assert row.base_url == "https://res.example/anthropic" and row.source == ENV
    assert RoutingRule.objects.get(name="hybrid-local").max_tools == 2


@pytest.mark.django_db
def test_an_env_entry_with_no_row_here_is_skipped_and_not_a_valid_target() -> None:
    data = base()
    data["providers"].append({"name": "ollama", "source": "env", "kind": "ollama", "base_url": "http://o:11434"})
    report = routing_config_import(data=data)
    assert report.providers.skipped == ("ollama (source: env)",)
    assert not Provider.objects.filter(name="ollama").exists()
    data["tiers"][0]["targets"].append({"provider": "ollama"})
    with pytest.raises(ConfigError, match=r"tiers\[0\]\.targets\[1\]\.provider: unknown provider 'ollama'"):
        routing_config_import(data=data)


# ---- secrets ----------------------------------------------------------------------------------------------------


def test_stored_key_is_kept_unless_a_variable_is_named(populated: dict[str, Any]) -> None:
    data = routing_config_load(export_text())
    main = next(p for p in data["providers"] if p["name"] == "main")
    del main["credential"]
    assert routing_config_import(data=data).providers.updated == ()
    assert Provider.objects.get(name="main").api_key == SECRET

    main["api_key_env"] = "MAIN_KEY"
    assert routing_config_import(data=data).providers.updated == ("main",)
    row = Provider.objects.get(name="main")
    assert row.api_key == "" and row.api_key_env == "MAIN_KEY"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"api_key": SECRET},
            "providers[2].api_key: unknown key (secrets never go through YAML: name an environment variable",
        ),
        ({"credential": SECRET}, "providers[2].credential: only '***' (keep the stored key) is accepted"),
        ({"credential": "***"}, "providers[2].credential: new provider 'gamma' has no stored key; secrets never"),
    ],
)
def test_a_key_in_the_file_is_refused(entry: dict[str, Any], message: str) -> None:
    data = base()
    data["providers"].append({"name": "gamma", "base_url": "https://g.example", **entry})
    with pytest.raises(ConfigError) as caught:
        routing_config_import(data=data)
    assert message in str(caught.value)
    assert SECRET not in str(caught.value)
    assert not Provider.objects.exists()


# ---- validation -------------------------------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    """A mutation of base(): ``tiers.1.targets.0.provider`` = value."""

    def mutate(data: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node: Any = data
        for part in parents:
            node = node[part]
        node[last] = value

    return mutate


def _append(section: str, entry: dict[str, Any]) -> Mutation:
    return lambda data: data[section].append(entry)


VALIDATION_CASES: list[tuple[Mutation, str]] = [
    (_set("extra", 1), "extra: unknown key (expected version, providers, tiers, mappings, rules)"),
    (lambda d: d.pop("version"), "version: required (1)"),
    (_set("version", 2), "version: expected 1, got integer 2"),
    (_set("providers", {"alpha": {}}), "providers: expected a list, got a mapping"),
    (_set("providers.0", "alpha"), "providers[0]: expected a mapping, got string 'alpha'"),
    (_set("providers.0.colour", "red"), "providers[0].colour: unknown key"),
    (_set("providers.1.priority", "high"), "providers[1].priority: expected an integer, got string 'high'"),
    (_set("providers.1.priority", True), "providers[1].priority: expected an integer, got true"),
    (_set("providers.1.enabled", None), "providers[1].enabled: expected true or false, got null"),
    (_set("providers.0.read_timeout", "30s"), "providers[0].read_timeout: expected a number or null, got string"),
    (_set("providers.0.advertised_models", "m"), "providers[0].advertised_models: expected a list of strings"),
    (_set("providers.0.options", [1]), "providers[0].options: expected a mapping of JSON values, got a list"),
    (_set("providers.0.kind", "grpc"), "providers[0].kind: Value 'grpc' is not a valid choice."),
    (_set("providers.0.base_url", "ftp://x"), "providers[0].base_url: Enter an http:// or https:// URL"),
    (_set("providers.0.name", "no spaces"), "providers[0].name: Enter a valid “slug”"),
    (_set("providers.0.name", None), "providers[0].name: required"),
    (_set("providers.0.source", "cloud"), "providers[0].source: expected one of env, admin, got string 'cloud'"),
    (_set("providers.1.name", "alpha"), "providers[1].name: duplicate 'alpha' (also providers[0])"),
    (_set("tiers.1.targets.0.provider", "x"), "tiers[1].targets[0].provider: unknown provider 'x'"),
    (_set("tiers.1.targets.1.weight", 3), "tiers[1].targets[1].weight: unknown key"),
    (_set("tiers.1.targets.1.provider", 7), "tiers[1].targets[1].provider: expected a name, got integer 7"),
    (_set("tiers.0.targets", "beta"), "tiers[0].targets: expected a list, got string 'beta'"),
    (_set("tiers.0.max_attempts", -1), "tiers[0].max_attempts: Ensure this value is greater than or equal to 0."),
    (_set("mappings.1.fallback_tier", "nope"), "mappings[1].fallback_tier: unknown tier 'nope'"),
    (_set("mappings.1.user", "bob"), "mappings[1].user: unknown user 'bob'"),
    (_set("mappings.1.group", "ops"), "mappings[1].group: unknown group 'ops'"),
    (_set("mappings.1.key_prefix", "sk-lynkr-zz"), "mappings[1].key_prefix: unknown API key prefix 'sk-lynkr-zz'"),
    (_set("mappings.1.pattern", ""), "mappings[1].pattern: A pattern is needed unless the match type is"),
    (_set("mappings.1.match_type", "regex"), "mappings[1].match_type: Value 'regex' is not a valid choice."),
    (_append("mappings", {"match_type": "any", "provider": "alpha"}), "mappings[2]: duplicate mapping"),
    (
        _append("mappings", {"match_type": "any", "provider": "alpha", "user": "a", "group": "b"}),
        "mappings[2]: scope a mapping to at most one of user, group, key_prefix",
    ),
    (_set("rules.0.tier", "x"), "rules[0].tier: unknown tier 'x'"),
    (_set("rules.0.tier", None), "rules[0].tier: required"),
    (_set("rules.0.max_tools", 1), "rules[0].max_tools: Must be at least min_tools."),
    (_set("rules.1.background", "yes"), "rules[1].background: expected true or false or null, got string 'yes'"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("mutate", "message"), VALIDATION_CASES, ids=[m for _, m in VALIDATION_CASES])
def test_every_validation_error_names_its_path(mutate: Mutation, message: str) -> None:
    data = base()
    mutate(data)
    with pytest.raises(ConfigError) as caught:
        routing_config_import(data=data)
    assert message in str(caught.value), str(caught.value)
    assert not Provider.objects.exists() and not RouteTier.objects.exists()  # nothing written


@pytest.mark.django_db
def test_all_errors_are_reported_at_once_and_nothing_is_written_on_update() -> None:
    routing_config_import(data=base())
    before = export_text()
    data = base()
    data["providers"][1]["priority"] = 1  # a valid change that must not land
    data["tiers"][0]["targets"][0]["provider"] = "x"
    data["rules"][1]["tier"] = "y"
    with pytest.raises(ConfigError) as caught:
        routing_config_import(data=data)
    assert caught.value.errors == (
        "tiers[0].targets[0].provider: unknown provider 'x'",
        "rules[1].tier: unknown tier 'y'",
    )
    assert export_text() == before


@pytest.mark.django_db
def test_prune_makes_rows_outside_the_file_unknown_references() -> None:
    routing_config_import(data=base())
    data = base()
    del data["providers"][1]  # beta stays referenced by tiers and a mapping
    assert routing_config_import(data=data, dry_run=True).providers.deleted == ()
    with pytest.raises(ConfigError, match=r"tiers\[0\]\.targets\[0\]\.provider: unknown provider 'beta'"):
        routing_config_import(data=data, prune=True)


def test_yaml_loading_errors() -> None:
    with pytest.raises(ConfigError, match="invalid YAML"):
        routing_config_load("providers: [")
    with pytest.raises(ConfigError, match="duplicate key 'priority'"):
        routing_config_load("version: 1\nproviders:\n- name: a\n  priority: 1\n  priority: 2\n")
    with pytest.raises(ConfigError, match=r"\(top level\): expected a mapping"):
        routing_config_load("- a\n")


@pytest.mark.django_db
def test_an_unquoted_date_gets_a_hint() -> None:
    data = routing_config_load(CANONICAL.replace("  api_key_env: ALPHA_KEY\n", "  api_version: 2023-06-01\n"))
    with pytest.raises(ConfigError, match=r"providers\[0\]\.api_version: expected a string, got a date \(quote it"):
        routing_config_import(data=data)


# ---- the command ------------------------------------------------------------------------------------------------


def test_lynkr_config_export_and_import(tmp_path: Path) -> None:
    cli = LynkrServer(data_dir=tmp_path / "data")
    cli.data_dir.mkdir()
    assert cli.lynkr("migrate").returncode == 0
    config = tmp_path / "routing.yaml"
    config.write_text(CANONICAL)

    dry = cli.lynkr("config", "import", str(config), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "providers: 2 created, 0 updated, 0 deleted, 0 skipped, 0 unchanged" in dry.stdout
    assert "dry run: nothing was written" in dry.stdout
    assert "providers: []" in cli.lynkr("config", "export").stdout

    applied = cli.lynkr("config", "import", str(config))
    assert applied.returncode == 0, applied.stderr
    assert "  created  alpha" in applied.stdout and "rules: 2 created" in applied.stdout
    exported = cli.lynkr("config", "export")
    assert exported.returncode == 0 and exported.stdout == CANONICAL
    out = tmp_path / "out.yaml"
    assert cli.lynkr("config", "export", "--output", str(out)).returncode == 0
    assert out.read_text() == CANONICAL

    again = cli.lynkr("config", "import", "-", "--prune", input_text=exported.stdout.replace("order: 20", "order: 2"))
    assert again.returncode == 0, again.stderr
    assert "rules: 0 created, 1 updated, 0 deleted, 0 skipped, 1 unchanged" in again.stdout

    config.write_text(CANONICAL.replace("- provider: beta\n", "- provider: nope\n", 1))
    refused = cli.lynkr("config", "import", str(config))
    assert refused.returncode == 1
    assert "tiers[0].targets[0].provider: unknown provider 'nope'" in refused.stderr
    missing = cli.lynkr("config", "import", str(tmp_path / "absent.yaml"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr
