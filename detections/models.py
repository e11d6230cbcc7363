"""The detection catalogue: ATT&CK objects, detections and everything a detection carries."""

import uuid

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse
from django.utils import timezone


class AttackObject(models.Model):
    """Fields that `import_attack` fills from MITRE's STIX objects.

    Objects loaded from content/attack.yml keep the defaults: no STIX id or
    description, neither revoked nor deprecated.
    """

    stix_id = models.CharField(
        max_length=100, blank=True, help_text="STIX id, such as attack-pattern--<UUID>."
    )
    description = models.TextField(blank=True, help_text="Markdown, as MITRE writes it.")
    revoked = models.BooleanField(default=False, help_text="MITRE replaced this object.")
    deprecated = models.BooleanField(
        default=False, help_text="MITRE no longer maintains this object."
    )

    class Meta:
        abstract = True


class Tactic(AttackObject):
    """An ATT&CK tactic such as TA0009 Collection."""

    attack_id = models.CharField(max_length=16, unique=True)
    name = models.CharField(max_length=200)
    shortname = models.SlugField(max_length=100, help_text="ATT&CK's kill-chain phase name.")
    url = models.URLField()

    class Meta:
        ordering = ["attack_id"]

    def __str__(self) -> str:
        return f"{self.attack_id} {self.name}"


class Technique(AttackObject):
    """An ATT&CK technique, or a sub-technique when `parent` is set."""

    attack_id = models.CharField(max_length=16, unique=True)
    name = models.CharField(max_length=200)
    url = models.URLField()
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="subtechniques"
    )
    tactics = models.ManyToManyField(Tactic, related_name="techniques", blank=True)
    platforms = models.JSONField(default=list, blank=True)
    revoked_by = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="replaces",
        help_text="The technique MITRE names as the replacement of this revoked one.",
    )

    class Meta:
        ordering = ["attack_id"]

    def __str__(self) -> str:
        return f"{self.attack_id} {self.name}"

    @property
    def is_subtechnique(self) -> bool:
        return self.parent_id is not None


class DataComponent(AttackObject):
    """An ATT&CK data component within its data source, such as Process: Process Creation.

    ATT&CK v18 no longer groups components into data sources, so `data_source` and
    `data_source_id` are empty for components first imported from v18 data.
    """

    attack_id = models.CharField(max_length=16, unique=True)
    data_source = models.CharField(max_length=200)
    data_source_id = models.CharField(max_length=16)
    name = models.CharField(max_length=200)
    url = models.URLField()

    class Meta:
        ordering = ["data_source", "name"]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        return f"{self.data_source}: {self.name}" if self.data_source else self.name


class Analytic(AttackObject):
    """An ATT&CK v18 analytic (AN0110): how to detect a technique on one platform."""

    attack_id = models.CharField(max_length=16, unique=True)
    name = models.CharField(max_length=200)
    url = models.URLField(blank=True)
    platforms = models.JSONField(default=list, blank=True)
    # Entries of x_mitre_log_source_references: `component` (a DC id), `name` and `channel`.
    log_sources = models.JSONField(default=list, blank=True)
    # Entries of x_mitre_mutable_elements: `field` and `description`, the tunable parts.
    mutable_elements = models.JSONField(default=list, blank=True)
    data_components = models.ManyToManyField(DataComponent, related_name="analytics", blank=True)

    class Meta:
        ordering = ["attack_id"]

    def __str__(self) -> str:
        return f"{self.attack_id} {self.name}"


class DetectionStrategy(AttackObject):
    """An ATT&CK v18 detection strategy (DET0103): the analytics that detect techniques."""

    attack_id = models.CharField(max_length=16, unique=True)
    name = models.CharField(max_length=300)
    url = models.URLField(blank=True)
    techniques = models.ManyToManyField(Technique, related_name="detection_strategies", blank=True)
    analytics = models.ManyToManyField(Analytic, related_name="detection_strategies", blank=True)

    class Meta:
        ordering = ["attack_id"]
        verbose_name_plural = "detection strategies"

    def __str__(self) -> str:
        return f"{self.attack_id} {self.name}"


