from django.apps import AppConfig


class DetectionsConfig(AppConfig):
    name = "detections"
    verbose_name = "Detections"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from . import response_cache, signals  # noqa: F401 - signals connects the receivers
        from .roles import roles_sync
        from .versioning import register_detection_models

        register_detection_models()
        response_cache.connect()
        post_migrate.connect(roles_sync, sender=self)
