from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and API tokens"

    def ready(self) -> None:
        # Imported for their side effects: the failed-login signal receiver and the
        # OpenAPI extension that drf-spectacular finds by subclass.
        from . import login_limit, schema  # noqa: F401
