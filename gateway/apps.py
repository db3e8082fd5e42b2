from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"
    verbose_name = "Gateway: keys and usage"
    default_auto_field = "django.db.models.BigAutoField"
