from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "providers"
    verbose_name = "Providers and routing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from providers import signals  # noqa: F401  (cache invalidation only)
