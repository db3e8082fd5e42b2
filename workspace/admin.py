"""Admin for workspaces: grants inline, jobs with progress and cancel, test runs and the index read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from workspace.jobs import job_cancel, job_enqueue
from workspace.models import (
    IndexedFile,
    JobKind,
    JobRun,
    JobStatus,
    Policy,
    Symbol,
    TestRun,
    Workspace,
    WorkspaceGrant,
)
from workspace.services import workspace_schedule_sync


class WorkspaceGrantInline(admin.TabularInline):  # type: ignore[type-arg]
    model = WorkspaceGrant
    extra = 0
    autocomplete_fields = ("user", "group")
    raw_id_fields = ("api_key",)


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name", "tool_execution_mode", "max_steps", "git_allow_push", "git_require_tests", "web_enabled")
    list_filter = ("tool_execution_mode", "git_allow_push", "git_require_tests", "web_enabled")
    search_fields = ("name",)


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name", "root_path", "git_remote", "policy", "enabled", "indexed_at", "reindex_interval_minutes")
    list_filter = ("enabled", "shared_with_everyone", "policy")
    search_fields = ("name", "root_path", "git_remote")
    readonly_fields = ("indexed_at", "created_at", "reindex_task")
    inlines = (WorkspaceGrantInline,)
    actions = ("rebuild_index", "run_tests", "fetch_remote")

    def save_model(self, request: HttpRequest, obj: Workspace, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        workspace_schedule_sync(workspace_id=obj.pk)

    def _queue(self, request: HttpRequest, queryset: QuerySet[Workspace], kind: JobKind) -> None:
        with transaction.atomic():
            ids = [job_enqueue(workspace_id=w.pk, kind=kind, user_id=request.user.pk) for w in queryset]
        self.message_user(request, f"queued {kind.label} job(s) {', '.join(map(str, ids))}", messages.SUCCESS)

    @admin.action(description="Rebuild the index")
    def rebuild_index(self, request: HttpRequest, queryset: QuerySet[Workspace]) -> None:
        self._queue(request, queryset, JobKind.INDEX_REBUILD)

    @admin.action(description="Run the tests")
    def run_tests(self, request: HttpRequest, queryset: QuerySet[Workspace]) -> None:
        self._queue(request, queryset, JobKind.TEST_RUN)

    @admin.action(description="Fetch the git remote")
    def fetch_remote(self, request: HttpRequest, queryset: QuerySet[Workspace]) -> None:
        with_remote = queryset.exclude(git_remote="")
        if with_remote.count() < queryset.count():
            self.message_user(request, "workspaces without a git remote were skipped", messages.WARNING)
        self._queue(request, with_remote, JobKind.GIT_FETCH)


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "workspace", "kind", "status", "progress", "message", "created_at", "finished_at")
    list_filter = ("kind", "status", "workspace")
    actions = ("cancel",)

    @admin.display(description="progress")
    def progress(self, obj: JobRun) -> str:
        if not obj.progress_total:
            return "—"
        percent = min(100, round(100 * obj.progress_done / obj.progress_total))
        return format_html(
            '<progress max="100" value="{}" title="{} / {}"></progress> {}%',
            percent,
            obj.progress_done,
            obj.progress_total,
            percent,
        )

    @admin.action(description="Cancel the selected jobs")
    def cancel(self, request: HttpRequest, queryset: QuerySet[JobRun]) -> None:
        active = queryset.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
        cancelled = sum(job_cancel(job_id=job.pk) for job in active)
        self.message_user(request, f"asked {cancelled} job(s) to cancel", messages.SUCCESS)


@admin.register(TestRun)
class TestRunAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "workspace",
        "outcome",
        "passed",
        "failed",
        "coverage_percent",
        "duration_seconds",
        "started_at",
    )
    list_filter = ("outcome", "workspace")


@admin.register(IndexedFile)
class IndexedFileAdmin(ReadOnlyAdmin):
    list_display = ("path", "workspace", "language", "parser", "line_count", "indexed_at")
    list_filter = ("workspace", "language", "parser")
    search_fields = ("path",)


@admin.register(Symbol)
class SymbolAdmin(ReadOnlyAdmin):
    list_display = ("name", "kind", "container", "file", "line")
    list_filter = ("kind",)
    search_fields = ("name",)
    list_select_related = ("file",)
