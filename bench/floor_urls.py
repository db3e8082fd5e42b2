"""lynkr_site.urls plus the benchmark's FLOOR endpoint (see bench/floor_settings.py)."""

from gateway.bench_floor import floor_urlpatterns
from lynkr_site.urls import *  # noqa: F403
from lynkr_site.urls import urlpatterns as _lynkr_urlpatterns

urlpatterns = [*_lynkr_urlpatterns, *floor_urlpatterns()]
