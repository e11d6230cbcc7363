from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.views import RateLimitedLoginView

urlpatterns = [
    path("", include("detections.urls")),
    path("", include("playbooks.urls")),
    path("api/v1/", include("detections.api.urls", namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api_docs"),
    path("admin/", admin.site.urls),
    # Before django.contrib.auth.urls, so this view serves accounts/login/.
    path("accounts/login/", RateLimitedLoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
]
