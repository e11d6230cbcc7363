import uuid
from collections import Counter
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Max

from detections.editing import revision_record
from detections.models import Detection, DetectionTest, ExpectedTelemetry, SigmaRule
from detections.validation.events import EventFileError, event_source, read_events_file


class Command(BaseCommand):
    help = (
        "Attach a recording of events to a detection as a test. DETECTION is the detection's "
        "slug, its UUID or the id of one of its Sigma rules, looked up in that order. The "
        "file may be a Windows .evtx file, a JSON array of events or JSON lines; its type is "
        "read from its content."
    )

    def add_arguments(self, parser):
        parser.add_argument("detection", help="Detection slug, detection UUID or Sigma rule id.")
        parser.add_argument("--events", required=True, type=Path, help="The recording to attach.")
        parser.add_argument(
            "--expect",
            required=True,
            choices=[choice.value for choice in DetectionTest.Expectation],
            help="fires: the detection must match; silent: it must not.",
        )
        parser.add_argument(
            "--min-matches",
            type=int,
            default=1,
            help="With --expect fires, the number of matching events required (default 1).",
        )
        parser.add_argument("--name", help="Test name (default: the file name). Need not be unique.")
        parser.add_argument(
            "--platform",
            choices=["windows", "linux", "macos"],
            help="Platform the test ran on (default: read from the events).",
        )
        parser.add_argument("--atomic-guid", help="Atomic Red Team test GUID, if this is one.")
        parser.add_argument(
            "--known-false-positive",
            action="store_true",
            help="The recording is benign activity the detection is known to match.",
        )

    def handle(self, *args, detection, events, expect, min_matches, name, platform, atomic_guid,
               known_false_positive, **options):
        target = find_detection(detection)
        if min_matches < 1:
            raise CommandError(f"--min-matches {min_matches} is invalid; give 1 or more.")
        guid = _atomic_guid(atomic_guid)
        try:
            recorded = read_events_file(events)
        except EventFileError as exc:
            raise CommandError(str(exc)) from None
        sources = Counter(_describe(event) for event in recorded)
        platform = platform or _platform(recorded)
        test_name = name if name is not None else events.name
        if not test_name.strip():
            raise CommandError("--name is empty; give the test a name.")
        if len(test_name) > 300:
            raise CommandError(f"--name is {len(test_name)} characters long; the limit is 300.")
        with transaction.atomic():
            last = target.tests.aggregate(last=Max("position"))["last"]
            position = 0 if last is None else last + 1
            test = DetectionTest.objects.create(
                detection=target,
                position=position,
                name=test_name,
                atomic_guid=guid,
                platform=platform,
                executor_summary=f"Events recorded in {events.name}.",
                expected_signal="Recorded: "
                + "; ".join(f"{count} {label}" for label, count in sources.items())
                + ".",
                expect=expect,
                min_matches=min_matches,
                known_false_positive=known_false_positive,
                recorded_events=recorded,
            )
            ExpectedTelemetry.objects.bulk_create(
                _telemetry(test, recorded)
            )
            revision_record(target, comment=f"add_test: {test_name}")
        self.stdout.write(
            f"Added test {test_name!r} to {target.slug} as test {position + 1}: "
            f"{len(recorded)} events ({', '.join(sources)}), expect {expect}."
        )


def find_detection(value: str) -> Detection:
    """Find a detection by slug, then UUID, then the id of one of its Sigma rules."""
    detection = Detection.objects.filter(slug=value).first()
    if detection:
        return detection
    try:
        key = uuid.UUID(value)
    except ValueError:
        key = None
    if key is not None:
        detection = Detection.objects.filter(uuid=key).first()
        if detection:
            return detection
        rule = SigmaRule.objects.filter(rule_id=str(key)).select_related("detection").first()
        if rule:
            return rule.detection
    raise CommandError(
        f"No detection has the slug, UUID or Sigma rule id {value!r}; "
        "list detections at /api/v1/detections/."
    )


def _atomic_guid(value: str | None) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise CommandError(f"--atomic-guid {value!r} is not a GUID.") from None


def _describe(event: dict) -> str:
    source = event_source(event)
    event_id = event.get("EventID") or event.get("type")
    return f"{source.label} ({event_id})" if event_id is not None else source.label


def _platform(events: list[dict]) -> str:
    products = Counter(event_source(event).product for event in events)
    product, _ = products.most_common(1)[0]
    if product in ("windows", "linux", "macos"):
        return product
    raise CommandError(
        "Cannot tell the platform from the events (no Windows channel or auditd record); "
        "give --platform."
    )


def _telemetry(test: DetectionTest, events: list[dict]) -> list[ExpectedTelemetry]:
    seen: dict[tuple, ExpectedTelemetry] = {}
    for event in events:
        source = event_source(event)
        if source.service == "auditd":
            key = ("auditd", None, str(event.get("type")))
            entry = ExpectedTelemetry(source="auditd", event_name=str(event.get("type")))
        else:
            event_id = event.get("EventID") if isinstance(event.get("EventID"), int) else None
            key = (str(event.get("Channel") or source.label), event_id, source.category or "")
            entry = ExpectedTelemetry(
                source=str(event.get("Provider_Name") or event.get("Channel") or source.label)[:100],
                event_id=event_id,
                event_name=(source.category or "")[:100],
            )
        if key not in seen:
            entry.test = test
            entry.position = len(seen)
            seen[key] = entry
    return list(seen.values())
