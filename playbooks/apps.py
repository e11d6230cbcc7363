from django.apps import AppConfig


class PlaybooksConfig(AppConfig):
    name = "playbooks"
    verbose_name = "Response playbooks"

    def ready(self) -> None:
        from detections.versioning import register_playbook_models

        register_playbook_models()
