from django.db import models


class WorkerHeartbeat(models.Model):
    """The last sign of life of one Celery worker, written on the worker's timer."""

    hostname = models.CharField(max_length=255, unique=True, help_text="Celery node name.")
    pid = models.PositiveIntegerField()
    queues = models.CharField(max_length=255, help_text="Comma-separated queues it consumes.")
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-last_seen"]

    def __str__(self) -> str:
        return f"{self.hostname} at {self.last_seen:%Y-%m-%d %H:%M:%S}"
