"""Receivers that keep renders in step with tuning entries."""

from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import SigmaRule, TuningEntry


@receiver(post_save, sender=TuningEntry)
@receiver(post_delete, sender=TuningEntry)
def tuning_entry_changed(sender, instance: TuningEntry, **kwargs) -> None:
    """Queue the detection's renders once the change is committed.

    The renders' input hash includes the active entries, so only renders whose
    filters changed are queued. One callback per detection and transaction is
    registered, however many entries the transaction saves.
    """
    detection_id = instance.detection_id
    pending = [
        callback
        for _, callback, _ in connection.run_on_commit
        if getattr(callback, "tuning_detection_id", None) == detection_id
    ]
    if pending:
        return

    def schedule() -> None:
        _renders_schedule(detection_id)

    schedule.tuning_detection_id = detection_id
    transaction.on_commit(schedule)


def _renders_schedule(detection_id: int) -> None:
    from .rendering import renders_schedule

    rule_ids = SigmaRule.objects.filter(
        detection_id=detection_id, kind=SigmaRule.Kind.RULE
    ).values_list("pk", flat=True)
    renders_schedule(rule_ids=list(rule_ids))
