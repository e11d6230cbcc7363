"""Time the edit form's live previews: Sigma previews on a real worker, Markdown in process.

A Sigma preview is timed from `preview_request` (what the preview endpoint calls) to
the moment its row is finished, polled every POLL_SECONDS as the page would, with one
Celery worker on the `render` queue. Each request changes the rule's title, so no
preview is a repeat. Markdown previews are timed as `render_markdown` calls, which the
endpoint runs in the web request.

    .venv/bin/python bench/preview/run.py                          # Redis db 14
    .venv/bin/python bench/preview/run.py --broker filesystem --count 20

The run uses a temporary SQLite database and deletes only the keys it added to the
Redis database (14 unless --redis-url sets another).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
RULE_FILE = (
    REPO_ROOT / "content/detections/archive-via-library-splunk/sigma/compression_dll_load.yml"
)
POLL_SECONDS = 0.01
TIMEOUT_SECONDS = 60


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50, help="Sigma previews to time")
    parser.add_argument(
        "--broker", choices=["redis", "filesystem"], default="redis", help="Celery broker kind"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    return parser.parse_args()


def environment(root: Path, args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"sqlite:///{root / 'db.sqlite3'}",
        DJANGO_SETTINGS_MODULE="portal.settings",
        CELERY_BROKER_FOLDER=str(root / "broker"),
        CELERY_BROKER_URL=args.redis_url if args.broker == "redis" else "filesystem://",
        PYTHONUNBUFFERED="1",
    )
    return env


def start_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", "render"]
    command += ["-c", "1", "-l", "warning", "--without-mingle", "--without-gossip"]
    with log_path.open("wb") as log:
        return subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def time_sigma_previews(count: int) -> list[float]:
    from detections.models import Preview
    from detections.previews import preview_request

    text = RULE_FILE.read_text(encoding="utf-8")
    title = text.splitlines()[0]
    seconds = []
    for index in range(count):
        started = time.perf_counter()
        preview = preview_request(text.replace(title, f"{title} {index}", 1), user=None)
        deadline = started + TIMEOUT_SECONDS
        while True:
            status = Preview.objects.filter(pk=preview.pk).values_list("status", flat=True)[0]
            if status in Preview.TERMINAL:
                break
            if time.perf_counter() > deadline:
                raise SystemExit(f"preview {preview.pk} still {status} after {TIMEOUT_SECONDS} s")
            time.sleep(POLL_SECONDS)
        if status != Preview.Status.RENDERED:
            error = Preview.objects.get(pk=preview.pk).error
            raise SystemExit(f"preview {preview.pk} failed: {error}")
        seconds.append(time.perf_counter() - started)
    return seconds


def time_markdown(size: int, repeats: int = 20) -> float:
    from detections.markdown import render_markdown

    paragraph = (
        "Exclude **build servers** from `backup.exe`, see [the runbook](https://example.org/x).\n\n"
    )
    text = (paragraph * (size // len(paragraph) + 1))[:size]
    started = time.perf_counter()
    for _ in range(repeats):
        render_markdown(text)
    return (time.perf_counter() - started) / repeats


def redis_keys(url: str) -> set[bytes]:
    import redis

    return set(redis.Redis.from_url(url).scan_iter())


def redis_keys_delete(url: str, existing: set[bytes]) -> None:
    """Delete the keys that the run added to the Redis database, and no others."""
    import redis

    client = redis.Redis.from_url(url)
    created = [key for key in client.scan_iter() if key not in existing]
    if created:
        client.delete(*created)


def summary(label: str, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p90 = ordered[max(0, int(len(ordered) * 0.9) - 1)]
    return (
        f"{label}: n={len(ordered)} median={statistics.median(ordered) * 1000:.0f} ms "
        f"p90={p90 * 1000:.0f} ms max={ordered[-1] * 1000:.0f} ms"
    )


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-preview-") as folder:
        root = Path(folder)
        env = environment(root, args)
        migrate = [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"]
        subprocess.run(migrate, cwd=REPO_ROOT, env=env, check=True)
        existing_keys = redis_keys(args.redis_url) if args.broker == "redis" else set()
        os.environ.update(env)
        sys.path.insert(0, str(REPO_ROOT))
        import django

        django.setup()
        worker = start_worker(env, root / "worker.log")
        try:
            # The first preview also waits for the worker to start and build its
            # Splunk converter, so it is timed apart.
            first = time_sigma_previews(1)
            seconds = time_sigma_previews(args.count)
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)
        if args.broker == "redis":
            redis_keys_delete(args.redis_url, existing_keys)
    print(f"first Sigma preview (worker start included): {first[0] * 1000:.0f} ms")
    print(summary(f"Sigma previews, {args.broker} broker", seconds))
    for size in (2_000, 20_000, 200_000):
        print(f"Markdown preview of {size} characters: {time_markdown(size) * 1000:.2f} ms")


if __name__ == "__main__":
    main()
