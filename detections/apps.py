from django.apps import AppConfig


class DetectionsConfig(AppConfig):
    name = "detections"
    verbose_name = "Detections"

    def ready(self) -> None:
        from .versioning import register_detection_models

        register_detection_models()
