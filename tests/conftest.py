from pathlib import Path

import pytest
from django.core.management import call_command

from detections.models import Detection

REPO_ROOT = Path(__file__).resolve().parent.parent
CONTENT_DIR = REPO_ROOT / "content"
FILES_DIR = Path(__file__).resolve().parent / "files"
SEED_SLUG = "archive-via-library-splunk"


@pytest.fixture
def seed_detection(db) -> Detection:
    """The shipped T1560.002 detection, loaded from the repository's content folder."""
    call_command("load_content", str(CONTENT_DIR), verbosity=0)
    return Detection.objects.get(slug=SEED_SLUG)
