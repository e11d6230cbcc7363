"""The tuning section of the detection page: entry rows, the filter macro, tuned SPL."""

from dataclasses import dataclass
from pathlib import PurePosixPath

from django.utils import timezone

from .models import Detection, TuningEntry
from .tuning import condition_lines, detection_macro, filter_files, tuned_spl


@dataclass
class TuningRow:
    """A tuning entry as the detection page shows it."""

    entry: TuningEntry
    condition: list[str]
    scope: str
    expired: bool
    filter_names: list[str]


def tuning_context(detection: Detection) -> dict:
    """Build the tuning section: entry rows, the filter macro and each SPL query tuned.

    Sets `tuned_text` on each SPL query, which the query panel shows beside the
    authored text. No pySigma conversion runs here: entries store their SPL on save.
    """
    today = timezone.localdate()
    entries = list(detection.tuning_entries.all())
    filters: dict[int, list[str]] = {}
    for item in filter_files(detection, [entry for entry in entries if entry.is_active(today)]):
        filters.setdefault(item.entry.pk, []).append(PurePosixPath(item.filename).stem)
    rows = [
        TuningRow(
            entry=entry,
            condition=condition_lines(entry.condition),
            scope=_tuning_scope(entry),
            expired=entry.is_expired(today),
            filter_names=filters.get(entry.pk, []),
        )
        for entry in entries
    ]
    macro = detection_macro(detection, [entry for entry in entries if entry.is_active(today)])
    for query in detection.queries.all():
        if query.language.upper() == "SPL" and macro.definition != "search *":
            query.tuned_text = tuned_spl(query, macro)
    filter_count = sum(len(names) for names in filters.values())
    return {"rows": rows, "macro": macro, "filter_count": filter_count}


def _tuning_scope(entry: TuningEntry) -> str:
    parts = [f"branch {name}" for name in entry.branches]
    parts += [f"Sigma rule {rule_id}" for rule_id in entry.rules]
    return ", ".join(parts) or "every rule and branch"
