from django.urls import path

from . import edit_views, views

app_name = "playbooks"

urlpatterns = [
    path("playbooks/", views.playbook_list, name="playbook_list"),
    path("playbooks/<slug:slug>/", views.playbook_detail, name="playbook_detail"),
    path(
        "playbooks/<slug:slug>/edit/<str:kind>/<int:item_id>/",
        edit_views.item_edit,
        name="item_edit",
    ),
    path("playbooks/<slug:slug>/workflow/", views.playbook_transition, name="transition"),
    path("playbooks/<slug:slug>/history/", views.playbook_history, name="history"),
    path(
        "playbooks/<slug:slug>/history/<int:version_id>/restore/",
        views.playbook_restore,
        name="restore",
    ),
    path("playbooks/<slug:slug>.md", views.markdown_download, name="markdown_download"),
    path("playbooks/<slug:slug>.cacao.json", views.cacao_download, name="cacao_download"),
]
