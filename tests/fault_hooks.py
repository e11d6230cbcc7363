"""Make every validation run kill the pool process that executes it (fault tests only)."""

import os
import signal

from celery.signals import worker_process_init


@worker_process_init.connect
def kill_pool_process_on_validation(**kwargs) -> None:
    from detections.validation import runs

    def killed(run):
        # After the claim, as a worker that runs out of memory mid-run.
        os.kill(os.getpid(), signal.SIGKILL)

    runs._execute = killed