class Detection(models.Model):
    """One detection: the analytic, its context and the proof that it fires."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        REVIEW = "review"
        PUBLISHED = "published"
        DEPRECATED = "deprecated"

    class Level(models.TextChoices):
        INFORMATIONAL = "informational"
        LOW = "low"
        MEDIUM = "medium"
        HIGH = "high"
        CRITICAL = "critical"

    class Origin(models.TextChoices):
        AUTHORED = "authored", "authored (content files or the portal)"
        SIGMA = "sigma", "imported Sigma rule"

    class SigmaStatus(models.TextChoices):
        """Sigma's maturity levels of a rule, as the Sigma specification names them."""

        STABLE = "stable"
        TEST = "test"
        EXPERIMENTAL = "experimental"
        DEPRECATED = "deprecated"
        UNSUPPORTED = "unsupported"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    slug = models.SlugField(max_length=200, unique=True)
    title = models.CharField(max_length=300)
    platform = models.CharField(max_length=100, help_text="Product the analytic runs on.")
    query_language = models.CharField(max_length=50, help_text="Language of the authored query.")
    description = models.TextField(help_text="Markdown.")
    summary = models.TextField(blank=True, help_text="How the analytic works, Markdown.")
    libraries = models.JSONField(default=list, blank=True)
    evaded_tools = models.JSONField(default=list, blank=True)
    malware_families = models.JSONField(default=list, blank=True)
    severity = models.CharField(max_length=16, choices=Level.choices)
    confidence = models.CharField(max_length=16, choices=Level.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.AUTHORED)
    sigma_status = models.CharField(
        max_length=16,
        choices=SigmaStatus.choices,
        blank=True,
        help_text="The imported Sigma rule's own status; `status` is the portal's workflow.",
    )
    # The content's own version number, from the YAML or the Sigma import, exported as is.
    version = models.PositiveIntegerField(default=1)
    revision = models.PositiveIntegerField(
        default=1,
        help_text=(
            "Counter raised by every stored change: portal and API edits, restores, "
            "workflow transitions, load_content and import_sigma updates."
        ),
    )
    authors = models.JSONField(default=list, blank=True)
    references = models.JSONField(default=list, blank=True)
    canonical_reference = models.URLField(blank=True)
    tuning_notes = models.TextField(blank=True, help_text="Markdown.")
    date_created = models.DateField(null=True, blank=True)
    date_modified = models.DateField(null=True, blank=True)
    # Not symmetrical: each detection's file owns its own list of links, and loading
    # one file must not change another detection's links.
    related = models.ManyToManyField(
        "self", blank=True, symmetrical=False, related_name="related_from"
    )
    other_platforms = models.ManyToManyField(
        "self",
        blank=True,
        symmetrical=False,
        related_name="other_platforms_from",
        help_text="The same technique's detections for other products.",
    )
    data_components = models.ManyToManyField(
        DataComponent, through="DetectionDataSource", related_name="detections"
    )
    # Set by load_content: the content file's path and hash, and a fingerprint of
    # the stored rows, so a later load can tell a portal edit from an unchanged row.
    # import_sigma sets the first two to the rule file's path within the import and
    # the SHA-256 of its bytes, which lets a re-import skip unchanged files unparsed.
    source_path = models.CharField(max_length=500, blank=True)
    source_hash = models.CharField(max_length=64, blank=True)
    loaded_fingerprint = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]
        permissions = [("publish_detection", "Can publish and deprecate detections")]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("detections:detection_detail", kwargs={"slug": self.slug})

    @property
    def attack_ids(self) -> list[str]:
        ids = []
        for mapping in self.mappings.all():
            ids.append(mapping.technique.attack_id)
            if mapping.subtechnique_id:
                ids.append(mapping.subtechnique.attack_id)
        return ids


