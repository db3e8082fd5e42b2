"""Seed prices (USD per million tokens) for the models Lynkr maps by default. Public list prices as of 2026-11;
edit them in admin (Gateway > Prices). Anything not listed has an unknown cost until a price is added."""

from decimal import Decimal

from django.db import migrations

PRICES = [
    # pattern, input, output, cache read, cache write, note
    ("claude-opus-4-5*", "5", "25", "0.5", "6.25", "Anthropic list price"),
    ("claude-opus-4*", "15", "75", "1.5", "18.75", "Anthropic list price (Opus 4/4.1)"),
    ("claude-opus-*", "5", "25", "0.5", "6.25", "Anthropic list price (newer Opus)"),
    ("claude-sonnet-*", "3", "15", "0.3", "3.75", "Anthropic list price"),
    ("claude-haiku-4-5*", "1", "5", "0.1", "1.25", "Anthropic list price"),
    ("claude-3-5-haiku*", "0.8", "4", "0.08", "1", "Anthropic list price"),
    ("databricks-claude-sonnet-*", "3", "15", None, None, "Databricks pay-per-token, Claude Sonnet"),
    ("gpt-4o-mini*", "0.15", "0.6", "0.075", None, "OpenAI list price"),
    ("openai/gpt-4o-mini*", "0.15", "0.6", "0.075", None, "OpenRouter, OpenAI list price"),
    ("gpt-4o*", "2.5", "10", "1.25", None, "OpenAI list price"),
    ("gpt-4.1-mini*", "0.4", "1.6", "0.1", None, "OpenAI list price"),
    ("gpt-4.1*", "2", "8", "0.5", None, "OpenAI list price"),
    ("gpt-5-mini*", "0.25", "2", "0.025", None, "OpenAI list price"),
    ("gpt-5*", "1.25", "10", "0.125", None, "OpenAI list price"),
    ("o4-mini*", "1.1", "4.4", "0.275", None, "OpenAI list price"),
    ("deepseek-chat*", "0.27", "1.1", "0.07", None, "DeepSeek list price"),
    ("deepseek-reasoner*", "0.55", "2.19", "0.14", None, "DeepSeek list price"),
]


def seed(apps, schema_editor):
    PriceEntry = apps.get_model("gateway", "PriceEntry")
    for priority, (pattern, inp, out, read, write, note) in enumerate(PRICES):
        PriceEntry.objects.get_or_create(
            model_pattern=pattern,
            provider=None,
            defaults={
                "input_per_mtok": Decimal(inp),
                "output_per_mtok": Decimal(out),
                "cache_read_per_mtok": Decimal(read) if read else None,
                "cache_write_per_mtok": Decimal(write) if write else None,
                "priority": 10 + priority,
                "note": f"{note}, seeded 2026-11",
            },
        )


class Migration(migrations.Migration):
    dependencies = [("gateway", "0002_accounting")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
