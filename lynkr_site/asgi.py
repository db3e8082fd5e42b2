"""ASGI entry point (served by Daphne): Django for HTTP behind the body-size guard, via Channels' router."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lynkr_site.settings.base")

from channels.routing import ProtocolTypeRouter
from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

from gateway.asgi_limits import BodyLimitMiddleware

django_application = get_asgi_application()
if settings.LYNKR_SERVE_STATIC:
    # The admin's CSS/JS straight from the installed apps (only paths under STATIC_URL are intercepted), so a
    # laptop needs no collectstatic and no separate file server; behind a CDN/nginx set LYNKR_SERVE_STATIC=false.
    django_application = ASGIStaticFilesHandler(django_application)

application = ProtocolTypeRouter({"http": BodyLimitMiddleware(django_application, settings.LYNKR_MAX_BODY_BYTES)})