class AttackMapping(models.Model):
    """A detection's place in ATT&CK: tactic, technique and optional sub-technique."""

    detection = models.ForeignKey(Detection, on_delete=models.CASCADE, related_name="mappings")
    position = models.PositiveSmallIntegerField(default=0)
    tactic = models.ForeignKey(Tactic, on_delete=models.PROTECT, related_name="+")
    technique = models.ForeignKey(Technique, on_delete=models.PROTECT, related_name="+")
    subtechnique = models.ForeignKey(
        Technique, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(
                fields=["detection", "tactic", "technique", "subtechnique"],
                name="unique_attack_mapping",
            )
        ]


class DetectionDataSource(models.Model):
    """A data component a detection reads, with the log source event that carries it."""

    detection = models.ForeignKey(Detection, on_delete=models.CASCADE, related_name="data_sources")
    component = models.ForeignKey(DataComponent, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)
    log_source = models.CharField(max_length=100, help_text="For example Sysmon.")
    event_id = models.PositiveIntegerField(null=True, blank=True)
    event_name = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["position"]


class Query(models.Model):
    """A query authored by hand for one platform, stored byte for byte."""

    detection = models.ForeignKey(Detection, on_delete=models.CASCADE, related_name="queries")
    position = models.PositiveSmallIntegerField(default=0)
    platform = models.CharField(max_length=100)
    language = models.CharField(max_length=50)
    text = models.TextField()
    output_fields = models.JSONField(default=list, blank=True)
    required_sourcetypes = models.JSONField(default=list, blank=True)
    branch_field = models.CharField(
        max_length=100, blank=True, help_text="Output field naming the branch that matched."
    )

    class Meta:
        ordering = ["position"]
        verbose_name_plural = "queries"

    @property
    def file_extension(self) -> str:
        return {"spl": "spl", "kql": "kql", "eql": "eql", "sql": "sql"}.get(
            self.language.lower(), "txt"
        )


class SigmaRule(models.Model):
    """A Sigma rule of a detection: the YAML as written plus the fields parsed from it."""

    class Kind(models.TextChoices):
        RULE = "rule"
        CORRELATION = "correlation"
        FILTER = "filter", "filter (meta rule)"

    detection = models.ForeignKey(Detection, on_delete=models.CASCADE, related_name="sigma_rules")
    position = models.PositiveSmallIntegerField(default=0)
    rule_id = models.UUIDField(unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.RULE)
    name = models.CharField(
        max_length=300, blank=True, help_text="Sigma `name`, by which correlations may refer to it."
    )
    filename = models.CharField(max_length=200)
    yaml_text = models.TextField()
    title = models.CharField(max_length=300)
    status = models.CharField(max_length=32, blank=True)
    level = models.CharField(max_length=32, blank=True)
    logsource = models.JSONField(default=dict)
    tags = models.JSONField(default=list, blank=True)
    falsepositives = models.JSONField(default=list, blank=True)
    is_valid = models.BooleanField(default=True)
    messages = models.JSONField(default=list, blank=True)
    # A correlation's `rules` or a filter's `filter.rules`, as written: ids or names.
    rule_references = models.JSONField(default=list, blank=True)
    referenced_rules = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="referenced_by"
    )

    class Meta:
        ordering = ["position"]

    def __str__(self) -> str:
        return self.title

    @property
    def logsource_label(self) -> str:
        parts = [self.logsource.get(key) for key in ("product", "category", "service")]
        return " / ".join(part for part in parts if part)


