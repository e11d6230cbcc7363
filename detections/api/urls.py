from rest_framework.routers import DefaultRouter

from .views import DetectionViewSet

app_name = "api"

router = DefaultRouter()
router.register("detections", DetectionViewSet, basename="detection")

urlpatterns = router.urls
