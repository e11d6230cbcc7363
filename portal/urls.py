from django.conf import settings
from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.views import RateLimitedLoginView

urlpatterns = [
    path("", include("detections.urls")),
    path("", include("playbooks.urls")),
    path("api/v1/", include("detections.api.urls", namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start script as a file, so the page needs
    # no inline script under the Content Security Policy.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api_docs"),
    path("admin/", admin.site.urls),
    # Before django.contrib.auth.urls, so this view serves accounts/login/.
    path("accounts/login/", RateLimitedLoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
]

handler500 = "portal.errors.server_error"


def bench_ping(request):
    """Return a small JSON response without database access: the ceiling of bench/api."""
    return JsonResponse({"status": "ok"})


if settings.BENCH_ENDPOINTS:
    urlpatterns.append(path("bench/ping/", bench_ping, name="bench_ping"))
