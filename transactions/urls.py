from django.urls import URLPattern, re_path
from rest_framework.routers import SimpleRouter

from transactions import views
from transactions.batches.views import BatchViewSet
from transactions.fast_path import fast_movement_view
from transactions.holds.views import HoldViewSet
from transactions.statements.views import StatementView
from wallets.views import UUID_LOOKUP

router = SimpleRouter()
router.register("transactions", views.TransactionViewSet, basename="transaction")
router.register("transactions/batch", BatchViewSet, basename="batch")
router.register("holds", HoldViewSet, basename="hold")


def _with_fast_path(pattern: URLPattern) -> URLPattern:
    """The four movements' routes answer their plain case without DRF's machinery (transactions/fast_path.py)."""
    endpoint = (pattern.name or "").removeprefix("transaction-")
    if endpoint not in views.MOVEMENTS:
        return pattern
    return URLPattern(
        pattern.pattern, fast_movement_view(pattern.callback, endpoint), pattern.default_args, pattern.name
    )


urlpatterns = [
    *(_with_fast_path(pattern) for pattern in router.urls),
    re_path(rf"^balances/(?P<id>{UUID_LOOKUP})/statement/$", StatementView.as_view(), name="balance-statement"),
]
