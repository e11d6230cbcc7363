from django.apps import AppConfig


class HealthConfig(AppConfig):
    name = "portal.health"
    label = "health"
    verbose_name = "Health"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from portal import deploy_checks  # noqa: F401 - registers the checks