class DetectionBranch(models.Model):
    """One branch of a multi-branch query, named by the value of the query's branch field."""

    query = models.ForeignKey(Query, on_delete=models.CASCADE, related_name="branches")
    position = models.PositiveSmallIntegerField(default=0)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    log_source = models.CharField(max_length=100)
    event_id = models.PositiveIntegerField()
    sigma_rule = models.ForeignKey(
        SigmaRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="branches"
    )
    dll_names = models.JSONField(default=list, blank=True)
    excluded_processes = models.JSONField(default=list, blank=True)
    excluded_paths = models.JSONField(default=list, blank=True)
    processes = models.JSONField(default=list, blank=True)
    command_line_markers = models.JSONField(default=list, blank=True)
    file_extensions = models.JSONField(default=list, blank=True)
    staging_paths = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["position"]
        verbose_name_plural = "detection branches"
        constraints = [models.UniqueConstraint(fields=["query", "name"], name="unique_branch_name")]

    LIST_FIELDS = (
        "dll_names",
        "excluded_processes",
        "excluded_paths",
        "processes",
        "command_line_markers",
        "file_extensions",
        "staging_paths",
    )


class FalsePositive(models.Model):
    """A situation known to make the detection fire on benign activity."""

    detection = models.ForeignKey(
        Detection, on_delete=models.CASCADE, related_name="false_positives"
    )
    position = models.PositiveSmallIntegerField(default=0)
    description = models.TextField()

    class Meta:
        ordering = ["position"]


class TuningEntry(models.Model):
    """A local exclusion of a detection: the events it silences, why, and who owns it.

    `condition` is a Sigma detection selection. It becomes a Sigma filter applied to
    the detection's rules and a clause of the detection's Splunk filter macro. An entry
    applies to the Sigma rules named in `rules` and to the rules of the branches named
    in `branches`. With both empty, it applies to every rule of the detection.
    """

    detection = models.ForeignKey(
        Detection, on_delete=models.CASCADE, related_name="tuning_entries"
    )
    uuid = models.UUIDField(default=uuid.uuid4, unique=True)
    # Left empty, save() puts a new entry after the detection's other entries.
    position = models.PositiveSmallIntegerField(default=None, blank=True)
    condition = models.JSONField(
        help_text=(
            'Sigma selection of the events to exclude, e.g. {"Image|endswith": "\\\\pip.exe"}.'
        )
    )
    rules = models.JSONField(
        default=list, blank=True, help_text="Ids of the Sigma rules the entry is limited to."
    )
    branches = models.JSONField(
        default=list, blank=True, help_text="Names of the query branches the entry is limited to."
    )
    reason = models.TextField(help_text="Why the events are benign, Markdown.")
    owner = models.CharField(max_length=200, help_text="Team or person who owns the entry.")
    expires = models.DateField(
        null=True, blank=True, help_text="From this day on the entry no longer applies."
    )
    ticket = models.CharField(
        max_length=300, blank=True, help_text="Change reference, such as a URL or SOC-1234."
    )
    enabled = models.BooleanField(default=True)
    # The condition as a Splunk search expression, set by clean() with pySigma.
    spl = models.TextField(blank=True, editable=False)
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "pk"]
        verbose_name_plural = "tuning entries"

    def __str__(self) -> str:
        return f"tuning entry {self.uuid} of {self.detection_id}"

    def is_expired(self, today=None) -> bool:
        today = today or timezone.localdate()
        return self.expires is not None and self.expires <= today

    def is_active(self, today=None) -> bool:
        """Return whether the entry takes effect: enabled and not expired."""
        return self.enabled and not self.is_expired(today)

    def clean(self) -> None:
        from .pysigma.tuning import splunk_expression
        from .tuning import entry_problems

        problems = entry_problems(self)
        if problems:
            raise ValidationError(problems)
        self.spl = splunk_expression(self.condition)

    def save(self, *args, **kwargs) -> None:
        """Validate the condition and its rule and branch names with pySigma, then save.

        Raises ValidationError and writes nothing when the entry is invalid.
        """
        self.clean()
        if self.position is None:
            last = TuningEntry.objects.filter(detection_id=self.detection_id).aggregate(
                last=models.Max("position")
            )["last"]
            self.position = 0 if last is None else last + 1
        super().save(*args, **kwargs)


