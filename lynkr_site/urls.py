from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path

from gateway import health, observability, views
from gateway.api import api
from gateway.bench_floor import floor_urlpatterns

prefix = settings.LYNKR_BASE_PATH

urlpatterns = [
    path("", views.root),
    path("health/live", health.live),
    path("health/ready", health.ready),
    path("metrics/prometheus", observability.prometheus),
    path("metrics/observability", observability.observability),
    path("metrics/circuit-breakers", observability.circuit_breakers),
    path("admin/", admin.site.urls),
    path("dashboard/", include("gateway.dashboard.urls")),
    path("me/", include("gateway.dashboard.me_urls")),
    path(f"{prefix}v1/", api.urls),
    re_path(rf"^{prefix}v1(/.*)?$", views.api_not_found),
]
# The benchmark's FLOOR endpoint, only when LYNKR_BENCH_FLOOR=1 (bench/README.md); nothing otherwise.
urlpatterns += floor_urlpatterns()
if prefix:
    urlpatterns.insert(1, path(prefix, views.root))

# JSON, Anthropic-shaped, for every error Django itself would render as HTML.
handler400 = "gateway.views.bad_request"
handler403 = "gateway.views.permission_denied"
handler404 = "gateway.views.api_not_found"
handler500 = "gateway.views.server_error"
