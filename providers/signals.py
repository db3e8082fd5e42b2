"""Cache invalidation only: an admin save takes effect in this process at once, elsewhere within the TTL."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from providers.models import Provider
from providers.snapshot import routing_snapshot_invalidate


@receiver(post_save, sender=Provider)
@receiver(post_delete, sender=Provider)
def _provider_changed(**_: Any) -> None:
    routing_snapshot_invalidate()
