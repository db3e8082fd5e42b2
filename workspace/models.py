"""Workspaces, their policies and grants, their index tables, and the long jobs run on them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ToolExecutionMode(models.TextChoices):
    CLIENT = "client", "client: the client runs its own tools"
    SERVER = "server", "server: the gateway runs its tools in a loop"
    PASSTHROUGH = "passthrough", "passthrough (= client)"


class Policy(models.Model):
    """What the model may do in a workspace. Empty lists mean "no restriction" except where noted."""

    name = models.CharField(max_length=100, unique=True)
    tool_execution_mode = models.CharField(
        max_length=16, choices=ToolExecutionMode.choices, default=ToolExecutionMode.CLIENT
    )
    max_steps = models.PositiveIntegerField(default=8, help_text="Model calls per request in server mode.")
    max_tool_calls = models.PositiveIntegerField(default=32, help_text="Gateway tool calls per request in server mode.")
    progress_lines = models.BooleanField(default=False, help_text="Report server-mode steps as text progress lines.")
    allowed_tools = models.JSONField(default=list, blank=True, help_text="Tool names or globs; empty = all tools.")
    denied_tools = models.JSONField(default=list, blank=True, help_text="Tool names or globs refused even if allowed.")
    fs_allow_globs = models.JSONField(default=list, blank=True, help_text="Readable paths (globs); empty = all.")
    fs_deny_globs = models.JSONField(
        default=list, blank=True, help_text="Never readable, e.g. .env, *.pem (these two are always denied)."
    )
    git_allow_push = models.BooleanField(default=False)
    git_require_tests = models.BooleanField(
        default=False, help_text="Refuse a commit unless the latest test run for the current tree passed."
    )
    git_commit_pattern = models.CharField(
        max_length=300, blank=True, help_text="Regular expression every commit message must match (empty = any)."
    )
    web_enabled = models.BooleanField(default=True, help_text="Allow web_search and web_fetch.")
    record_transcripts = models.BooleanField(
        default=True, help_text="Store session turns (LYNKR_TRANSCRIPTS=false wins)."
    )

    class Meta:
        verbose_name_plural = "policies"

    def __str__(self) -> str:
        return self.name


class SandboxRuntime(models.TextChoices):
    AUTO = "auto", "bubblewrap when installed, else none"
    NONE = "none", "none"
    BUBBLEWRAP = "bubblewrap", "bubblewrap"


class Workspace(models.Model):
    name = models.SlugField(max_length=100, unique=True, help_text="Sent as the x-lynkr-workspace header.")
    root_path = models.CharField(
        max_length=500, blank=True, help_text="Directory on the gateway host; empty = LYNKR_WORKSPACES_DIR/<name>."
    )
    git_remote = models.CharField(
        max_length=500, blank=True, help_text="Clone and fetch from this remote (https, ssh or a local path)."
    )
    default_branch = models.CharField(max_length=200, blank=True, help_text="Empty = the remote's default.")
    test_command = models.CharField(
        max_length=1000, blank=True, help_text="Split like a shell line but never run by a shell, e.g. 'pytest -q'."
    )
    test_timeout_seconds = models.PositiveIntegerField(default=600)
    test_sandbox = models.CharField(max_length=16, choices=SandboxRuntime.choices, default=SandboxRuntime.AUTO)
    coverage_files = models.JSONField(default=list, blank=True, help_text="Relative paths; empty = the defaults.")
    ignore_globs = models.JSONField(default=list, blank=True, help_text="gitignore-style patterns not to index.")
    reindex_interval_minutes = models.PositiveIntegerField(
        default=0, help_text="0 = no scheduled reindex. Creates a periodic task you can refine in admin."
    )
    reindex_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL, editable=False
    )
    policy = models.ForeignKey(Policy, null=True, blank=True, on_delete=models.SET_NULL)
    shared_with_everyone = models.BooleanField(default=False, help_text="Every active user may use it.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    indexed_at = models.DateTimeField(null=True, blank=True, editable=False)

    def __str__(self) -> str:
        return self.name


class WorkspaceGrant(models.Model):
    """Who may use a workspace: exactly one of user, group (team) or API key."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="grants")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    group = models.ForeignKey("auth.Group", null=True, blank=True, on_delete=models.CASCADE, verbose_name="team")
    api_key = models.ForeignKey("gateway.ApiKey", null=True, blank=True, on_delete=models.CASCADE)
    is_default = models.BooleanField(default=False, help_text="Used when a request names no workspace.")

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="grant_exactly_one_subject",
                condition=(
                    models.Q(user__isnull=False, group__isnull=True, api_key__isnull=True)
                    | models.Q(user__isnull=True, group__isnull=False, api_key__isnull=True)
                    | models.Q(user__isnull=True, group__isnull=True, api_key__isnull=False)
                ),
            )
        ]

    def __str__(self) -> str:
        subject = self.user or self.group or self.api_key
        return f"{self.workspace} → {subject}"


