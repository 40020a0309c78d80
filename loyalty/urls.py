from rest_framework.routers import SimpleRouter

from loyalty import views

router = SimpleRouter()
router.register("loyalty", views.LoyaltyViewSet, basename="loyalty")

urlpatterns = router.urls
