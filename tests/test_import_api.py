"""POST /api/v1/imports/sigma/: uploads of one rule or a ZIP, for signed-in users."""

import io
import uuid
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from rest_framework.test import APIClient

from detections.models import Detection

from .import_helpers import rule_text, zip_bytes

URL = "/api/v1/imports/sigma/"


@pytest.fixture
def client(author) -> APIClient:
    api = APIClient()
    api.force_authenticate(author)
    return api


def upload(client: APIClient, name: str, content: bytes | str):
    data = content.encode() if isinstance(content, str) else content
    return client.post(URL, {"file": SimpleUploadedFile(name, data)}, format="multipart")


def test_rule_upload_imports(client):
    rule_id = str(uuid.uuid4())

    response = upload(client, "rule.yml", rule_text(rule_id=rule_id))

    assert response.status_code == 200
    assert response.json() == {
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "failed": [],
        "warnings": response.json()["warnings"],
    }
    detection = Detection.objects.get(uuid=rule_id)
    assert detection.status == Detection.Status.DRAFT
    assert detection.source_path == "rule.yml"


def test_zip_upload_imports(client):
    archive = zip_bytes({"a.yml": rule_text(title="A"), "b.yml": rule_text(title="B")})

    response = upload(client, "rules.zip", archive)

    assert response.status_code == 200
    assert response.json()["created"] == 2


def test_anonymous_rejected(db):
    response = upload(APIClient(), "rule.yml", rule_text())

    assert response.status_code == 401
    assert not Detection.objects.exists()


def test_user_without_role_rejected(outsider):
    api = APIClient()
    api.force_authenticate(outsider)

    response = upload(api, "rule.yml", rule_text())

    assert response.status_code == 403
    assert not Detection.objects.exists()


def test_missing_file_part(client):
    response = client.post(URL, {"other": "x"}, format="multipart")

    assert response.status_code == 400
    assert "named `file`" in response.json()["detail"]


def test_unsupported_extension(client):
    response = upload(client, "rule.exe", rule_text())

    assert response.status_code == 400
    assert "'rule.exe' is not a .yml, .yaml or .zip file" in response.json()["detail"]


def test_hostile_rule_rejected(client):
    response = upload(client, "bomb.yml", "a: &a [1, 2]\nb: [*a, *a]\n")

    assert response.status_code == 422
    reason = "YAML anchors are not allowed (found &a); remove the anchor"
    assert response.json()["failed"] == [{"file": "bomb.yml", "reason": reason, "line": 1}]


def test_partial_zip_imports_rest(client):
    archive = zip_bytes({"../escape.yml": rule_text(), "good.yml": rule_text()})

    response = upload(client, "mixed.zip", archive)

    assert response.status_code == 422
    body = response.json()
    assert body["created"] == 1
    assert body["failed"][0]["file"] == "mixed.zip:../escape.yml"
    assert "has '..' in its path" in body["failed"][0]["reason"]


def test_zip_bomb_rejected(client):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.yml", b"\0" * (300 * 1024 * 1024))

    response = upload(client, "bomb.zip", buffer.getvalue())

    assert response.status_code == 422
    assert "once uncompressed" in response.json()["failed"][0]["reason"]


def test_upload_path_stripped(client):
    response = upload(client, "C:\\Users\\ann\\rule.yml", rule_text())

    assert response.status_code == 200
    assert Detection.objects.get(origin=Detection.Origin.SIGMA).source_path == "rule.yml"


@override_settings(IMPORT_MAX_UPLOAD_BYTES=1000)
def test_request_over_limit(client):
    response = upload(client, "rule.yml", rule_text() + "#" * 2000)

    assert response.status_code == 413
    assert "the limit is 1000 (IMPORT_MAX_UPLOAD_BYTES)" in response.json()["detail"]
    assert not Detection.objects.exists()


@override_settings(IMPORT_MAX_FILE_BYTES=100)
def test_rule_over_file_limit(client):
    response = upload(client, "rule.yml", rule_text())

    assert response.status_code == 422
    assert response.json()["failed"][0]["reason"] == "file is larger than the limit of 100 bytes"


def test_schema_documents_endpoint(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()

    operation = schema["paths"][URL]["post"]
    assert set(operation["responses"]) == {"200", "400", "401", "403", "413", "422"}
    assert "multipart/form-data" in operation["requestBody"]["content"]
