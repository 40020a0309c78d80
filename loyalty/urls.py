from django.urls import path
from rest_framework.routers import SimpleRouter

from loyalty import views

router = SimpleRouter()
router.register("loyalty/rewards", views.RewardViewSet, basename="loyalty-reward")

urlpatterns = [path("loyalty/", views.LoyaltySummaryView.as_view(), name="loyalty-summary"), *router.urls]
