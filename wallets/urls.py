from rest_framework.routers import SimpleRouter

from wallets import views

router = SimpleRouter()
router.register("wallets", views.WalletViewSet, basename="wallet")
router.register("balances", views.BalanceViewSet, basename="balance")
router.register("currencies", views.CurrencyViewSet, basename="currency")
router.register("rates", views.RateViewSet, basename="rate")

urlpatterns = router.urls
