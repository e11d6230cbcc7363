from django.apps import AppConfig


class DetectionsConfig(AppConfig):
    name = "detections"
    verbose_name = "Detections"

    def ready(self) -> None:
        from . import signals  # noqa: F401 - connects the receivers
        from .versioning import register_detection_models

        register_detection_models()
