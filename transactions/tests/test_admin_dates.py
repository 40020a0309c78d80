"""The ledger's date drill-down in the admin (year, month, day) works, with or without prepared statements."""

from http import HTTPStatus

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.admin_support import logged_in, staff_in
from tests.factories import funded_balance


@pytest.mark.django_db
def test_the_ledger_can_be_drilled_down_by_year_month_and_day():
    entry = funded_balance(amount="5.00").entries.get()
    day = timezone.localtime(entry.created_at)
    client = logged_in(staff_in("Support"))
    url = reverse("admin:transactions_transaction_changelist")

    for query in (
        {},
        {"created_at__year": day.year},
        {"created_at__year": day.year, "created_at__month": day.month},
        {"created_at__year": day.year, "created_at__month": day.month, "created_at__day": day.day},
    ):
        response = client.get(url, query)
        assert response.status_code == HTTPStatus.OK, query
        assert str(entry.pk) in response.content.decode(), query