class DetectionTest(models.Model):
    """A test of a detection in the Atomic Red Team style, with its expected outcome."""

    class Expectation(models.TextChoices):
        FIRES = "fires"
        SILENT = "silent"

    class Origin(models.TextChoices):
        AUTHORED = "authored", "authored (content files or add_test)"
        ATOMIC_RED_TEAM = "atomic_red_team", "imported from Atomic Red Team"

    detection = models.ForeignKey(Detection, on_delete=models.CASCADE, related_name="tests")
    position = models.PositiveSmallIntegerField(default=0)
    name = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    atomic_guid = models.UUIDField(
        null=True, blank=True, help_text="Set only where Atomic Red Team has this test."
    )
    platform = models.CharField(max_length=50)
    platforms = models.JSONField(
        default=list, blank=True, help_text="Every platform the test supports, when several."
    )
    executor = models.CharField(max_length=50, blank=True)
    executor_summary = models.TextField(blank=True)
    # Atomic Red Team's input arguments by name: description, type and default. The
    # test's commands are never stored, so nothing here can run them.
    input_arguments = models.JSONField(default=dict, blank=True)
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.AUTHORED)
    expected_signal = models.TextField(blank=True, help_text="The expected telemetry in words.")
    expect = models.CharField(max_length=8, choices=Expectation.choices, default=Expectation.FIRES)
    min_matches = models.PositiveIntegerField(default=1)
    known_false_positive = models.BooleanField(default=False)
    recorded_events = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(
                fields=["detection", "atomic_guid"],
                condition=models.Q(origin="atomic_red_team"),
                name="unique_imported_atomic_test",
            )
        ]


class ExpectedTelemetry(models.Model):
    """One signal a test should produce, as structured data."""

    test = models.ForeignKey(DetectionTest, on_delete=models.CASCADE, related_name="telemetry")
    position = models.PositiveSmallIntegerField(default=0)
    source = models.CharField(max_length=100, help_text="Log source, e.g. Sysmon or auditd.")
    event_id = models.PositiveIntegerField(null=True, blank=True)
    event_name = models.CharField(max_length=100, blank=True)
    key_fields = models.JSONField(default=dict, blank=True)
    artifact_path = models.CharField(max_length=500, blank=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["position"]
        verbose_name_plural = "expected telemetry"


class Render(models.Model):
    """A Sigma rule converted for one render target by a worker, with how it was made."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        RENDERED = "rendered"
        FAILED = "failed"
        UNAVAILABLE = "unavailable"

    TERMINAL = (Status.RENDERED, Status.FAILED, Status.UNAVAILABLE)

    sigma_rule = models.ForeignKey(SigmaRule, on_delete=models.CASCADE, related_name="renders")
    target = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    query = models.TextField(blank=True)
    warnings = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    input_hash = models.CharField(max_length=64, blank=True)
    versions = models.JSONField(default=dict, blank=True)
    pipelines = models.JSONField(default=list, blank=True)
    output_format = models.CharField(max_length=64, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    task_id = models.CharField(max_length=64, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["sigma_rule__position", "target"]
        constraints = [
            models.UniqueConstraint(fields=["sigma_rule", "target"], name="unique_render_target")
        ]
        indexes = [models.Index(fields=["status", "started_at"])]

    def __str__(self) -> str:
        return f"{self.sigma_rule_id} for {self.target}: {self.status}"


class ValidationRun(models.Model):
    """One run of a detection's tests on an engine, kept as history."""

    class Engine(models.TextChoices):
        EMBEDDED = "embedded"
        SPLUNK = "splunk"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        PASSED = "passed"
        FAILED = "failed"
        ERROR = "error"

    class Trigger(models.TextChoices):
        COMMAND = "command"
        WEB = "web"
        API = "api"
        SCHEDULE = "schedule"
        CONTENT = "content"

    TERMINAL = (Status.PASSED, Status.FAILED, Status.ERROR)

    detection = models.ForeignKey(Detection, on_delete=models.CASCADE, related_name="validation_runs")
    engine = models.CharField(max_length=16, choices=Engine.choices, default=Engine.EMBEDDED)
    target = models.CharField(max_length=64, help_text="What ran: the render target or Splunk host.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.COMMAND)
    requested_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The exact query texts run: name, language, rule id or branch, and text.
    queries = models.JSONField(default=list, blank=True)
    versions = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    tests_total = models.PositiveIntegerField(default=0)
    tests_passed = models.PositiveIntegerField(default=0)
    task_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["detection", "-created_at"]),
            models.Index(fields=["status", "started_at"]),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.detection_id} on {self.engine}: {self.status}"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class TestResult(models.Model):
    """The outcome of one test in a validation run."""

    __test__ = False  # Not a pytest test class, despite the name.

    run = models.ForeignKey(ValidationRun, on_delete=models.CASCADE, related_name="results")
    test = models.ForeignKey(
        DetectionTest, null=True, blank=True, on_delete=models.SET_NULL, related_name="results"
    )
    position = models.PositiveSmallIntegerField(default=0)
    # Copies of the test as it was run, kept when the test is later changed or deleted.
    name = models.CharField(max_length=300)
    expect = models.CharField(max_length=8, choices=DetectionTest.Expectation.choices)
    min_matches = models.PositiveIntegerField(default=1)
    known_false_positive = models.BooleanField(default=False)
    event_count = models.PositiveIntegerField(default=0)
    matches = models.PositiveIntegerField(default=0)
    # Positions of the matched events in the test's recorded events, from 0.
    matched_events = models.JSONField(default=list, blank=True)
    # Per query: name, rule id or branch, matched event positions or row count, errors.
    details = models.JSONField(default=list, blank=True)
    # The matches before tuning entries were applied; `matches` counts those after.
    raw_matches = models.PositiveIntegerField(default=0)
    raw_matched_events = models.JSONField(default=list, blank=True)
    # Per tuning entry that applied: its uuid, owner, the matched events it suppressed
    # and, for an attack test, the failure it caused.
    tuning = models.JSONField(default=list, blank=True)
    passed = models.BooleanField(default=False)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["run", "position"]

    def __str__(self) -> str:
        return f"{self.name}: {'passed' if self.passed else 'failed'}"


