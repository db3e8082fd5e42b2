from django.apps import AppConfig


class WorkspaceConfig(AppConfig):
    name = "workspace"
    verbose_name = "Workspaces: repo index and tools"
    default_auto_field = "django.db.models.BigAutoField"
