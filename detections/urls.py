from django.urls import path

from . import (
    edit_views,
    history_views,
    preview_views,
    tuning_entry_views,
    validation_views,
    views,
)

app_name = "detections"

urlpatterns = [
    path("", views.detection_list, name="detection_list"),
    # A UUID also matches the slug converter, so this pattern has to come first.
    path(
        "detections/<uuid:detection_uuid>/",
        views.detection_detail_by_uuid,
        name="detection_detail_by_uuid",
    ),
    path("detections/<slug:slug>/", views.detection_detail, name="detection_detail"),
    path(
        "detections/<slug:slug>/edit/overview/", edit_views.overview_edit, name="overview_edit"
    ),
    path("detections/<slug:slug>/edit/tuning/", edit_views.tuning_edit, name="tuning_edit"),
    path(
        "detections/<slug:slug>/edit/tuning-entries/new/",
        tuning_entry_views.tuning_entry_add,
        name="tuning_entry_add",
    ),
    path(
        "detections/<slug:slug>/edit/tuning-entries/<uuid:entry_uuid>/",
        tuning_entry_views.tuning_entry_edit,
        name="tuning_entry_edit",
    ),
    path(
        "detections/<slug:slug>/edit/tuning-entries/<uuid:entry_uuid>/enabled/",
        tuning_entry_views.tuning_entry_enabled,
        name="tuning_entry_enabled",
    ),
    path(
        "detections/<slug:slug>/edit/tuning-entries/<uuid:entry_uuid>/delete/",
        tuning_entry_views.tuning_entry_delete,
        name="tuning_entry_delete",
    ),
    path(
        "detections/<slug:slug>/edit/tests/<int:test_id>/",
        edit_views.test_edit,
        name="test_edit",
    ),
    path(
        "detections/<slug:slug>/edit/sigma/<uuid:rule_id>/",
        edit_views.sigma_edit,
        name="sigma_edit",
    ),
    path(
        "detections/<slug:slug>/edit/sigma/<uuid:rule_id>/preview",
        preview_views.preview_sigma,
        name="preview_sigma",
    ),
    path("previews/markdown", preview_views.preview_markdown, name="preview_markdown"),
    path("previews/<uuid:preview_id>", preview_views.preview_status, name="preview_status"),
    path("detections/<slug:slug>/workflow/", history_views.detection_transition, name="transition"),
    path("detections/<slug:slug>/history/", history_views.detection_history, name="history"),
    path(
        "detections/<slug:slug>/history/<int:version_id>/restore/",
        history_views.detection_restore,
        name="restore",
    ),
    path(
        "detections/<slug:slug>/queries/<int:position>.<str:ext>",
        views.query_download,
        name="query_download",
    ),
    path(
        "detections/<slug:slug>/queries/<int:position>-tuned.<str:ext>",
        views.tuned_query_download,
        name="tuned_query_download",
    ),
    path("detections/<slug:slug>/macros.conf", views.macros_download, name="macros_download"),
    path(
        "detections/<slug:slug>/filters/<str:name>.yml",
        views.filter_download,
        name="filter_download",
    ),
    path(
        "detections/<slug:slug>/sigma/<uuid:rule_id>.yml",
        views.sigma_download,
        name="sigma_download",
    ),
    path(
        "detections/<slug:slug>/validations/",
        validation_views.validation_history,
        name="validation_history",
    ),
    path(
        "detections/<slug:slug>/validations/run",
        validation_views.validation_start,
        name="validation_start",
    ),
    path(
        "detections/<slug:slug>/validations/<int:run_id>/",
        validation_views.validation_run_detail,
        name="validation_run",
    ),
    path("detections/<slug:slug>/sigma.zip", views.sigma_zip_download, name="sigma_zip_download"),
    # Target keys match the slug converter, and the extension must be the target's.
    path(
        "detections/<slug:slug>/renders/<slug:target>/<uuid:rule_id>.<str:ext>",
        views.render_download,
        name="render_download",
    ),
    path(
        "detections/<slug:slug>/renders/<slug:target>.<str:ext>",
        views.render_target_download,
        name="render_target_download",
    ),
]