class StatusTransition(models.Model):
    """One workflow step of a detection or playbook: who moved it from which status to which."""

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.PositiveBigIntegerField()
    content_object = GenericForeignKey("content_type", "object_id")
    from_status = models.CharField(max_length=16, choices=Detection.Status.choices)
    to_status = models.CharField(max_length=16, choices=Detection.Status.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    comment = models.TextField(blank=True)
    revision = models.PositiveIntegerField(help_text="The object's revision after the transition.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["content_type", "object_id", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.content_type.model} {self.object_id}: {self.from_status} -> {self.to_status}"


class Preview(models.Model):
    """A Sigma rule being edited, converted by a worker for the edit form's live preview.

    The page that requested it polls the row by its random id. Rows older than
    PREVIEW_MAX_AGE_SECONDS are deleted when a new preview is requested.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        RENDERED = "rendered"
        FAILED = "failed"

    TERMINAL = (Status.RENDERED, Status.FAILED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The stored rule being edited. The preview checks the id against it, as saving
    # does. It is null for a rule that is not stored yet.
    sigma_rule = models.ForeignKey(
        SigmaRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    target = models.CharField(max_length=64)
    rule_text = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    query = models.TextField(blank=True)
    error = models.TextField(blank=True)
    error_line = models.PositiveIntegerField(
        null=True, blank=True, help_text="Line of the rule text the error is about, from 1."
    )
    warnings = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"preview {self.pk} for {self.target}: {self.status}"


class ContentStamp(models.Model):
    """A single row whose token changes after every committed write to shown content.

    `detections.response_cache` replaces the token and keys cached API responses by it.
    """

    token = models.CharField(max_length=32)

    def __str__(self) -> str:
        return f"content stamp {self.token}"
