"""Cache invalidation only: any routing change bumps the routing version (seen by every process within ~2 s)
and invalidates this process's snapshot at once."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from providers.models import ModelMapping, Provider, RouteTier, RoutingRule, TierTarget
from providers.services import routing_version_bump
from providers.snapshot import routing_snapshot_invalidate


def _changed(**_: Any) -> None:
    routing_snapshot_invalidate()
    transaction.on_commit(routing_version_bump)


for _model in (Provider, ModelMapping, RouteTier, RoutingRule, TierTarget):
    post_save.connect(_changed, sender=_model, dispatch_uid=f"routing-{_model.__name__}-save")
    post_delete.connect(_changed, sender=_model, dispatch_uid=f"routing-{_model.__name__}-delete")
