from django.urls import path
from rest_framework.routers import DefaultRouter

from playbooks.api.views import PlaybookViewSet

from .imports import SigmaImportView
from .views import DetectionViewSet, ValidationRunViewSet

app_name = "api"

router = DefaultRouter()
router.register("detections", DetectionViewSet, basename="detection")
router.register("validations", ValidationRunViewSet, basename="validation")
router.register("playbooks", PlaybookViewSet, basename="playbook")

urlpatterns = [
    path("imports/sigma/", SigmaImportView.as_view(), name="import-sigma"),
    *router.urls,
]
