"""Response playbooks: what an analyst does when one of the linked detections fires.

A playbook has three parts. The response playbook is an ordered list of steps, grouped
by incident-response phase. The investigation guide lists the questions the analyst
must answer. The hunting queries look for the same behaviour where no alert fired.
Steps, questions and hunts carry queries per platform, and a query may carry a Sigma
form so that other platforms can be rendered from it later.
"""

import uuid

from django.db import models
from django.urls import reverse

from detections.models import Detection


class Playbook(models.Model):
    """A playbook shared by one or more detections."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    slug = models.SlugField(max_length=200, unique=True)
    title = models.CharField(max_length=300)
    status = models.CharField(
        max_length=16, choices=Detection.Status.choices, default=Detection.Status.DRAFT
    )
    # The content's own version number from the YAML, exported as is.
    version = models.PositiveIntegerField(default=1)
    revision = models.PositiveIntegerField(
        default=1,
        help_text=(
            "Counter raised by every stored change: portal and API edits, restores, "
            "workflow transitions and load_content updates."
        ),
    )
    date_created = models.DateField()
    date_modified = models.DateField()
    authors = models.JSONField(default=list, blank=True)
    summary = models.TextField(help_text="When to use the playbook and what it achieves, Markdown.")
    detections = models.ManyToManyField(
        Detection, through="PlaybookDetection", related_name="playbooks"
    )
    # Each entry is a mapping with `name`, `url` and optionally `description`.
    references = models.JSONField(default=list, blank=True)
    # Set by load_content, as on Detection: the file's path and hash, and a fingerprint
    # of the stored rows, so a later load can tell a portal edit from an unchanged row.
    source_path = models.CharField(max_length=500, blank=True)
    source_hash = models.CharField(max_length=64, blank=True)
    loaded_fingerprint = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]
        permissions = [("publish_playbook", "Can publish and deprecate playbooks")]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("playbooks:playbook_detail", kwargs={"slug": self.slug})


class PlaybookDetection(models.Model):
    """A detection that triggers the playbook, in the order the content file lists it."""

    playbook = models.ForeignKey(Playbook, on_delete=models.CASCADE, related_name="links")
    detection = models.ForeignKey(
        Detection, on_delete=models.CASCADE, related_name="playbook_links"
    )
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(
                fields=["playbook", "detection"], name="unique_playbook_detection"
            )
        ]


class PlaybookInput(models.Model):
    """A value the playbook's queries use as a `$name$` token.

    Values from the alert are known when the playbook starts. Values recorded by the
    analyst are found by a response step that names them in its `records` list.
    """

    class Source(models.TextChoices):
        ALERT = "alert"
        ANALYST = "analyst"

    playbook = models.ForeignKey(Playbook, on_delete=models.CASCADE, related_name="inputs")
    position = models.PositiveSmallIntegerField(default=0)
    name = models.CharField(max_length=100)
    description = models.TextField()
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.ALERT)
    example = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["playbook", "name"], name="unique_playbook_input")
        ]

    @property
    def token(self) -> str:
        return f"${self.name}$"


class PlaybookSigmaRule(models.Model):
    """A Sigma file of a playbook, stored exactly as written, with its parsed fields."""

    playbook = models.ForeignKey(Playbook, on_delete=models.CASCADE, related_name="sigma_rules")
    position = models.PositiveSmallIntegerField(default=0)
    rule_id = models.UUIDField(unique=True)
    filename = models.CharField(max_length=200)
    yaml_text = models.TextField()
    title = models.CharField(max_length=300)
    level = models.CharField(max_length=32, blank=True)
    logsource = models.JSONField(default=dict)
    tags = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(
                fields=["playbook", "filename"], name="unique_playbook_sigma_file"
            )
        ]

    def __str__(self) -> str:
        return self.title


class ResponseStep(models.Model):
    """One step of the response playbook."""

    class Phase(models.TextChoices):
        TRIAGE = "triage"
        INVESTIGATION = "investigation"
        CONTAINMENT = "containment"
        ERADICATION = "eradication"
        RECOVERY = "recovery"
        LESSONS_LEARNED = "lessons-learned", "Lessons learned"

    playbook = models.ForeignKey(Playbook, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField(default=0)
    phase = models.CharField(max_length=16, choices=Phase.choices)
    title = models.CharField(max_length=300)
    role = models.CharField(max_length=100, help_text="Who carries out the step.")
    automatable = models.BooleanField(default=False)
    action = models.TextField(help_text="What to do, Markdown.")
    rationale = models.TextField(help_text="Why the step matters, Markdown.")
    automation = models.TextField(blank=True, help_text="How a SOAR platform can do the step.")
    records = models.JSONField(
        default=list, blank=True, help_text="Names of the analyst inputs this step finds."
    )

    class Meta:
        ordering = ["position"]

    @property
    def number(self) -> int:
        return self.position + 1


class InvestigationQuestion(models.Model):
    """A question of the investigation guide, with what answers it."""

    playbook = models.ForeignKey(Playbook, on_delete=models.CASCADE, related_name="questions")
    position = models.PositiveSmallIntegerField(default=0)
    question = models.CharField(max_length=300)
    role = models.CharField(max_length=100)
    artifacts = models.JSONField(
        default=list, blank=True, help_text="Logs, events or files that answer the question."
    )
    benign_answer = models.TextField(help_text="What a benign answer looks like, Markdown.")
    malicious_answer = models.TextField(
        blank=True, help_text="What points to an intrusion, Markdown."
    )

    class Meta:
        ordering = ["position"]

    @property
    def number(self) -> int:
        return self.position + 1


class HuntingQuery(models.Model):
    """A named hunt: the hypothesis it tests, its queries and the noise to expect."""

    playbook = models.ForeignKey(Playbook, on_delete=models.CASCADE, related_name="hunts")
    position = models.PositiveSmallIntegerField(default=0)
    name = models.CharField(max_length=300)
    role = models.CharField(max_length=100)
    hypothesis = models.TextField(help_text="Markdown.")
    expected_noise = models.TextField(help_text="Benign activity the hunt also returns, Markdown.")
    data_sources = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["position"]
        verbose_name_plural = "hunting queries"
        constraints = [
            models.UniqueConstraint(fields=["playbook", "name"], name="unique_hunt_name")
        ]

    @property
    def number(self) -> int:
        return self.position + 1


class PlaybookQuery(models.Model):
    """A query for one platform, owned by exactly one step, question or hunt.

    The text is stored byte for byte. `$name$` tokens in it name the playbook's inputs.
    """

    step = models.ForeignKey(
        ResponseStep, null=True, blank=True, on_delete=models.CASCADE, related_name="queries"
    )
    question = models.ForeignKey(
        InvestigationQuestion,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="queries",
    )
    hunt = models.ForeignKey(
        HuntingQuery, null=True, blank=True, on_delete=models.CASCADE, related_name="queries"
    )
    position = models.PositiveSmallIntegerField(default=0)
    platform = models.CharField(max_length=100)
    language = models.CharField(max_length=50)
    description = models.TextField(blank=True)
    text = models.TextField()
    sigma_rule = models.ForeignKey(
        PlaybookSigmaRule,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="queries",
        help_text="The query's Sigma form, for rendering on other platforms.",
    )

    class Meta:
        ordering = ["position"]
        verbose_name_plural = "playbook queries"
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(step__isnull=False, question__isnull=True, hunt__isnull=True)
                    | models.Q(step__isnull=True, question__isnull=False, hunt__isnull=True)
                    | models.Q(step__isnull=True, question__isnull=True, hunt__isnull=False)
                ),
                name="playbook_query_has_one_owner",
            )
        ]

    @property
    def lexer(self) -> str:
        return self.language.lower()
