from django.http import JsonResponse

from .checks import readiness


class HealthCheckMiddleware:
    """Respond to /healthz and /readyz before host validation, redirects and logging.

    Load balancers and container health checks call these by IP address over plain
    HTTP, which ALLOWED_HOSTS and the HTTPS redirect would otherwise reject.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method in ("GET", "HEAD"):
            if request.path == "/healthz":
                return JsonResponse({"status": "ok"})
            if request.path == "/readyz":
                report = readiness()
                return JsonResponse(report, status=200 if report["status"] == "ok" else 503)
        return self.get_response(request)
