"""System checks for `manage.py check --deploy` beyond Django's own."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def check_shared_cache(app_configs, **kwargs):
    if settings.REDIS_URL:
        return []
    return [
        Warning(
            "REDIS_URL is not set, so API throttling and login limits count per process.",
            hint="Set REDIS_URL to a Redis database that every web process shares.",
            id="portal.W001",
        )
    ]


@register(Tags.security, deploy=True)
def check_broker(app_configs, **kwargs):
    if not settings.CELERY_BROKER_URL.startswith("filesystem://"):
        return []
    return [
        Warning(
            "CELERY_BROKER_URL is the filesystem transport, which works only when the web "
            "processes and the workers share one folder on one machine.",
            hint="Set CELERY_BROKER_URL to a Redis URL such as redis://redis:6379/0.",
            id="portal.W002",
        )
    ]
