"""Admin saves of detections go into the history and check edited Sigma rules."""

import json

from django.urls import reverse

from detections import editing
from detections.models import Detection, StatusTransition


def change_form_data(client, detection: Detection) -> dict:
    """Return the admin change form's current values, inline management forms included."""
    response = client.get(reverse("admin:detections_detection_change", args=[detection.pk]))
    form = response.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if value is None:
            continue
        if isinstance(value, list):
            if name in ("related", "other_platforms"):
                data[name] = [item.pk if hasattr(item, "pk") else item for item in value]
            else:
                data[name] = json.dumps(value)
        else:
            data[name] = value
    for formset in response.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        for name in management.fields:
            data[f"{management.prefix}-{name}"] = management.initial.get(name, 0)
        for index, inline_form in enumerate(formset.formset.forms):
            for name, field in inline_form.fields.items():
                value = inline_form.initial.get(name, field.initial)
                if value is None:
                    continue
                if isinstance(value, list | dict):
                    value = json.dumps(value)
                data[f"{inline_form.prefix}-{name}"] = value
    return data


def test_admin_save_records_revision(admin_client, seed_detection):
    data = change_form_data(admin_client, seed_detection)
    data["tuning_notes"] = "Changed in the admin."
    data["status"] = "review"

    response = admin_client.post(
        reverse("admin:detections_detection_change", args=[seed_detection.pk]), data
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    seed_detection.refresh_from_db()
    assert seed_detection.revision == 2
    latest = editing.history(seed_detection)[0]
    assert latest.user == "admin"
    assert "tuning_notes" in latest.comment
    transition = StatusTransition.objects.get()
    assert (transition.from_status, transition.to_status) == ("published", "review")


def test_admin_rejects_invalid_sigma_rule(admin_client, seed_detection):
    rule = seed_detection.sigma_rules.get(position=0)
    data = change_form_data(admin_client, seed_detection)
    key = next(name for name, value in data.items() if value == rule.yaml_text)
    data[key] = "title: broken\nid: [\n"

    response = admin_client.post(
        reverse("admin:detections_detection_change", args=[seed_detection.pk]), data
    )

    assert response.status_code == 200
    assert "line 3: " in response.content.decode()
    rule.refresh_from_db()
    assert rule.yaml_text.startswith("title: Compression")
    seed_detection.refresh_from_db()
    assert seed_detection.revision == 1
