from rest_framework.routers import DefaultRouter

from playbooks.api.views import PlaybookViewSet

from .views import DetectionViewSet

app_name = "api"

router = DefaultRouter()
router.register("detections", DetectionViewSet, basename="detection")
router.register("playbooks", PlaybookViewSet, basename="playbook")

urlpatterns = router.urls