class JobKind(models.TextChoices):
    INDEX_REBUILD = "index_rebuild", "index rebuild"
    TEST_RUN = "test_run", "test run"
    GIT_FETCH = "git_fetch", "git fetch"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"


class JobRun(models.Model):
    """A long task on a workspace, with progress the admin page and `lynkr index` show, and a cancel flag."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=20, choices=JobKind.choices)
    status = models.CharField(max_length=12, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    message = models.CharField(max_length=500, blank=True)
    result = models.JSONField(default=dict, blank=True)
    cancel_requested = models.BooleanField(default=False)
    celery_task_id = models.CharField(max_length=64, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["workspace", "kind", "created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} on {self.workspace_id}"


class TestOutcome(models.TextChoices):
    PASSED = "passed", "passed"
    FAILED = "failed", "failed"
    ERROR = "error", "error (could not run)"
    TIMEOUT = "timeout", "timed out"
    CANCELLED = "cancelled", "cancelled"


class TestRun(models.Model):
    __test__ = False  # not a pytest class

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="test_runs")
    job = models.OneToOneField(JobRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="test_run")
    command = models.CharField(max_length=1000)
    tree_state = models.CharField(max_length=64, blank=True, help_text="Digest of HEAD plus uncommitted changes.")
    outcome = models.CharField(max_length=12, choices=TestOutcome.choices)
    exit_code = models.IntegerField(null=True, blank=True)
    sandbox = models.CharField(max_length=16, blank=True)
    passed = models.PositiveIntegerField(null=True, blank=True)
    failed = models.PositiveIntegerField(null=True, blank=True)
    skipped = models.PositiveIntegerField(null=True, blank=True)
    errors = models.PositiveIntegerField(null=True, blank=True)
    coverage_percent = models.FloatField(null=True, blank=True)
    coverage_source = models.CharField(max_length=300, blank=True)
    output_tail = models.TextField(blank=True)
    duration_seconds = models.FloatField(default=0.0)
    started_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["workspace", "started_at"])]


# --- the index ------------------------------------------------------------------------------------------------


class IndexedFile(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="files")
    path = models.CharField(max_length=1000, help_text="Relative to the workspace root, '/'-separated.")
    language = models.CharField(max_length=32, blank=True)
    content_hash = models.CharField(max_length=64)
    size = models.PositiveIntegerField(default=0)
    line_count = models.PositiveIntegerField(default=0)
    parser = models.CharField(max_length=16, blank=True, help_text="tree-sitter, heuristic or none.")
    indexed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "path"], name="indexedfile_unique_path")]

    def __str__(self) -> str:
        return self.path


class Symbol(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    file = models.ForeignKey(IndexedFile, on_delete=models.CASCADE, related_name="symbols")
    name = models.CharField(max_length=300)
    kind = models.CharField(max_length=32)
    line = models.PositiveIntegerField()
    column = models.PositiveIntegerField(default=0)
    end_line = models.PositiveIntegerField(default=0)
    container = models.CharField(max_length=300, blank=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "name"])]


class SymbolReference(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    file = models.ForeignKey(IndexedFile, on_delete=models.CASCADE, related_name="references")
    name = models.CharField(max_length=300)
    kind = models.CharField(max_length=32, default="reference", help_text="call, reference, import, type ...")
    line = models.PositiveIntegerField()
    column = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["workspace", "name"])]


class FileDependency(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    file = models.ForeignKey(IndexedFile, on_delete=models.CASCADE, related_name="dependencies")
    module = models.CharField(max_length=500, help_text="As written in the import.")
    target_path = models.CharField(max_length=1000, blank=True, help_text="The workspace file it resolves to, if any.")

    class Meta:
        indexes = [models.Index(fields=["workspace", "target_path"])]


class SignalKind(models.TextChoices):
    FRAMEWORK = "framework", "framework"
    DEPENDENCY = "dependency", "dependency"
    LINT = "lint", "lint/style config"
    MANIFEST = "manifest", "package manifest"


class ProjectSignal(models.Model):
    """What the manifests and config files say: frameworks, dependencies, lint/style tools."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="signals")
    file = models.ForeignKey(IndexedFile, on_delete=models.CASCADE, related_name="signals")
    kind = models.CharField(max_length=16, choices=SignalKind.choices)
    ecosystem = models.CharField(max_length=32, blank=True, help_text="npm, pypi, go, cargo, maven, gem, composer ...")
    name = models.CharField(max_length=300)
    version = models.CharField(max_length=100, blank=True)
    dev = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["workspace", "kind"])]
