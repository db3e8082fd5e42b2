"""The Celery app: Redis when REDIS_URL is set, else kombu's filesystem transport in the data dir."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lynkr_site.settings.base")

app = Celery("lynkr")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
