from rest_framework.routers import SimpleRouter

from transactions import views

router = SimpleRouter()
router.register("transactions", views.TransactionViewSet, basename="transaction")

urlpatterns = router.urls
