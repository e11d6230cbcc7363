from django.urls import path

from . import views

app_name = "playbooks"

urlpatterns = [
    path("playbooks/", views.playbook_list, name="playbook_list"),
    path("playbooks/<slug:slug>/", views.playbook_detail, name="playbook_detail"),
    path("playbooks/<slug:slug>.md", views.markdown_download, name="markdown_download"),
    path("playbooks/<slug:slug>.cacao.json", views.cacao_download, name="cacao_download"),
]
