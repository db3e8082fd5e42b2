from __future__ import annotations

from django.contrib import admin

from tasks_app.models import Task


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("title", "workspace", "user", "status", "priority", "updated_at")
    list_editable = ("status", "priority")
    list_filter = ("status", "priority", "workspace")
    list_select_related = ("workspace", "user")
    search_fields = ("title", "description")
    raw_id_fields = ("user",)
    readonly_fields = ("created_at", "updated_at")
    fields = ("workspace", "user", "title", "description", "status", "priority", "tags", "created_at", "updated_at")
    ordering = ("-updated_at",)
