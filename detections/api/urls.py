from rest_framework.routers import DefaultRouter

from .views import DetectionViewSet, ValidationRunViewSet

app_name = "api"

router = DefaultRouter()
router.register("detections", DetectionViewSet, basename="detection")
router.register("validations", ValidationRunViewSet, basename="validation")

urlpatterns = router.urls
